"""How mined rows reach the disk: Parquet shards concatenated without encoding them again (their column
chunks copied, the footer's offsets moved), Arrow columns built without pandas, the same rows."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.io.parquet_concat import concat_parquet, decode_struct, encode_struct, read_footer
from editlm.io.tables import ShardedWriter, _column, _parquet_options, read_rows

ROOT = Path(__file__).resolve().parents[1]


def _python(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter with this checkout's source first (what it imports is its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)


REAL = Path(os.environ.get("EDITLM_REAL_REPOS", "/work/shared/repos"))

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)  # no lone surrogates: not UTF-8
row = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a.py", "b.c", "ü/ß.rs", ""]) | st.none(),
        "text": texts | st.none(),
        "count": st.integers(-(2**63), 2**63 - 1) | st.none(),
    }
)
SCHEMA = pa.schema([("name", pa.string()), ("text", pa.string()), ("count", pa.int64())])


@settings(max_examples=60, deadline=None)
@given(st.lists(texts | st.none(), max_size=40), st.lists(st.integers(-(2**63), 2**63 - 1) | st.none()))
def test_columns_built_from_buffers_are_what_pa_array_builds(strings, numbers) -> None:
    assert _column(strings, pa.string()).equals(pa.array(strings, type=pa.string()))
    assert _column(numbers, pa.int64()).equals(pa.array(numbers, type=pa.int64()))
    mixed = [*numbers, "text"]  # a type pa.array refuses is refused the same way
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        _column(mixed, pa.int64())


def _write(path, rows, **options):
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, path, **options)
    return table


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(row, max_size=30), min_size=1, max_size=5),
    st.lists(st.sampled_from(["zstd", "snappy", "none", "gzip"]), min_size=5, max_size=5),
    st.lists(st.sampled_from([1, 3, 7, 1000]), min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_concatenated_files_read_back_as_the_rows_in_order(tmp_path_factory, shards, codecs, groups, dicts):
    tmp = tmp_path_factory.mktemp("cat")
    paths, tables = [], []
    for k, rows in enumerate(shards):
        path = tmp / f"{k}.parquet"
        tables.append(
            _write(path, rows, compression=codecs[k], row_group_size=groups[k], use_dictionary=dicts[k])
        )
        meta, start = read_footer(path)
        assert encode_struct(meta) == path.read_bytes()[start:-8]  # the codec gives back pyarrow's bytes
        paths.append(path)
    out = tmp / "out.parquet"
    assert concat_parquet(paths, out)
    assert pq.read_table(out).equals(pa.concat_tables(tables))
    merged = pq.ParquetFile(out).metadata
    assert merged.num_row_groups == sum(pq.ParquetFile(p).metadata.num_row_groups for p in paths)
    assert merged.num_rows == sum(len(rows) for rows in shards)
    for k in range(merged.num_row_groups):  # each row group readable alone (its offsets were moved right)
        pq.ParquetFile(out).read_row_group(k)


def test_files_it_cannot_move_are_refused_and_the_output_is_not_written(tmp_path) -> None:
    rows = [{"name": "a", "text": "x" * 100, "count": 1}]
    plain = tmp_path / "plain.parquet"
    _write(plain, rows)
    indexed = tmp_path / "indexed.parquet"
    _write(indexed, rows, write_page_index=True)  # page index: offsets outside the footer
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"name": ["a"]}), other)  # another schema
    bloom = tmp_path / "bloom.parquet"
    try:
        _write(bloom, rows, bloom_filter_options={"name": {}})
    except TypeError:  # a pyarrow without Bloom filters
        bloom = indexed
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(plain.read_bytes()[:-3])
    out = tmp_path / "out.parquet"
    for bad in (indexed, other, bloom, broken):
        assert not concat_parquet([plain, bad], out)
        assert not out.exists()
    assert concat_parquet([plain, plain], out)
    assert pq.read_table(out).num_rows == 2


def test_thrift_struct_round_trip_covers_every_kind() -> None:
    # field ids with gaps over 15, negative numbers, nested lists of structs, a map, booleans
    fields = [
        [1, 5, -7],
        [2, 1, True],
        [3, 2, False],
        [20, 6, 2**40],
        [21, 8, b"bytes"],
        [22, 9, (12, [[[1, 5, 3]], [[1, 5, 4]]] * 10)],
        [23, 11, (8, 5, [(b"k", 1), (b"l", 2)])],
        [24, 9, (1, [1, 2, 1])],
        [25, 7, b"\0" * 8],
        [26, 3, 200],
    ]
    assert decode_struct(encode_struct(fields)) == fields


def test_a_parquet_output_is_its_shards_copied_not_encoded_again(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out.parquet"
    writer = ShardedWriter(out, shard_bytes=20_000, schema=SCHEMA)
    expected = []
    for key in range(30):
        rows = [{"name": f"f{key}.py", "text": f"line {key}\n" * 300, "count": key if key % 4 else None}]
        expected += rows
        writer.add(key, rows)
    writer.flush()
    shards = sorted(writer.partial.glob("part-*.parquet"))
    assert len(shards) > 3
    chunks = b"".join(s.read_bytes()[4 : read_footer(s)[1]] for s in shards)

    def no_encoding(*args, **kwargs):
        raise AssertionError("finish() encoded the rows again")

    monkeypatch.setattr(pq, "ParquetWriter", no_encoding)
    monkeypatch.setattr(pq, "write_table", no_encoding)
    writer.finish()
    data = out.read_bytes()
    assert data[4 : 4 + len(chunks)] == chunks  # the shards' column chunks, byte for byte, in order
    assert list(read_rows(out)) == expected
    assert pq.read_schema(out).equals(SCHEMA)


def test_shards_are_written_as_every_output_is(tmp_path) -> None:
    """zstd, no page index (the concatenation needs none), long texts without a dictionary."""
    out = tmp_path / "out.parquet"
    writer = ShardedWriter(out, schema=SCHEMA)
    writer.add(1, [{"name": "a.py", "text": "x = 1\n" * 200, "count": 3}])
    writer.flush()
    (shard,) = writer.partial.glob("part-*.parquet")
    column = pq.ParquetFile(shard).metadata.row_group(0)
    assert {column.column(i).compression for i in range(3)} == {"ZSTD"}
    assert not column.column(0).has_offset_index and not column.column(1).has_offset_index
    assert "PLAIN_DICTIONARY" in column.column(0).encodings or "RLE_DICTIONARY" in column.column(0).encodings
    assert not {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(column.column(1).encodings)
    assert _parquet_options(None)["write_page_index"] is False
    writer.finish()


def test_an_output_resumes_from_arrow_shards_an_older_editlm_left(tmp_path) -> None:
    from editlm.io.tables import _write_keys, _write_table

    out = tmp_path / "out.parquet"
    first = ShardedWriter(out, schema=SCHEMA, settings={"job": 1})
    first.add(0, [{"name": "a", "text": "one", "count": 1}])
    first.flush()
    old = first.partial / "part-00001.arrow"  # what the previous editlm wrote as shards
    _write_table(old, [{"name": "b", "text": "two", "count": 2}], "parquet", SCHEMA)
    _write_keys(first.partial / "part-00001.keys.json", [1], [], 1)
    again = ShardedWriter(out, schema=SCHEMA, settings={"job": 1})
    assert again.done == {0, 1}
    again.add(2, [{"name": "c", "text": "three", "count": 3}])
    again.finish()
    assert [r["text"] for r in read_rows(out)] == ["one", "two", "three"]


def test_writing_a_mined_output_does_not_import_pandas(tmp_path) -> None:
    script = (
        "import sys\n"
        "from editlm.io.tables import ShardedWriter\n"
        "from editlm.data.mining.job import _schema\n"
        "from editlm.data.mining.commits import COLUMNS\n"
        f"w = ShardedWriter({str(tmp_path / 'o.parquet')!r}, schema=_schema(), shard_bytes=100)\n"
        "for k in range(5):\n"
        "    w.add(k, [{c: (k if c == 'crop_start' else f'{c} {k}') for c in COLUMNS}])\n"
        "w.finish()\n"
        "print('pandas' in sys.modules)\n"
    )
    done = _python(script)
    assert done.stdout.strip() == "False", done.stderr
    assert len(pq.read_table(tmp_path / "o.parquet")) == 5


@pytest.mark.skipif(not (REAL / "markupsafe.bundle").exists(), reason="no shared real histories here")
def test_real_history_through_many_shards_gives_the_rows_mined(tmp_path) -> None:
    """markupsafe's 1,150 rows flushed every 200 kB (dozens of shards) and concatenated: the output
    holds exactly the rows ``iter_records`` makes, in order, and ``datasets`` loads it."""
    import datasets

    from editlm.data.mining.commits import MiningOptions, iter_records
    from editlm.data.mining.job import run_mining

    clone = tmp_path / "markupsafe"
    subprocess.run(["git", "clone", "-q", str(REAL / "markupsafe.bundle"), str(clone)], check=True)
    options = MiningOptions(filter="none")
    out = tmp_path / "rows.parquet"
    summary = run_mining([clone], out, options, workers=1, shard_bytes=200_000)
    assert pq.ParquetFile(out).metadata.num_row_groups > 20
    expected = list(iter_records(clone, options))
    assert summary["rows"] == len(expected) > 1000
    mined = list(read_rows(out))
    assert [{k: r[k] for k in expected[0]} for r in mined] == expected
    loaded = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert loaded.num_rows == len(expected) and loaded[7]["diff"] == expected[7]["diff"]


# --------------------------------------------------------------------------- a pool's workers write their rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from test_commits import HUGE_LIMIT, build_history

    from editlm.data.mining.commits import MiningOptions, iter_records

    history = build_history(tmp_path_factory.mktemp("pool") / "demo")
    options = MiningOptions(max_file_bytes=HUGE_LIMIT)
    return history, options, list(iter_records(history.path, options))


def _key(row: dict) -> tuple:
    return row["commit"], row["path"], row["sample"]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_pool_workers_write_their_rows_and_send_only_keys(demo, tmp_path, monkeypatch, suffix) -> None:
    """No row crosses the pipe to the job; a commit is reported only after its rows are on disk."""
    from test_commits import EXPECTED_SKIPS

    from editlm.data.mining import job

    history, options, expected = demo
    rows_of = {}
    for row in expected:
        rows_of.setdefault(row["commit"], set()).add(row["path"])
    seen, landed, early = [], set(), []
    real = job.stream_unordered

    def watched(*args, **kwargs):
        for event in real(*args, **kwargs):
            kind, _, commit, key, value = event
            seen.append(kind)
            if kind == "shard":
                assert Path(value).exists()
                landed.update((k[1], k[3]) for k in key)
            elif kind == "commit" and any((commit, p) not in landed for p in rows_of.get(commit, ())):
                early.append(commit)
            elif kind == "file":
                assert isinstance(value, str)  # a dropped file's reason, never a row
            yield event

    monkeypatch.setattr(job, "stream_unordered", watched)
    out = tmp_path / f"rows.{suffix}"
    summary = job.run_mining([history.path], out, options, workers=2, batch_size=3)
    assert "shard" in seen and not early
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))
    assert sorted(map(_key, read_rows(out))) == sorted(map(_key, expected))
    assert summary["rows"] == len(expected)


def test_a_pool_job_stopped_midway_resumes_exactly(demo, tmp_path) -> None:
    from test_commits import EXPECTED_SKIPS

    from editlm.data.mining.job import run_mining, settings_of

    history, options, expected = demo
    out = tmp_path / "rows.parquet"
    calls = []

    def stop(done, total):
        calls.append(done)
        if len(calls) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_mining([history.path], out, options, workers=2, batch_size=2, progress=stop)
    partial = tmp_path / "rows.parquet.partial"
    assert not out.exists() and list(partial.glob("part-*.parquet"))
    stray = partial / "worker-99-0-deadbeef.parquet"
    stray.write_bytes(b"a shard that a killed worker never handed over")
    ShardedWriter(out, settings=settings_of(options, "HEAD"))
    assert not stray.exists()
    summary = run_mining([history.path], out, options, workers=2, batch_size=2)
    assert 0 < summary["this_run"]["commits_mined"] < len(history.ids)
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))
    mined = sorted(map(_key, read_rows(out)))
    assert mined == sorted(map(_key, expected))  # nothing lost, nothing twice


FAULTS = """
import random, resource, sys
if sys.argv[1] == "tuned":
    from editlm.data.mining.allocator import keep_freed_memory
    assert keep_freed_memory()
