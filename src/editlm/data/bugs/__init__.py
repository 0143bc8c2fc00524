"""Synthetic bugs: programs -> bug-fix samples in the diff-model format, and the bug-fix benchmark.

``inject`` (bug classes, with libcst), ``job`` (a dataset on all cores), ``benchmark`` (bugs that make
tests fail, judged in the sandbox), ``cli`` (``editlm bugs``, ``editlm bugfix-benchmark``)."""

from __future__ import annotations

from editlm._lazy import lazy_exports

# The public names, one a line, loaded on first use so that the commands (and ``editlm --help``) stay light.
_EXPORTS = {
    "Program": "editlm.data.bugs.inject",
    "inject_bug": "editlm.data.bugs.inject",
    "inject_bugs": "editlm.data.bugs.inject",
    "sample_bugs": "editlm.data.bugs.inject",
    "BUG_CLASSES": "editlm.data.bugs.inject",
    "Bug": "editlm.data.bugs.inject",
    "BugError": "editlm.data.bugs.inject",
    "BugJob": "editlm.data.bugs.job",
    "bug_rows": "editlm.data.bugs.job",
    "BuildSettings": "editlm.data.bugs.benchmark",
    "build_rows": "editlm.data.bugs.benchmark",
    "humaneval_sources": "editlm.data.bugs.benchmark",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
