"""The diff inside model output: the one place that strips what models wrap around a diff.

Models write markdown fences (```` ```diff ````), prose before and after, and the headers of the
tool they imitate (``diff --git`` with its ``index``/mode lines, svn ``Index:`` + ``====``, hg
``diff -r``, GNU ``diff -u``, git format-patch mail headers). :func:`extract_diff` returns the diff
text from its first header on; :func:`editlm.edits.diff.parse_patch` (and so ``apply_diff`` and
``apply_patch``) runs it on every input, and text after the diff is set aside by the parser, which
knows where each hunk ends from its ``@@`` counts.

Only rows that can never be diff content are dropped: a hunk body row starts with ``' '``, ``'-'``,
``'+'`` or ``'\\'``, so a fence row (```` ``` ```` at column 0) or a prose row before the first
header is never part of a diff.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(`{3,}|~{3,})")
_HUNK = re.compile(r"^@@+ +(?:-\d+(?:,\d+)? +\+\d+(?:,\d+)?|-\d+(?:,\d+)?|\+\d+(?:,\d+)?)? *@@")


def extract_diff(text: str) -> str:
    """The diff in ``text``: the contents of the fenced blocks that hold a diff (all of them, in
    order, so one fence per file works), else ``text`` from its first diff header on; ``text``
    unchanged when it holds no diff header (the parser then says what is wrong with it)."""
    if not isinstance(text, str) or not text:
        return text
    rows = text.split("\n")
    parts = []
    for first, stop, closed in _fenced_blocks(rows):
        block = rows[first:stop]
        start = diff_start(block)
        if start is not None:
            # A closed block gets back the newline before its closing fence; an open one (the
            # completion was cut inside it) is kept exactly, so the parser can see the cut.
            parts.append("\n".join(block[start:]) + ("\n" if closed else ""))
    if parts:
        return "".join(parts)
    start = diff_start(rows)
    if start is None:
        return text
    return "\n".join(rows[start:])


def diff_start(rows: list[str]) -> int | None:
    """Index of the first row that starts a diff (a file header or a hunk header), or None."""
    for i, row in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) else ""
        if row.startswith("diff --git ") or row.startswith("diff -"):
            return i
        if row.startswith("Index: ") and nxt.startswith("===="):
            return i
        if row.startswith("--- ") and nxt.startswith("+++ "):
            return i
        if row.startswith("@@") and _HUNK.match(row):
            return i
    return None


def _fenced_blocks(rows: list[str]) -> list[tuple[int, int, bool]]:
    """(first, stop, closed) row ranges of the contents of markdown fences; an unclosed last fence
    (a completion cut off inside it) runs to the end."""
    blocks = []
    opener: str | None = None
    first = 0
    for i, row in enumerate(rows):
        match = _FENCE.match(row)
        if match is None:
            continue
        if opener is None:
            opener, first = match.group(1), i + 1
        elif row.rstrip() == opener[0] * len(row.rstrip()) and len(row.rstrip()) >= len(opener):
            blocks.append((first, i, True))
            opener = None
    if opener is not None:
        blocks.append((first, len(rows), False))
    return blocks
