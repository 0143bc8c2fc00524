"""The edit core: unified diffs and the text formats of training samples, shared by every stage.

Names are loaded on first use (:mod:`editlm._lazy`): a stage that needs one module of the core, such
as mining's :mod:`editlm.edits.diff_model`, does not import the diff applier (12 ms of every
``editlm mine``)."""

from editlm._lazy import lazy_exports

_DIFF = "editlm.edits.diff"
_EXPORTS = {
    **{
        name: _DIFF
        for name in (
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
            "make_diff",
            "parse_diff",
            "parse_patch",
        )
    },
    "extract_diff": "editlm.edits.extract",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
