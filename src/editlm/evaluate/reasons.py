"""Why samples failed, by kind: the counts behind ``editlm evaluate``'s "invalid".

A sample is *invalid* when it never became a program (its diff does not apply, its edit sequence
does not decode, it is empty); a program that ran can still fail to parse, time out, fail a test or
raise. Each failed result row gets exactly one kind, read from its status and reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

INVALID_KINDS = {
    "diff does not apply (parse error)": "diff does not parse",
    "diff does not apply": "diff does not apply",
    "edit(s) do not apply": "edit sequence does not decode",
    "empty ": "empty sample",
    "a sample needs exactly one": "malformed sample",
    "unknown task": "unknown task",
}


def failure_kind(row: dict) -> str | None:
    """The kind of a result row's failure (None when it passed)."""
    if row.get("passed"):
        return None
    status, reason = row.get("status", ""), row.get("reason", "") or ""
    if status == "invalid":
        for marker, kind in INVALID_KINDS.items():
            if marker in reason:
                return kind
        return "invalid (other)"
    if status == "timeout" or reason.startswith("timed out"):
        return "timeout"
    head = reason.split(":", 1)[0].strip()
    if head in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax error"
    if head == "AssertionError":
        return "wrong answer (assertion)"
    if head.endswith(("Error", "Exception")) or head in ("KeyboardInterrupt", "SystemExit"):
        return f"runtime error ({head})"
    return "failed (other)"


def failure_kinds(rows: Iterable[dict]) -> dict[str, int]:
    """Failed rows counted by kind, commonest first."""
    counts = Counter(kind for kind in map(failure_kind, rows) if kind is not None)
    return dict(counts.most_common())
