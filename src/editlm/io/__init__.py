"""Shared I/O below every stage: streaming, atomic, resumable tables and a parallel map.

``tables`` (JSONL/Parquet read and write, :class:`ShardedWriter` for resumable jobs), ``parallel``
(an unordered map over local processes or a Dask cluster)."""

from __future__ import annotations

from editlm._lazy import lazy_exports

# The public names, one a line, loaded on first use so that the commands (and ``editlm --help``) stay light.
_EXPORTS = {
    "read_rows": "editlm.io.tables",
    "write_rows": "editlm.io.tables",
    "write_json": "editlm.io.tables",
    "table_format": "editlm.io.tables",
    "ShardedWriter": "editlm.io.tables",
    "TableError": "editlm.io.tables",
    "map_unordered": "editlm.io.parallel",
    "default_workers": "editlm.io.parallel",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
