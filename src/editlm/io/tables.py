"""Datasets on disk: stream JSONL or Parquet in; write Parquet or JSONL out, atomically and resumably.

Every data job (LintSeq, mining, bugs, ...) reads its input with :func:`read_rows` and writes with
:class:`ShardedWriter`: finished work lands in shards under ``OUTPUT.partial/`` as it goes, a rerun
skips the keys already there, and :meth:`ShardedWriter.finish` merges the shards into ``OUTPUT`` with one
atomic rename. Outputs are plain Parquet/JSONL, so ``datasets.load_dataset("parquet", ...)`` reads them.
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


def write_json(path: str | Path, value: Any) -> None:
    """Write one JSON document atomically."""
    with _atomic(Path(path)) as tmp:
        Path(tmp).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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


class ShardedWriter:
    """Resumable output keyed by input: ``add(key, rows)`` or ``skip(key, reason)`` once per input.

    Shards of ``shard_size`` rows are written atomically to ``OUTPUT.partial/`` with the keys they
    cover, so a job killed at any point loses at most the unflushed shard. ``done`` holds the keys
    finished by earlier runs; ``skipped`` counts skips by reason over all runs. ``finish()`` merges
    into ``OUTPUT`` atomically and writes ``OUTPUT.summary.json``.
    """

    def __init__(self, path: str | Path, shard_size: int = 1000):
        self.path = Path(path)
        self.format = table_format(self.path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.summary_path = self.path.with_name(self.path.name + ".summary.json")
        self.shard_size = shard_size
        self.done: set = set()
        self.skipped: Counter[str] = Counter()
        self.rows_written = 0
        self._rows: list[dict] = []
        self._keys: list = []
        self._skips: list[list] = []
        self._resume()

    def _resume(self) -> None:
        if self.path.exists() and not self.partial.exists():
            # A finished output: adopt it as the first shard so new keys are appended to it.
            previous = json.loads(self.summary_path.read_text()) if self.summary_path.exists() else {}
            keys = previous.get("keys")
            if keys is None:
                raise TableError(f"{self.path} exists but has no editlm summary beside it; remove it first")
            self.partial.mkdir(parents=True)
            shutil.copyfile(self.path, self.partial / f"part-00000{self._suffix}")
            _write_keys(self.partial / "part-00000.keys.json", keys, previous.get("skips", []))
        if not self.partial.exists():
            return
        for keys_file in sorted(self.partial.glob("part-*.keys.json")):
            meta = json.loads(keys_file.read_text())
            self.done.update(_key(k) for k in meta["keys"])
            for key, reason in meta["skips"]:
                self.done.add(_key(key))
                self.skipped[reason] += 1
            self.rows_written += meta["rows"]
        for stray in self.partial.glob(f"part-*{self._suffix}"):
            if not stray.with_name(stray.name.replace(self._suffix, ".keys.json")).exists():
                stray.unlink()  # a shard whose key list never landed is incomplete

    @property
    def _suffix(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"

    def add(self, key, rows: list[dict]) -> None:
        self._keys.append(key)
        self._rows.extend(rows)
        self.done.add(_key(key))
        if len(self._rows) >= self.shard_size:
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
        self.partial.mkdir(parents=True, exist_ok=True)
        number = len(list(self.partial.glob("part-*.keys.json")))
        shard = self.partial / f"part-{number:05d}{self._suffix}"
        if self._rows:
            _write_table(shard, self._rows, self.format)
        _write_keys(shard.with_name(f"part-{number:05d}.keys.json"), self._keys, self._skips, len(self._rows))
        self.rows_written += len(self._rows)
        self._rows, self._keys, self._skips = [], [], []

    def finish(self, extra_summary: dict | None = None) -> dict:
        """Merge the shards into the output file; returns the summary that is also written."""
        self.flush()
        shards = sorted(self.partial.glob(f"part-*{self._suffix}")) if self.partial.exists() else []
        keys: list = []
        skips: list = []
        if self.partial.exists():
            for keys_file in sorted(self.partial.glob("part-*.keys.json")):
                meta = json.loads(keys_file.read_text())
                keys += meta["keys"]
                skips += meta["skips"]
        with _atomic(self.path) as tmp:
            _merge(shards, tmp, self.format)
        summary = {
            "output": str(self.path),
            "rows": self.rows_written,
            "inputs_written": len(keys),
            "skipped": dict(sorted(self.skipped.items())),
            **(extra_summary or {}),
            "keys": keys,
            "skips": skips,
        }
        write_json(self.summary_path, summary)
        if self.partial.exists():
            shutil.rmtree(self.partial)
        return summary


def _key(key):
    """Keys come back from JSON as lists where they were tuples; make them hashable again."""
    return tuple(_key(k) for k in key) if isinstance(key, list | tuple) else key


def _write_keys(path: Path, keys: list, skips: list, rows: int | None = None) -> None:
    if rows is None:
        rows = 0
        shard = path.with_name(path.name.replace(".keys.json", ""))
        for suffix in (".parquet", ".jsonl"):
            candidate = shard.with_name(shard.name + suffix)
            if candidate.exists():
                rows = _count_rows(candidate)
    write_json(path, {"keys": keys, "skips": skips, "rows": rows})


def _count_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _write_table(path: Path, rows: list[dict], fmt: str) -> None:
    with _atomic(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _merge(shards: list[Path], out: str, fmt: str) -> None:
    """Concatenate shards one at a time (memory stays at one shard), unifying Parquet schemas; a lone
    shard is moved into place without being rewritten."""
    if len(shards) == 1:
        os.replace(shards[0], out)
        return
    if fmt == "jsonl":
        with open(out, "wb") as target:
            for shard in shards:
                with open(shard, "rb") as source:
                    shutil.copyfileobj(source, target)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not shards:
        pq.write_table(pa.table({}), out)
        return
    schema = pa.unify_schemas([pq.read_schema(s) for s in shards], promote_options="permissive")
    with pq.ParquetWriter(out, schema) as writer:
        for shard in shards:
            table = pq.read_table(shard)
            for name in schema.names:
                if name not in table.column_names:
                    table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
            writer.write_table(table.select(schema.names).cast(schema))
