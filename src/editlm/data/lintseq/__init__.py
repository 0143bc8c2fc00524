"""LintSeq: programs -> insertion-only edit sequences whose every state is lint-clean.

``sampler`` (the pure algorithm), ``units`` (which lines go together), ``lint`` (pyflakes/compiler or
pylint checks), ``job`` (a dataset on all cores, resumable), ``cli`` (``editlm lintseq``, ``editlm data
corpus``), ``real_code`` (programs from the installed packages, for tests and benchmarks)."""

from __future__ import annotations

from editlm._lazy import lazy_exports

# The public names, one a line, loaded on first use so that the commands (and ``editlm --help``) stay light.
_EXPORTS = {
    "sample_edit_sequence": "editlm.data.lintseq.sampler",
    "sample_random_edit_sequence": "editlm.data.lintseq.sampler",
    "sample_random_chunk_sequence": "editlm.data.lintseq.sampler",
    "first_unclean_state": "editlm.data.lintseq.sampler",
    "line_units": "editlm.data.lintseq.units",
    "real_programs": "editlm.data.lintseq.real_code",
    "apply_edit_sequence": "editlm.data.lintseq.sampler",
    "sample_deletion_path": "editlm.data.lintseq.sampler",
    "check_program": "editlm.data.lintseq.sampler",
    "LintSeqError": "editlm.data.lintseq.sampler",
    "lint_errors": "editlm.data.lintseq.lint",
    "make_linter": "editlm.data.lintseq.lint",
    "LintError": "editlm.data.lintseq.lint",
    "LintSeqConfig": "editlm.data.lintseq.job",
    "lintseq_records": "editlm.data.lintseq.job",
    "run_lintseq": "editlm.data.lintseq.job",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
