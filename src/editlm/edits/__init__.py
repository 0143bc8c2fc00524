"""The edit core: unified diffs and the text formats of training samples, shared by every stage."""

from editlm.edits.diff import (
    DiffApplyError,
    DiffError,
    DiffParseError,
    Hunk,
    apply_diff,
    make_diff,
    parse_diff,
)

__all__ = ["DiffApplyError", "DiffError", "DiffParseError", "Hunk", "apply_diff", "make_diff", "parse_diff"]