rng = random.Random(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for shard in range(20):  # what a mining job does: a shard's worth of file texts made, then dropped
    held, size = [], 0
    while size < 32 << 20:
        held.append(b"x" * rng.choice([200_000, 700_000, 3_000_000]))
        size += len(held[-1])
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_the_mining_processes_reuse_freed_memory_instead_of_faulting_it_in_again() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(ROOT / "src")

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", FAULTS, mode], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert faults("tuned") * 5 < faults("default")  # 8,900 against 160,000 page faults here


# --------------------------------------------------------------------------- start-up of the command line


def test_the_command_table_names_what_each_module_registers() -> None:
    from editlm.cli import COMMAND_MODULES, COMMANDS, make_app

    registered = {}
    for module in COMMAND_MODULES:
        made = make_app([module])
        names = [c.name or c.callback.__name__.replace("_", "-") for c in made.registered_commands]
        names += [g.name for g in made.registered_groups]
        registered.update(dict.fromkeys(names, module))
    assert registered == COMMANDS


def test_editlm_mine_imports_only_the_mining_command() -> None:
    script = (
        "import sys\n"
        "from editlm.cli import main\n"
        "try:\n"
        "    main(['mine', '--help'])\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        "print(sorted(m for m in sys.modules if m.startswith(('editlm.train', 'editlm.generate', 'editlm.serve'))))\n"
    )
    done = _python(script)
    assert "Mine git history" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_mining_into_jsonl_never_imports_pyarrow(demo, tmp_path) -> None:
    """pyarrow's import was a sixth of ``editlm mine`` on a small repository; JSONL does not need it.
    Its summary still lists every column, and a Parquet job still gets the full schema."""
    history, _, rows = demo
    script = (
        "import sys, json\n"
        "from editlm.cli import main\n"
        "try:\n"
        f"    main(['mine', {str(history.path)!r}, '-o', {str(tmp_path / 'o.jsonl')!r}, '--filter', 'none'])\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
        "print('pyarrow' in sys.modules)\n"
    )
    done = _python(script)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr
    from editlm.data.mining.commits import COLUMNS

    summary = json.loads((tmp_path / "o.jsonl.summary.json").read_text())
    assert summary["columns"] == list(COLUMNS)
    assert summary["rows"] == len(list(read_rows(tmp_path / "o.jsonl"))) >= len(rows) - 1 > 0
