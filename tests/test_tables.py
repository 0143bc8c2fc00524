"""Shared data I/O: streaming reads, atomic and resumable sharded writes, the parallel map."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from editlm.io.parallel import map_unordered
from editlm.io.tables import ShardedWriter, TableError, read_rows, write_rows


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_sharded_writer_resumes_after_a_crash_and_after_finishing(tmp_path, suffix) -> None:
    out = tmp_path / f"out.{suffix}"
    first = ShardedWriter(out, shard_size=4)
    for key in range(10):
        if key % 3 == 0:
            first.skip(key, "too short")
        else:
            first.add(key, [{"key": key, "text": f"row {key}", "maybe": None}])
    first.flush()
    del first  # the job dies here: nothing merged yet

    second = ShardedWriter(out, shard_size=4)
    assert second.done == set(range(10))
    assert second.skipped["too short"] == 4
    for key in range(10, 13):
        second.add(key, [{"key": key, "text": f"row {key}", "maybe": "now a string"}])
    summary = second.finish()
    rows = list(read_rows(out))
    assert sorted(r["key"] for r in rows) == [k for k in range(13) if k % 3 or k >= 10]
    assert summary["rows"] == len(rows) and summary["skipped"] == {"too short": 4}
    assert not (tmp_path / f"out.{suffix}.partial").exists()

    third = ShardedWriter(out)
    assert third.done == set(range(13))
    third.add(99, [{"key": 99, "text": "late", "maybe": None}])
    third.finish()
    assert len(list(read_rows(out))) == len(rows) + 1


def test_incomplete_shard_is_discarded(tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ShardedWriter(out, shard_size=1)
    writer.add("a", [{"v": 1}])
    (tmp_path / "out.jsonl.partial" / "part-00009.jsonl").write_text('{"v": "torn"}\n')
    resumed = ShardedWriter(out)
    assert resumed.done == {"a"}
    resumed.finish()
    assert list(read_rows(out)) == [{"v": 1}]


def test_refuses_to_adopt_a_foreign_output(tmp_path) -> None:
    out = tmp_path / "out.parquet"
    write_rows(out, [{"v": 1}])
    with pytest.raises(TableError, match="no editlm resume state"):
        ShardedWriter(out)
    ShardedWriter(out, overwrite=True).finish()  # overwrite replaces it
    assert list(read_rows(out)) == []


SCHEMA_COLUMNS = {"key": "int64", "text": "string", "maybe": "string"}


def _schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in SCHEMA_COLUMNS.items()])


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_an_output_without_rows_keeps_its_schema_and_datasets_reads_it(tmp_path, suffix) -> None:
    import datasets
    import pyarrow.parquet as pq

    out = tmp_path / f"empty.{suffix}"
    writer = ShardedWriter(out, schema=_schema(), settings={"job": "test"})
    writer.skip(1, "every input dropped")
    summary = writer.finish()
    assert summary["rows"] == 0 and summary["columns"] == list(SCHEMA_COLUMNS)
    assert list(read_rows(out)) == []
    kind = "json" if suffix == "jsonl" else suffix
    loaded = datasets.load_dataset(kind, data_files=str(out), split="train", streaming=True)
    assert list(loaded) == []
    if suffix == "parquet":
        assert pq.read_schema(out).names == list(SCHEMA_COLUMNS)
        assert list(loaded.features) == list(SCHEMA_COLUMNS)


def test_resume_state_is_apart_from_the_summary_and_settings_must_match(tmp_path) -> None:
    from editlm.io.tables import SettingsMismatch

    out = tmp_path / "out.jsonl"
    first = ShardedWriter(out, settings={"filter": "carperai", "limit": (1, 2)})
    first.add("a", [{"v": 1}])
    first.skip("b", "too short")
    first.finish({"note": "for people"})
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    state = json.loads((tmp_path / "out.jsonl.resume.json").read_text())
    assert "keys" not in summary and summary["note"] == "for people"
    assert summary["settings"] == {"filter": "carperai", "limit": [1, 2]}
    assert state["keys"] == ["a"] and state["skips"] == [["b", "too short"]]

    assert ShardedWriter(out, settings={"filter": "carperai", "limit": [1, 2]}).done == {"a", "b"}
    with pytest.raises(SettingsMismatch, match=r"filter: 'carperai' -> 'commitpackft'"):
        ShardedWriter(out, settings={"filter": "commitpackft", "limit": [1, 2]})
    # the same refusal for a partial output (a job that died before finishing)
    partial = ShardedWriter(tmp_path / "p.parquet", settings={"seed": 1})
    partial.add("x", [{"v": 1}])
    partial.flush()
    with pytest.raises(SettingsMismatch, match="seed: 1 -> 2"):
        ShardedWriter(tmp_path / "p.parquet", settings={"seed": 2})
    assert ShardedWriter(tmp_path / "p.parquet", settings={"seed": 1}).done == {"x"}
    fresh = ShardedWriter(tmp_path / "p.parquet", settings={"seed": 2}, overwrite=True)
    assert fresh.done == set()
    fresh.add("y", [{"v": 2}])
    fresh.finish()
    assert list(read_rows(tmp_path / "p.parquet")) == [{"v": 2}]
    assert list(read_rows(out)) == [{"v": 1}]  # the refused runs left the finished output alone


def test_shards_are_flushed_by_bytes_whatever_the_row_count(tmp_path) -> None:
    out = tmp_path / "big.parquet"
    writer = ShardedWriter(out, shard_size=10_000, shard_bytes=50_000)
    for key in range(20):
        writer.add(key, [{"key": key, "text": "x" * 10_000}])
        assert writer._bytes < 50_000  # never more than one shard's worth held
    writer.flush()
    shards = sorted((tmp_path / "big.parquet.partial").glob("part-*.parquet"))
    assert len(shards) == 4  # 5 rows of 10 kB each
    writer.finish()
    assert sorted(r["key"] for r in read_rows(out)) == list(range(20))


JOB = """
import os, sys, time
from editlm.io.parallel import map_unordered
from editlm.io.tables import ShardedWriter


