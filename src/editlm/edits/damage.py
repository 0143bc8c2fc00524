"""The damage language models do to diffs, as pure functions ``(diff, rng) -> diff | None``.

Shared by the hypothesis properties (``tests/test_diff_damage.py``) and ``benchmarks/diff_apply.py``
so that both test the same thing. ``None`` means the damage does not apply to this diff (reordering
needs two hunks in one file).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_HEADER = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")
PROSE = (
    "\nThis fixes the bug.\n",
    "\n- Renamed the helper\n- Added a test\n",
    "+ I also tidied the imports.\n",
    "Let me know if you need anything else!",
    "\n```\n\nExplanation: the loop now stops one step earlier.\n",
)


def _rows(diff: str) -> list[str]:
    return diff.splitlines(keepends=True)


def _hunk_spans(rows: list[str]) -> list[tuple[int, int]]:
    """(first, stop) row ranges of each hunk (header row included), up to the next hunk or file."""
    starts = [i for i, row in enumerate(rows) if row.startswith("@@")]
    spans = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(rows)
        for j in range(start + 1, stop):
            if rows[j].startswith(("diff ", "Index: ")) or (
                rows[j].startswith("--- ") and j + 1 < stop and rows[j + 1].startswith("+++ ")
            ):
                stop = j
                break
        spans.append((start, stop))
    return spans


def truncate(diff: str, rng: random.Random) -> str | None:
    """Cut at a random character inside the body of the last hunk (a sample cut by max_new_tokens),
    keeping at least its header and dropping at least one character."""
    rows = _rows(diff)
    spans = _hunk_spans(rows)
    if not spans:
        return None
    start, _ = spans[-1]
    body = sum(len(r) for r in rows[: start + 1])
    if body >= len(diff):
        return None
    return diff[: rng.randrange(body, len(diff))]


def append_prose(diff: str, rng: random.Random) -> str:
    return diff + rng.choice(PROSE)


def duplicate_hunk(diff: str, rng: random.Random) -> str | None:
    rows = _rows(diff)
    spans = _hunk_spans(rows)
    if not spans:
        return None
    start, stop = rng.choice(spans)
    return "".join(rows[:stop] + rows[start:stop] + rows[stop:])


def reorder_hunks(diff: str, rng: random.Random) -> str | None:
    """Swap two neighbouring hunks of the same file."""
    rows = _rows(diff)
    spans = _hunk_spans(rows)
    pairs = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if a[1] == b[0]]
    if not pairs:
        return None
    (a0, a1), (b0, b1) = rng.choice(pairs)
    return "".join(rows[:a0] + rows[b0:b1] + rows[a0:a1] + rows[b1:])


def repeat_diff(diff: str, rng: random.Random) -> str:
    return diff + diff


def crlf_diff(diff: str, rng: random.Random) -> str:
    """The whole diff saved with CRLF line endings (a Windows clipboard)."""
    return diff.replace("\r\n", "\n").replace("\n", "\r\n")


def shift_numbers(diff: str, rng: random.Random) -> str | None:
    """Every hunk's line numbers moved by the same amount (the model miscounted the file)."""
    by = rng.choice([-1, 1]) * rng.randint(1, 40)

    def move(match: re.Match) -> str:
        a, b, c, d = match.group(1, 2, 3, 4)
        return f"@@ -{max(1, int(a) + by)}{b or ''} +{max(1, int(c) + by)}{d or ''} @@"

    out = "".join(_HEADER.sub(move, row) if row.startswith("@@") else row for row in _rows(diff))
    return out if out != diff else None


def fence(diff: str, rng: random.Random) -> str:
    before = rng.choice(["", "Here is the patch:\n\n", "Sure! The fix:\n"])
    after = rng.choice(["", "\nThis should fix it.\n"])
    return f"{before}```{rng.choice(['diff', 'patch', ''])}\n{diff}```\n{after}"


def wrong_counts(diff: str, rng: random.Random) -> str | None:
    def move(match: re.Match) -> str:
        return f",{max(0, int(match.group(1)) + rng.choice([-2, -1, 1, 2, 3]))}"

    out = "".join(re.sub(r",(\d+)", move, row) if row.startswith("@@") else row for row in _rows(diff))
    return out if out != diff else None


def whitespace(diff: str, rng: random.Random) -> str | None:
    """Trailing whitespace added to some context rows (a model's drift)."""
    rows = _rows(diff)
    context = [i for i, row in enumerate(rows) if row.startswith(" ") and row.strip()]
    if not context:
        return None
    for i in rng.sample(context, max(1, len(context) // 3)):
        rows[i] = rows[i].rstrip("\r\n") + rng.choice(["  ", "\t", " "]) + "\n"
    return "".join(rows)


def no_numbers(diff: str, rng: random.Random) -> str:
    return "".join("@@ @@\n" if row.startswith("@@") else row for row in _rows(diff))


DAMAGES: dict[str, Callable[[str, random.Random], str | None]] = {
    "truncated": truncate,
    "prose_after": append_prose,
    "fenced": fence,
    "duplicated_hunk": duplicate_hunk,
    "reordered_hunks": reorder_hunks,
    "repeated_diff": repeat_diff,
    "crlf_diff": crlf_diff,
    "shifted": shift_numbers,
    "wrong_counts": wrong_counts,
    "whitespace": whitespace,
    "no_numbers": no_numbers,
}
