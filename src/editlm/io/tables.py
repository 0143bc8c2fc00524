"""Datasets on disk: stream JSONL or Parquet in; write Parquet or JSONL out, atomically and resumably.

Every data job (LintSeq, mining, bugs, ...) reads its input with :func:`read_rows` and writes with
:class:`ShardedWriter`: finished work lands in shards under ``OUTPUT.partial/`` as it goes, a rerun
skips the keys already there (only when it was made with the same settings), and
:meth:`ShardedWriter.finish` merges the shards into ``OUTPUT`` with one atomic rename, with
``OUTPUT.summary.json`` (for people) and ``OUTPUT.resume.json`` (finished keys, for the next run) beside
it. Outputs are plain Parquet/JSONL, so ``datasets.load_dataset("parquet", ...)`` reads them.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PARQUET = (".parquet", ".pq")
JSONL = (".jsonl", ".jsonl.gz", ".ndjson")


class TableError(ValueError):
    """A table that cannot be read or written: unknown format, bad line, missing field."""


def table_format(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith(PARQUET):
        return "parquet"
    if name.endswith(JSONL):
        return "jsonl"
    raise TableError(f"{path}: unknown table format (use .parquet or .jsonl)")


def read_rows(path: str | Path, columns: list[str] | None = None, batch_size: int = 512) -> Iterator[dict]:
    """Rows of a JSONL (optionally gzipped) or Parquet file, one at a time, never the whole table."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file")
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            reader = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise TableError(f"{path}: not a readable Parquet file: {exc}") from None
        missing = [c for c in columns or [] if c not in reader.schema_arrow.names]
        if missing:
            raise TableError(f"{path}: missing columns {missing}; it has {reader.schema_arrow.names}")
        for batch in reader.iter_batches(batch_size=batch_size, columns=columns):
            yield from batch.to_pylist()
        return
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TableError(f"{path}:{number}: not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise TableError(f"{path}:{number}: a row must be a JSON object")
                if columns:
                    missing = [c for c in columns if c not in row]
                    if missing:
                        raise TableError(f"{path}:{number}: missing fields {missing}")
                    row = {c: row[c] for c in columns}
                yield row
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: not UTF-8: {exc}") from None


def write_rows(path: str | Path, rows: Iterable[dict]) -> int:
    """Write a whole table atomically (small outputs: summaries, benchmarks, results)."""
    rows = list(rows)
    _write_table(Path(path), rows, table_format(path))
    return len(rows)


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write one JSON document atomically."""
    with _atomic(Path(path)) as tmp:
        Path(tmp).write_text(json.dumps(value, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file under this process's umask (``mkstemp``'s files
    are 0600, so outputs written through it would be unreadable to the user's group and others)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # reads the umask without changing it
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, hence the /proc way first)
    os.umask(mask)
    return 0o666 & ~mask


class _atomic:
    """Context manager giving a temporary path beside ``path``, renamed over it on success."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            os.chmod(self.tmp, new_file_mode())  # mkstemp makes it 0600: give it what open() would
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


class SettingsMismatch(TableError):
    """An existing (finished or partial) output was made with other settings than this job's."""

    def __init__(self, path: Path, changed: dict):
        self.path, self.changed = path, changed
        what = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        super().__init__(
            f"{path} was made with other settings ({what}); resuming would mix two datasets in one file. "
            "Rerun with the same settings to continue it, write elsewhere, or overwrite it "
            "(--overwrite, ShardedWriter(overwrite=True))"
        )


ROWS = "rows.jsonl"  # a JSONL output's rows, in OUTPUT.partial/, until finish() renames it into place


class ShardedWriter:
    """Resumable output keyed by input: ``add(key, rows)`` or ``skip(key, reason)`` once per input.

    Finished work is written in shards to ``OUTPUT.partial/``, atomically and together with the keys
    it covers, whenever ``shard_size`` rows or ``shard_bytes`` bytes of text are buffered (bytes bound
    memory however long the rows are), so a job killed at any point loses at most the unflushed shard.
    A Parquet output's shards are Parquet (zstd), encoded in a background thread while the job goes on
    (pyarrow lets go of the GIL while it compresses), one at a time, so at most two shards' rows are
    held (and a ``kill -9`` loses at most those two); :meth:`flush` waits for it. :meth:`finish`
    copies their column chunks into the output without encoding anything again
    (:mod:`editlm.io.parquet_concat`). A JSONL output's shards are appended to one file as they are
    flushed (each key list records where its rows end), which :meth:`finish` renames into place.
    ``finish()`` merges the shards into ``OUTPUT`` with one rename and writes two files beside it:
    ``OUTPUT.summary.json`` (for people: rows, drops by reason, the job's numbers) and
    ``OUTPUT.resume.json`` (for the next run: the settings and every finished key and skip).

    ``settings`` (a JSON-able dict: the job's options) is recorded; resuming a partial or finished
    output made with other settings raises :class:`SettingsMismatch` unless ``overwrite=True``, which
    deletes the old output first. ``schema`` (a ``pyarrow.Schema``, or a function that makes one, called
    only for Parquet so that a JSONL job never imports pyarrow) fixes the Parquet columns, so that an
    output without rows still has all its columns (JSONL cannot carry a schema; the summary lists
    ``columns``, by default the schema's names).
    """

    def __init__(
        self,
        path: str | Path,
        shard_size: int = 1000,
        *,
        settings: dict | None = None,
        overwrite: bool = False,
        schema=None,
        shard_bytes: int = 64 << 20,
        columns: list[str] | tuple[str, ...] | None = None,
    ):
        if shard_size < 1 or shard_bytes < 1:
            raise ValueError("shard_size and shard_bytes must be >= 1")
        self.path = Path(path)
        self.format = table_format(self.path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.summary_path = self.path.with_name(self.path.name + ".summary.json")
        self.state_path = self.path.with_name(self.path.name + ".resume.json")
        self.settings = _plain(settings or {})
        self._schema = schema
        self.columns = list(columns) if columns is not None else None
        self.shard_size = shard_size
        self.shard_bytes = shard_bytes
        self.done: set = set()
        self.skipped: Counter[str] = Counter()
        self.rows_written = 0
        self._rows: list[dict] = []
        self._bytes = 0
        self._keys: list = []
        self._skips: list[list] = []
        self._next = 0  # number of the next shard
        self._pool = None  # the background thread that writes shards (made on the first flush)
        self._pending = None  # the shard it is writing (a Future)
        self._dictionary: list[str] | None = None  # Parquet columns written with a dictionary
        if overwrite:
            self.remove()
        self._resume()

    @property
    def schema(self):
        """The Parquet schema (None: the rows' own), made on first use when given as a function."""
        if callable(self._schema):
            self._schema = self._schema()
        return self._schema

    def remove(self) -> None:
        """Delete the output, its partial shards, summary and resume state."""
        if self.partial.exists():
            shutil.rmtree(self.partial)
        for path in (self.path, self.summary_path, self.state_path):
            path.unlink(missing_ok=True)

    def _check(self, recorded: dict | None, where: Path) -> None:
        if recorded is None:
            raise TableError(
                f"{self.path} exists but {where} records no settings (made by an older editlm or another "
                "tool); remove it, write elsewhere, or overwrite it (--overwrite)"
            )
        if recorded != self.settings:
            names = dict.fromkeys([*recorded, *self.settings])
            changed = {k: (recorded.get(k), self.settings.get(k)) for k in names}
            raise SettingsMismatch(self.path, {k: v for k, v in changed.items() if v[0] != v[1]})

    def _resume(self) -> None:
        settings_file = self.partial / "settings.json"
        if self.path.exists() and not self.partial.exists():
            # A finished output: adopt it as the first shard so new keys are appended to it.
            if not self.state_path.exists():
                raise TableError(
                    f"{self.path} exists but has no editlm resume state ({self.state_path.name}) beside it; "
                    "remove it, write elsewhere, or overwrite it (--overwrite)"
                )
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self._check(state.get("settings"), self.state_path)
            self.partial.mkdir(parents=True)
            write_json(settings_file, self.settings)
            end = None  # where a JSONL output's rows end (see ROWS)
            if self.format == "jsonl":  # copied (not linked): new rows are appended to the copy
                end = 0
                if state["rows"]:
                    shutil.copyfile(self.path, self.partial / ROWS)
                    end = (self.partial / ROWS).stat().st_size
            else:
                shard = self.partial / f"part-00000{self._final_suffix}"
                try:  # a hard link costs nothing and leaves OUTPUT in place until finish() replaces it
                    os.link(self.path, shard)
                except OSError:
                    shutil.copyfile(self.path, shard)
            _write_keys(
                self.partial / "part-00000.keys.json", state["keys"], state["skips"], state["rows"], end
            )
        if not self.partial.exists():
            return
        self._check(
            json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else None,
            settings_file,
        )
        for keys_file in sorted(self.partial.glob("part-*.keys.json")):
            meta = json.loads(keys_file.read_text(encoding="utf-8"))
            self.done.update(_key(k) for k in meta["keys"])
            for key, reason in meta["skips"]:
                self.done.add(_key(key))
                self.skipped[reason] += 1
            self.rows_written += meta["rows"]
            self._next = max(self._next, _shard_number(keys_file) + 1)
        if self.format == "jsonl":
            self._resume_rows()
        for stray in self._shards():
            if not (self.partial / f"{stray.name.split('.')[0]}.keys.json").exists():
                stray.unlink()  # a shard whose key list never landed is incomplete
        for stray in [*self.partial.glob("worker-*"), *self.partial.glob(".worker-*")]:
            stray.unlink()  # written by a worker process of a job that ended before adopting it

    def shard_folder(self) -> Path:
        """Where worker processes write shards for :meth:`adopt` (made now, with the settings)."""
        if not self.partial.exists():
            self.partial.mkdir(parents=True)
            write_json(self.partial / "settings.json", self.settings)
        return self.partial

    def worker_shards(self) -> str:
        """Where worker processes write shards for :meth:`adopt`: a path with ``{}`` for a name
        unique to the worker and shard (the folder is made now, with the settings)."""
        self.shard_folder()
        return str(self.partial / f"worker-{{}}{self._suffix}")

    def adopt(self, shard: str | Path, keys: list, rows: int) -> None:
        """Take a shard that a worker process wrote (with :func:`write_shard`, at a path from
        :meth:`worker_shards`) holding ``rows`` rows,
        with the keys of those rows: it becomes the next shard, recorded as :meth:`flush` records one
        (moved into place, then its key list written). Rows then never cross a pipe to this process."""
        self._wait()
        shard = Path(shard)
        number = self._next
        self._next += 1
        end = None
        if self.format == "jsonl":
            end = self._append_file(shard)
            shard.unlink()
        else:
            os.replace(shard, self.partial / f"part-{number:05d}{self._suffix}")
        _write_keys(self.partial / f"part-{number:05d}.keys.json", keys, [], rows, end)
        self.done.update(_key(k) for k in keys)
        self.rows_written += rows

    @property
    def _suffix(self) -> str:
        """Shards of a Parquet output are Parquet, encoded once: :meth:`finish` concatenates them as
        they are. (Arrow IPC shards, which an older editlm wrote, are still read and re-encoded.)"""
        return ".parquet" if self.format == "parquet" else ".jsonl"

    @property
    def _final_suffix(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"

    def _shards(self) -> list[Path]:
        if not self.partial.exists():
            return []
        found = {
            *self.partial.glob(f"part-*{self._suffix}"),
            *self.partial.glob(f"part-*{self._final_suffix}"),
            *(self.partial.glob("part-*.arrow") if self.format == "parquet" else ()),
        }
        return sorted(found)

    def add(self, key, rows: list[dict]) -> None:
        self._keys.append(key)
        self._rows.extend(rows)
        self._bytes += sum(_row_bytes(row) for row in rows)
        self.done.add(_key(key))
        if len(self._rows) >= self.shard_size or self._bytes >= self.shard_bytes:
            self._flush(wait=False)

    def skip(self, key, reason: str) -> None:
        self._skips.append([key, reason])
        self.skipped[reason] += 1
        self.done.add(_key(key))
        if len(self._skips) >= self.shard_size:
            self._flush(wait=False)

    def flush(self) -> None:
        """Write what is buffered as a shard and wait until every shard is on disk."""
        self._flush(wait=True)

    def _flush(self, wait: bool) -> None:
        self._wait()  # one shard in the background at a time: memory stays at two shards
        if self._keys or self._skips:
            if not self.partial.exists():
                self.partial.mkdir(parents=True)
                write_json(self.partial / "settings.json", self.settings)
            if self.format == "parquet" and self._rows and self._dictionary is None:
                self._dictionary = _short_columns(self._rows)
            number = self._next
            shard = self.partial / f"part-{number:05d}{self._suffix}"
            job = (shard, self._rows, self._keys, self._skips, self._dictionary)
            self._next += 1
            self.rows_written += len(self._rows)
            self._rows, self._keys, self._skips, self._bytes = [], [], [], 0
            if wait or self.format != "parquet":  # JSONL: json.dumps holds the GIL, a thread gains nothing
                self._write_shard(*job)
            else:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
                self._pending = self._pool.submit(self._write_shard, *job)
        if wait and self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _wait(self) -> None:
        """Wait for the shard being written in the background; its error, if any, is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write_shard(self, shard: Path, rows: list, keys: list, skips: list, dictionary) -> None:
        keys_file = shard.with_name(f"{shard.name.split('.')[0]}.keys.json")
        if self.format == "jsonl":
            with open(self.partial / ROWS, "ab") as handle:
                _write_jsonl(handle, rows)
                end = handle.tell()
            _write_keys(keys_file, keys, skips, len(rows), end)
            return
        if rows:
            _write_table(shard, rows, self.format, self.schema, dictionary)
        _write_keys(keys_file, keys, skips, len(rows))

    # JSONL: every shard's rows are appended to one file, ``OUTPUT.partial/rows.jsonl``, and each key
    # list records where its rows end, so that finish() renames that file into place instead of
    # copying every shard once more (a third of a one-process JSONL run on more-itertools' 700 MB).

    def _append_file(self, source: Path) -> int:
        with open(source, "rb", buffering=0) as src, open(self.partial / ROWS, "ab", buffering=0) as target:
            _append(src, target)
            return target.tell()

    def _resume_rows(self) -> None:
        """Make ``rows.jsonl`` end where the last recorded shard ended: rows written after it (a job killed
        before their key list landed) are cut off; shards of an older editlm (one file each) are
        appended to it in order."""
        rows = self.partial / ROWS
        metas = [
            (f, json.loads(f.read_text(encoding="utf-8")))
            for f in sorted(self.partial.glob("part-*.keys.json"))
        ]
        if any("end" not in meta for _, meta in metas):  # an older editlm's shards: one file each
            rows.unlink(missing_ok=True)
            for keys_file, meta in metas:
                shard = keys_file.with_name(f"{keys_file.name.split('.')[0]}.jsonl")
                end = (
                    self._append_file(shard)
                    if shard.exists()
                    else (rows.stat().st_size if rows.exists() else 0)
                )
                _write_keys(keys_file, meta["keys"], meta["skips"], meta["rows"], end)
                shard.unlink(missing_ok=True)
            return
        end = max((meta["end"] for _, meta in metas), default=0)
        size = rows.stat().st_size if rows.exists() else 0
        if size < end:
            raise TableError(
                f"{rows} holds {size} bytes but its shards' records end at {end}: it was cut short (a crash "
                "before the data reached the disk?); write elsewhere or start again (--overwrite)"
            )
        if size > end:
            os.truncate(rows, end)

    def finish(self, extra_summary: dict | None = None) -> dict:
        """Merge the shards into the output file; returns the summary that is also written (the
        finished keys go to ``OUTPUT.resume.json``, not into the summary)."""
        self.flush()
        keys: list = []
        skips: list = []
        if self.partial.exists():
            for keys_file in sorted(self.partial.glob("part-*.keys.json")):
                meta = json.loads(keys_file.read_text(encoding="utf-8"))
                keys += meta["keys"]
                skips += meta["skips"]
        rows_file = self.partial / ROWS
        if self.format == "jsonl":
            if rows_file.exists() and rows_file.stat().st_size:
                # renamed straight into place (atomic): renaming it over _atomic's placeholder first
                # made ext4 write the whole file out at once (auto_da_alloc), 0.15-0.2 s for 600 MB
                os.chmod(rows_file, new_file_mode())
                os.replace(rows_file, self.path)
            else:  # datasets cannot read a 0-byte JSONL (StopIteration); a blank line it can
                with _atomic(self.path) as tmp:
                    Path(tmp).write_bytes(b"\n")
            columns = self.columns
            if columns is None and self._schema is not None:
                columns = list(self.schema.names)
        else:
            with _atomic(self.path) as tmp:
                columns = _merge(self._shards(), tmp, self.schema)
        summary = {
            "output": str(self.path),
            "rows": self.rows_written,
            "inputs_written": len(keys),
            "skipped": dict(sorted(self.skipped.items())),
            "settings": self.settings,
            **({"columns": columns} if columns else {}),
            **(extra_summary or {}),
        }
        state = {"settings": self.settings, "rows": self.rows_written, "keys": keys, "skips": skips}
        write_json(self.state_path, state, indent=None)
        write_json(self.summary_path, summary)
        if self.partial.exists():
            shutil.rmtree(self.partial)
        return summary


def write_shard(path: str | Path, rows: list[dict], schema=None) -> None:
    """Write ``rows`` where :meth:`ShardedWriter.worker_shards` said, encoded as the writer encodes
    its own shards (so that they concatenate without encoding again), for :meth:`ShardedWriter.adopt`."""
    path = Path(path)
    fmt = table_format(path)
    _write_table(path, rows, fmt, schema, _short_columns(rows) if fmt == "parquet" else None)


def _plain(value):
    """``value`` as it reads back from JSON (tuples become lists), so recorded and given settings compare."""
    return json.loads(json.dumps(value))


def _row_bytes(row: dict) -> int:
    """A cheap size estimate: the length of its text and bytes values plus 8 per other value."""
    return sum(len(v) if isinstance(v, str | bytes) else 8 for v in row.values())


def _shard_number(keys_file: Path) -> int:
    return int(keys_file.name.split(".")[0].split("-")[1])


def _key(key):
    """Keys come back from JSON as lists where they were tuples; make them hashable again."""
    return tuple(_key(k) for k in key) if isinstance(key, list | tuple) else key


def _write_keys(path: Path, keys: list, skips: list, rows: int, end: int | None = None) -> None:
    record = {"keys": keys, "skips": skips, "rows": rows, **({"end": end} if end is not None else {})}
    write_json(path, record, indent=None)


# zstd at level 3 (pyarrow's default is 1): on mined rows (many versions of one file one after another)
# its larger match window makes the output about 3x smaller *and* encoding faster (0.43 s instead of
# 0.82 s for the 680 MB of more-itertools' rows); on small files the two levels cost the same.
ZSTD_LEVEL = 3


def _parquet_options(dictionary: list[str] | None) -> dict:
    """How shards and outputs are encoded. ``dictionary``: the columns worth a dictionary (short
    values: names, ids, labels; see :func:`_short_columns`); long texts are written plain and without
    min/max statistics, which never pay off on whole files. No page index nor Bloom filter, so that
    shards can be concatenated as they are (:mod:`editlm.io.parquet_concat`)."""
    options = {"compression": "zstd", "compression_level": ZSTD_LEVEL, "write_page_index": False}
    if dictionary is not None:
        options.update(use_dictionary=dictionary, write_statistics=dictionary)
    return options


def _short_columns(rows: list[dict]) -> list[str]:
    """Columns whose text values average under 256 characters in ``rows`` (and every other column):
    hashing long texts for a dictionary that never pays off was most of the encoding time."""
    total: Counter[str] = Counter()
    count: Counter[str] = Counter()
    names = dict.fromkeys(k for row in rows for k in row)
    for row in rows:
        for name, value in row.items():
            if isinstance(value, str):
                total[name] += len(value)
                count[name] += 1
    return [n for n in names if not count[n] or total[n] / count[n] < 256]


def _write_jsonl(handle, rows: list[dict]) -> None:
    """``rows`` as JSON lines (UTF-8, non-ASCII kept) to a binary file.

    orjson, not ``json.dumps``, which was a third of an ``editlm mine`` into JSONL: on more-itertools'
    680 M characters the job takes 2.4 s against 4.6-4.8 s (``benchmarks/mining_speed.py``, README). A row orjson refuses (an integer over 64 bits, a key that is not a
    string, a lone surrogate, a type JSON has no form for) goes through ``json`` instead, so it is
    written or refused exactly as before (a lone surrogate: UnicodeEncodeError; an unknown type:
    TypeError). NaN and infinities are written as null, which JSON readers accept (``json``'s
    ``NaN`` is not JSON; pyarrow and ``datasets`` refuse it)."""
    import orjson

    dumps, failed, newline = orjson.dumps, orjson.JSONEncodeError, orjson.OPT_APPEND_NEWLINE
    for row in rows:
        try:
            line = dumps(row, option=newline)  # not line + b"\n": a copy of each row
        except failed:
            line = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
        handle.write(line)


def _write_table(path: Path, rows: list[dict], fmt: str, schema=None, dictionary=None) -> None:
    with _atomic(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = _to_table(rows, schema)
            if path.suffix == ".arrow":
                with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
            elif not rows:
                pq.ParquetWriter(tmp, table.schema).close()  # no row group: see _merge
            else:
                pq.write_table(table, tmp, **_parquet_options(dictionary))
        else:
            with open(tmp, "wb") as handle:
                _write_jsonl(handle, rows)
                if not rows:  # datasets cannot read a 0-byte JSONL (as in finish)
                    handle.write(b"\n")


def _to_table(rows: list[dict], schema=None):
    """Rows as an Arrow table, built column by column (several times faster than
    ``Table.from_pylist`` on long texts); mixed types fall back to ``from_pylist``'s rules."""
    import pyarrow as pa

    if schema is not None:
        names = schema.names
    else:
        names = list(dict.fromkeys(k for row in rows for k in row))
    try:
        arrays = [
            _column([row.get(n) for row in rows], schema.field(n).type if schema is not None else None)
            for n in names
        ]
        return (
            pa.Table.from_arrays(arrays, schema=schema)
            if schema is not None
            else pa.table(dict(zip(names, arrays, strict=True)))
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_pylist(rows, schema=schema)


def _column(values: list, kind=None):
    """One Arrow column. Text and integer columns of a known type are built from their buffers here:
    ``pa.array`` of a Python list imports pandas on its first call (to ask whether the list is a pandas
    object), which costs more than mining a small repository; built this way it is as fast (0.35 s
    for 680 MB of text) and gives the same array. Anything else goes to ``pa.array``."""
    import pyarrow as pa

    if kind == pa.string() and all(v is None or type(v) is str for v in values):
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
        data = b"".join(encoded)
        if len(data) < 2**31:  # int32 offsets; pa.array splits longer columns into chunks
            import itertools
            from array import array

            offsets = array("i", [0])
            offsets.extend(itertools.accumulate(map(len, encoded)))
            return pa.StringArray.from_buffers(
                len(values), pa.py_buffer(offsets), pa.py_buffer(data), _validity(values)
            )
    elif kind == pa.int64() and all(v is None or type(v) is int for v in values):
        from array import array

        try:
            numbers = array("q", [0 if v is None else v for v in values])
        except OverflowError:
            return pa.array(values, type=kind)
        return pa.Array.from_buffers(kind, len(values), [_validity(values), pa.py_buffer(numbers)])
    return pa.array(values, type=kind)


def _validity(values: list):
    """Arrow's validity bitmap of ``values`` (None: null), or None when nothing is null."""
    import pyarrow as pa

    if all(v is not None for v in values):
        return None
    bitmap = bytearray((len(values) + 7) // 8)
    for i, value in enumerate(values):
        if value is not None:
            bitmap[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bitmap)


def _batches(shard: Path):
    """The record batches of a Parquet or Arrow IPC shard, one at a time (IPC memory-mapped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if shard.suffix == ".arrow":
        reader = pa.ipc.open_file(pa.memory_map(str(shard)))
        for k in range(reader.num_record_batches):
            yield reader.get_batch(k)
        return
    source = pq.ParquetFile(shard)
    for group in range(source.num_row_groups):
        yield from source.read_row_group(group).to_batches()


def _schema_of(shard: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if shard.suffix == ".arrow":
        return pa.ipc.open_file(pa.memory_map(str(shard))).schema
    return pq.read_schema(shard)


def _dictionary_columns(shards: list[Path], schema) -> list[str]:
    """Columns worth dictionary encoding: short values (names, ids, labels), judged on the first
    batch. Long texts (files, diffs) are written plain: hashing them for a dictionary that never
    pays off was most of the encoding time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = next((b for s in shards for b in _batches(s) if b.num_rows), None)
    names = []
    for field in schema:
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            names.append(field.name)
            continue
        if first is None or field.name not in first.schema.names:
            continue
        lengths = pc.utf8_length(first.column(field.name).cast(field.type))
        mean = pc.mean(lengths).as_py()
        if mean is None or mean < 256:
            names.append(field.name)
    return names


def _append(source, target) -> None:
    """Copy the whole of ``source`` to the end of ``target``: in the kernel where it can
    (``copy_file_range``: no pass through Python, a reflink on file systems that share blocks)."""
    copy = getattr(os, "copy_file_range", None)
    if copy is not None:
        try:
            while copy(source.fileno(), target.fileno(), 1 << 30):
                pass
            return
        except OSError:  # another file system, or an old kernel: the portable way, from where it stopped
            pass
    shutil.copyfileobj(source, target)


def _merge(shards: list[Path], out: str, schema=None) -> list[str]:
    """Concatenate Parquet (or older Arrow) shards one batch at a time (memory stays at one batch),
    unifying schemas; a lone Parquet shard (an earlier output with nothing added) is moved into place
    as it is. Returns the columns. (A JSONL output's rows are already one file: see ``ROWS``.)

    An output without rows still gets the full schema, written with no row group at all: pyarrow,
    pandas and ``datasets.load_dataset(..., streaming=True)`` read its columns. (``datasets`` 5.2
    refuses every 0-row split when not streaming, "corresponds to no data", whatever the file.)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if shards and all(s.suffix == ".parquet" for s in shards):
        if schema is None or pq.read_schema(shards[0]).equals(schema):
            if len(shards) == 1:
                os.replace(shards[0], out)
                return pq.read_schema(out).names
            from editlm.io.parquet_concat import concat_parquet

            # Shards of one schema: their column chunks are copied, nothing is encoded again.
            if concat_parquet(shards, out):
                return pq.read_schema(out).names
    schemas = ([schema] if schema is not None else []) + [_schema_of(s) for s in shards]
    unified = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    dictionary = _dictionary_columns(shards, unified)
    with pq.ParquetWriter(out, unified, **_parquet_options(dictionary)) as writer:
        for shard in shards:
            for batch in _batches(shard):
                table = pa.Table.from_batches([batch])
                for name in unified.names:
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(len(table), unified.field(name).type))
                writer.write_table(table.select(unified.names).cast(unified))
    return unified.names