def slow(key):
    open(os.path.join(sys.argv[2], str(os.getpid())), "w").close()
    time.sleep(0.01)
    return key


def main():
    writer = ShardedWriter(sys.argv[1], shard_size=10, settings={"job": "slow"})
    todo = [k for k in range(200) if k not in writer.done]
    for key in map_unordered(slow, todo, workers=2, chunksize=2):
        writer.add(key, [{"key": key}])
    writer.finish()


if __name__ == "__main__":
    main()
"""


def test_sigterm_ends_the_workers_and_the_job_resumes(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script, pids, out = tmp_path / "job.py", tmp_path / "pids", tmp_path / "out.jsonl"
    script.write_text(JOB)
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    command = [sys.executable, str(script), str(out), str(pids)]
    job = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "out.jsonl.partial"
    deadline = time.monotonic() + 60
    while len(list(partial.glob("*.keys.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, job.stderr.read()
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=30)
    assert job.returncode != 0 and "SIGTERM" in job.stderr.read()
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers))
    assert partial.exists() and not out.exists()
    subprocess.run(command, env=env, check=True, timeout=120)
    assert sorted(r["key"] for r in read_rows(out)) == list(range(200))


def test_read_rows_formats_and_errors(tmp_path) -> None:
    rows = [{"a": i, "b": str(i)} for i in range(5)]
    for name in ("t.parquet", "t.jsonl"):
        write_rows(tmp_path / name, rows)
        assert list(read_rows(tmp_path / name)) == rows
        assert list(read_rows(tmp_path / name, columns=["b"])) == [{"b": r["b"]} for r in rows]
        with pytest.raises(TableError, match="missing"):
            list(read_rows(tmp_path / name, columns=["zzz"]))
    with gzip.open(tmp_path / "t.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(r) for r in rows))
    assert list(read_rows(tmp_path / "t.jsonl.gz")) == rows
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(TableError, match="bad.jsonl:2"):
        list(read_rows(tmp_path / "bad.jsonl"))
    (tmp_path / "bin.jsonl").write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(TableError, match="UTF-8"):
        list(read_rows(tmp_path / "bin.jsonl"))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableError, match="Parquet"):
        list(read_rows(tmp_path / "junk.parquet"))
    with pytest.raises(TableError, match="format"):
        list(read_rows(tmp_path / "t.csv"))
    with pytest.raises(TableError, match="no such file"):
        list(read_rows(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize("workers", [1, 2])
def test_map_unordered_processes(workers) -> None:
    assert sorted(map_unordered(_square, range(100), workers=workers, chunksize=7)) == [
        i * i for i in range(100)
    ]


def test_map_unordered_dask() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            result = sorted(map_unordered(_square, iter(range(50)), scheduler=client, chunksize=4))
    assert result == [i * i for i in range(50)]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_get_the_mode_open_would_give(tmp_path, mask):
    # mkstemp's 0600 must not leak into outputs: a shared dataset or model must stay readable
    from editlm.io.tables import ShardedWriter, write_json, write_rows
    from editlm.train.resume import _write

    old = os.umask(mask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_rows(tmp_path / "b.parquet", [{"x": 1}])
        writer = ShardedWriter(tmp_path / "c.jsonl", settings={})
        writer.add(1, [{"x": 1}])
        writer.finish()
        _write(tmp_path / "d.json", {"x": 1})
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    expected = 0o666 & ~mask
    assert (tmp_path / "plain").stat().st_mode & 0o777 == expected
    for name in ("a.json", "b.parquet", "c.jsonl", "c.jsonl.summary.json", "c.jsonl.resume.json", "d.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name


def test_jsonl_rows_are_written_once_and_renamed_into_place(tmp_path) -> None:
    # the rows go to one file as they are flushed; finish() renames it (no second copy of the text)
    out = tmp_path / "out.jsonl"
    writer = ShardedWriter(out, shard_size=2)
    for key in range(7):
        writer.add(key, [{"key": key, "text": "x" * key}])
    writer.flush()
    rows_file = tmp_path / "out.jsonl.partial" / "rows.jsonl"
    inode = rows_file.stat().st_ino
    assert not list((tmp_path / "out.jsonl.partial").glob("part-*.jsonl"))
    writer.finish()
    assert out.stat().st_ino == inode
    assert [r["key"] for r in read_rows(out)] == list(range(7))


def test_jsonl_resume_cuts_rows_whose_keys_never_landed(tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ShardedWriter(out, shard_size=1)
    writer.add("a", [{"v": 1}])
    writer.add("b", [{"v": 2}])
    with open(tmp_path / "out.jsonl.partial" / "rows.jsonl", "ab") as rows:
        rows.write(b'{"v": "written, then the job was killed before its key list"}\n{"v": "to')
    resumed = ShardedWriter(out)
    assert resumed.done == {"a", "b"}
    resumed.add("c", [{"v": 3}])
    resumed.finish()
    assert list(read_rows(out)) == [{"v": 1}, {"v": 2}, {"v": 3}]


def test_jsonl_rows_shorter_than_their_record_refuse_to_resume(tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ShardedWriter(out, shard_size=1)
    writer.add("a", [{"v": 1}])
    os.truncate(tmp_path / "out.jsonl.partial" / "rows.jsonl", 3)
    with pytest.raises(TableError, match="cut short"):
        ShardedWriter(out)


def test_jsonl_shards_of_an_older_editlm_are_taken_over(tmp_path) -> None:
    # one file per shard and no "end" in the key lists: appended in order, then resumed as usual
    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    partial.mkdir()
    (partial / "settings.json").write_text("{}\n")
    for number, keys in enumerate([["a", "b"], ["c"]]):
        (partial / f"part-{number:05d}.jsonl").write_text("".join(json.dumps({"k": k}) + "\n" for k in keys))
        (partial / f"part-{number:05d}.keys.json").write_text(
            json.dumps({"keys": keys, "skips": [], "rows": len(keys)})
        )
    (partial / "part-00002.keys.json").write_text(
        json.dumps({"keys": [], "skips": [["d", "empty"]], "rows": 0})
    )
    writer = ShardedWriter(out)
    assert writer.done == {"a", "b", "c", "d"}
    writer.add("e", [{"k": "e"}])
    summary = writer.finish()
    assert [r["k"] for r in read_rows(out)] == ["a", "b", "c", "e"]
    assert summary["skipped"] == {"empty": 1}


def test_a_finished_jsonl_output_stays_whole_while_it_is_extended(tmp_path) -> None:
    out = tmp_path / "out.jsonl"
    first = ShardedWriter(out)
    first.add("a", [{"v": 1}])
    first.finish()
    before = out.read_bytes()
    second = ShardedWriter(out, shard_size=1)
    second.add("b", [{"v": 2}])
    second.flush()
    assert out.read_bytes() == before  # appended to a copy, not to the output itself
    second.finish()
    assert list(read_rows(out)) == [{"v": 1}, {"v": 2}]
    empty = ShardedWriter(tmp_path / "empty.jsonl")
    empty.finish()
    again = ShardedWriter(tmp_path / "empty.jsonl")  # a finished output with no rows, extended
    again.add("x", [{"v": 0}])
    again.finish()
    assert list(read_rows(tmp_path / "empty.jsonl")) == [{"v": 0}]


def test_jsonl_rows_round_trip_whatever_they_hold(tmp_path) -> None:
    """The fast encoder (orjson) and its fallback (json) together write every row json could, refuse
    what it refused, and write NaN as null (JSON readers refuse json's bare NaN)."""
    import datasets

    rows = [
        {"text": 'é \u2028 \x00 \x7f \U0001f600 "quoted" \\ <DFF>', "n": 1},
        {"text": "x" * 200_000, "n": -(2**63)},
        {"text": "big", "n": 2**70},  # orjson refuses integers over 64 bits: json writes it
        {"text": None, "n": None},
    ]
    write_rows(tmp_path / "t.jsonl", rows)
    assert list(read_rows(tmp_path / "t.jsonl")) == rows
    lines = (tmp_path / "t.jsonl").read_text("utf-8").rstrip("\n").split("\n")  # not splitlines: U+2028
    assert [json.loads(line) for line in lines] == rows
    write_rows(tmp_path / "f.jsonl", [{"x": float("nan"), "y": 1.5}])
    assert list(read_rows(tmp_path / "f.jsonl")) == [{"x": None, "y": 1.5}]
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "f.jsonl"), split="train")
    assert loaded[0] == {"x": None, "y": 1.5}
    with pytest.raises(UnicodeEncodeError):
        write_rows(tmp_path / "s.jsonl", [{"text": "lone \ud800 surrogate"}])
    with pytest.raises(TypeError):
        write_rows(tmp_path / "o.jsonl", [{"text": object()}])
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_write_rows_of_nothing_gives_a_readable_table(tmp_path, suffix) -> None:
    """An empty JSONL is one blank line (datasets cannot read 0 bytes); the binary writer once wrote
    it as str and crashed."""
    import datasets

    out = tmp_path / f"empty.{suffix}"
    write_rows(out, [])
    assert list(read_rows(out)) == []
    if suffix == "jsonl":
        assert out.read_bytes() == b"\n"
        streamed = datasets.load_dataset("json", data_files=str(out), split="train", streaming=True)
        assert list(streamed) == []  # (not streaming, datasets 5 refuses any 0-row split)
