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


class ShardedWriter:
    """Resumable output keyed by input: ``add(key, rows)`` or ``skip(key, reason)`` once per input.

    Finished work is written in shards to ``OUTPUT.partial/``, atomically and together with the keys
    it covers, whenever ``shard_size`` rows or ``shard_bytes`` bytes of text are buffered (bytes bound
    memory however long the rows are), so a job killed at any point loses at most the unflushed shard.
    ``finish()`` merges the shards into ``OUTPUT`` with one rename and writes two files beside it:
    ``OUTPUT.summary.json`` (for people: rows, drops by reason, the job's numbers) and
    ``OUTPUT.resume.json`` (for the next run: the settings and every finished key and skip).

    ``settings`` (a JSON-able dict: the job's options) is recorded; resuming a partial or finished
    output made with other settings raises :class:`SettingsMismatch` unless ``overwrite=True``, which
    deletes the old output first. ``schema`` (a ``pyarrow.Schema``) fixes the Parquet columns, so that
    an output without rows still has all its columns (JSONL cannot carry a schema; the summary lists
    the columns).
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
    ):
        if shard_size < 1 or shard_bytes < 1:
            raise ValueError("shard_size and shard_bytes must be >= 1")
        self.path = Path(path)
        self.format = table_format(self.path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.summary_path = self.path.with_name(self.path.name + ".summary.json")
        self.state_path = self.path.with_name(self.path.name + ".resume.json")
        self.settings = _plain(settings or {})
        self.schema = schema
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
        if overwrite:
            self.remove()
        self._resume()

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
            shard = self.partial / f"part-00000{self._suffix}"
            try:  # a hard link costs nothing and leaves OUTPUT in place until finish() replaces it
                os.link(self.path, shard)
            except OSError:
                shutil.copyfile(self.path, shard)
            _write_keys(self.partial / "part-00000.keys.json", state["keys"], state["skips"], state["rows"])
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
        for stray in self.partial.glob(f"part-*{self._suffix}"):
            if not stray.with_name(stray.name.replace(self._suffix, ".keys.json")).exists():
                stray.unlink()  # a shard whose key list never landed is incomplete

    @property
    def _suffix(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"

    def add(self, key, rows: list[dict]) -> None:
        self._keys.append(key)
        self._rows.extend(rows)
        self._bytes += sum(_row_bytes(row) for row in rows)
        self.done.add(_key(key))
        if len(self._rows) >= self.shard_size or self._bytes >= self.shard_bytes:
            self.flush()

    def skip(self, key, reason: str) -> None:
        self._skips.append([key, reason])
        self.skipped[reason] += 1
        self.done.add(_key(key))
        if len(self._skips) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not (self._keys or self._skips):
            return
        if not self.partial.exists():
            self.partial.mkdir(parents=True)
            write_json(self.partial / "settings.json", self.settings)
        number = self._next
        shard = self.partial / f"part-{number:05d}{self._suffix}"
        if self._rows:
            _write_table(shard, self._rows, self.format, self.schema)
        _write_keys(shard.with_name(f"part-{number:05d}.keys.json"), self._keys, self._skips, len(self._rows))
        self._next += 1
        self.rows_written += len(self._rows)
        self._rows, self._keys, self._skips, self._bytes = [], [], [], 0

    def finish(self, extra_summary: dict | None = None) -> dict:
        """Merge the shards into the output file; returns the summary that is also written (the
        finished keys go to ``OUTPUT.resume.json``, not into the summary)."""
        self.flush()
        shards = sorted(self.partial.glob(f"part-*{self._suffix}")) if self.partial.exists() else []
        keys: list = []
        skips: list = []
        if self.partial.exists():
            for keys_file in sorted(self.partial.glob("part-*.keys.json")):
                meta = json.loads(keys_file.read_text(encoding="utf-8"))
                keys += meta["keys"]
                skips += meta["skips"]
        with _atomic(self.path) as tmp:
            columns = _merge(shards, tmp, self.format, self.schema)
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


def _write_keys(path: Path, keys: list, skips: list, rows: int) -> None:
    write_json(path, {"keys": keys, "skips": skips, "rows": rows}, indent=None)


def _write_table(path: Path, rows: list[dict], fmt: str, schema=None) -> None:
    with _atomic(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(rows, schema=schema)
            if not rows:
                pq.ParquetWriter(tmp, table.schema).close()  # no row group: see _merge
            else:
                pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                if not rows:
                    handle.write("\n")  # see _merge


def _merge(shards: list[Path], out: str, fmt: str, schema=None) -> list[str] | None:
    """Concatenate shards one row group at a time (memory stays at one row group), unifying Parquet
    schemas; a lone shard is moved into place without being rewritten. Returns the columns when known.

    An output without rows still gets the full schema, written with no row group at all: pyarrow,
    pandas and ``datasets.load_dataset(..., streaming=True)`` read its columns. (``datasets`` 5.2
    refuses every 0-row split when not streaming, "corresponds to no data", whatever the file.)
    """
    if fmt == "jsonl":
        with open(out, "wb") as target:
            for shard in shards:
                with open(shard, "rb") as source:
                    shutil.copyfileobj(source, target)
            if not target.tell():  # datasets cannot read a 0-byte JSONL (StopIteration); a blank line it can
                target.write(b"\n")
        return list(schema.names) if schema is not None else None
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(shards) == 1 and (schema is None or pq.read_schema(shards[0]).equals(schema)):
        os.replace(shards[0], out)
        return pq.read_schema(out).names
    schemas = ([schema] if schema is not None else []) + [pq.read_schema(s) for s in shards]
    unified = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    with pq.ParquetWriter(out, unified) as writer:
        for shard in shards:
            source = pq.ParquetFile(shard)
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                for name in unified.names:
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(len(table), unified.field(name).type))
                writer.write_table(table.select(unified.names).cast(unified))
    return unified.names
