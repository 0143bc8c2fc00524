"""Shared data I/O: streaming reads, atomic and resumable sharded writes, the parallel map."""

from __future__ import annotations

import gzip
import json

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
    with pytest.raises(TableError, match="no editlm summary"):
        ShardedWriter(out)


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
