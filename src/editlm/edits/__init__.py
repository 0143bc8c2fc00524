"""The edit core: unified diffs and the text formats of training samples, shared by every stage."""

from editlm.edits.diff import (
    Applied,
    DiffApplyError,
    DiffError,
    DiffParseError,
    FilePatch,
    Hunk,
    Placement,
    apply_diff,
    apply_diff_report,
    apply_patch,
    make_diff,
    parse_diff,
    parse_patch,
)
from editlm.edits.extract import extract_diff

__all__ = [
    "Applied",
    "DiffApplyError",
    "DiffError",
    "DiffParseError",
    "FilePatch",
    "Hunk",
    "Placement",
    "apply_diff",
    "apply_diff_report",
    "apply_patch",
    "extract_diff",
    "make_diff",
    "parse_diff",
    "parse_patch",
]
