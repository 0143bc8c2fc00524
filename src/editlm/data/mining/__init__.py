"""Commit mining: git history -> diff-model records (``<NME> <BEF> <MSG> <DFF>``).

``commits`` (one commit -> records, with pygit2), ``filters`` (presets: carperai, commitpackft),
``licenses`` and ``languages`` (per-file facts), ``job`` (many repositories on all cores or Dask),
``cli`` (``editlm mine``)."""

from __future__ import annotations

from editlm._lazy import lazy_exports

# The public names, one a line, loaded on first use so that the commands (and ``editlm --help``) stay light.
_EXPORTS = {
    "iter_records": "editlm.data.mining.commits",
    "mine_commit": "editlm.data.mining.commits",
    "open_repository": "editlm.data.mining.commits",
    "MiningOptions": "editlm.data.mining.commits",
    "MiningError": "editlm.data.mining.commits",
    "preset": "editlm.data.mining.filters",
    "detect_license": "editlm.data.mining.licenses",
    "is_permissive": "editlm.data.mining.licenses",
    "language_of": "editlm.data.mining.languages",
    "run_mining": "editlm.data.mining.job",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
