"""Unified diffs: make, parse and apply, strictly for data and tolerantly for model output.

Written by hand rather than taken from a library: ``difflib`` makes diffs but does not apply them,
and the patch libraries on PyPI (``whatthepatch``, ``unidiff``, ``patch``) either ignore line
numbers, silently drop hunks that do not match, or cannot cope with the damage that language
models do to diffs (shifted line numbers, wrong ``@@`` counts, missing headers, whitespace drift).
``benchmarks/diff_apply.py`` measures this module against GNU ``patch`` and ``whatthepatch``.

Rules of application, in order, for each hunk:

1. exact: the hunk's old side matches the file at its stated line number;
2. tolerant: the old side is searched for anywhere after the previous hunk, first verbatim, then
   ignoring line endings and trailing whitespace, then ignoring all whitespace differences; the
   match nearest the expected line wins, and a tie between two equally near matches raises;
3. a hunk with no old side (a pure insertion) is placed by its line number alone, or raises.

A hunk that cannot be placed with confidence raises :class:`DiffApplyError`; it is never dropped,
never appended at the end of the file and never inserted at the top.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

NO_NEWLINE = "\\ No newline at end of file"
_HUNK_HEADER = re.compile(r"^@@+\s*(?:-(\d+)(?:,(\d+))?)?\s*(?:\+(\d+)(?:,(\d+))?)?\s*@@+(.*)$")
_GIT_PREAMBLE = (
    "diff --git ",
    "index ",
    "new file mode",
    "deleted file mode",
    "old mode",
    "new mode",
    "similarity index",
    "dissimilarity index",
    "rename from",
    "rename to",
    "copy from",
    "copy to",
)


class DiffError(ValueError):
    """Any problem with a diff. Callers that handle model output catch this one class."""


class DiffParseError(DiffError):
    """The text is not a diff that can be read."""


class DiffApplyError(DiffError):
    """The diff is readable but does not fit the file it is applied to."""


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` block. ``lines`` holds (op, text) with op in ``" -+"``; text keeps its line ending,
    so a line without one is the last line of its file (``\\ No newline at end of file``)."""

    old_start: int | None
    old_count: int | None
    new_start: int | None
    new_count: int | None
    lines: tuple[tuple[str, str], ...]
    section: str = ""

    @property
    def old_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "-"]

    @property
    def header(self) -> str:
        if self.old_start is None:
            return "@@ @@"
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping line endings (``str.splitlines`` also splits on form feeds
    and other characters that ``patch`` and git treat as ordinary text)."""
    if not text:
        return []
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


# --------------------------------------------------------------------------- making diffs


def make_diff(
    before: str,
    after: str,
    context: int = 3,
    *,
    headers: bool = True,
    fromfile: str = "a",
    tofile: str = "b",
) -> str:
    """A unified diff from ``before`` to ``after``; ``""`` when they are equal.

    ``context=0`` with ``headers=False`` gives LintSeq-style edits (only ``@@`` lines and ``+``/``-``
    lines). Unlike ``difflib.unified_diff`` the result marks a missing final newline, so
    :func:`apply_diff` restores the text byte for byte.
    """
    if context < 0:
        raise ValueError("context must be >= 0")
    a, b = split_lines(before), split_lines(after)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(context):
        if not out and headers:
            out += [f"--- {fromfile}\n", f"+++ {tofile}\n"]
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, ai1, ai2, bj1, bj2 in group:
            if tag == "equal":
                out += _body(" ", a[ai1:ai2])
                continue
            out += _body("-", a[ai1:ai2])
            out += _body("+", b[bj1:bj2])
    return "".join(out)


def _range(start: int, stop: int) -> str:
    """``difflib``'s unified range exactly: ``4`` for one line, ``3,0`` for none after line 3."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _body(op: str, lines: Sequence[str]) -> list[str]:
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(op + line)
        else:
            out += [op + line + "\n", NO_NEWLINE + "\n"]
    return out


# --------------------------------------------------------------------------- parsing diffs


def parse_diff(text: str | bytes) -> list[Hunk]:
    """The hunks of a one-file unified diff.

    Counts in ``@@`` headers are trusted when the body agrees with them; otherwise (model output)
    the body runs to the next header. ``---``/``+++`` and git preamble lines are optional.
    """
    text = _as_text(text, DiffParseError, "diff")
    if not text.strip():
        raise DiffParseError("empty diff")
    if "\x00" in text:
        raise DiffParseError("diff contains NUL bytes: binary data, not a text diff")
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    if _crlf_diff(rows):
        rows = [row[:-1] if row.endswith("\r") else row for row in rows]

    hunks: list[Hunk] = []
    file_headers = 0
    i = 0
    while i < len(rows):
        row = rows[i]
        if row.startswith("@@"):
            hunk, i = _parse_hunk(rows, i, len(hunks) + 1)
            hunks.append(hunk)
            continue
        if row.startswith("--- ") or row == "---":
            if i + 1 < len(rows) and rows[i + 1].startswith("+++"):
                file_headers += 1
                if file_headers > 1:
                    raise DiffParseError(f"line {i + 1}: the diff touches more than one file")
                i += 2
                continue
        if row.startswith("+++ ") and not hunks:
            i += 1
            continue
        if row.startswith("Binary files ") or row.startswith("GIT binary patch"):
            raise DiffParseError(f"line {i + 1}: binary diff, not a text diff")
        if row.startswith(_GIT_PREAMBLE) or not row.strip():
            i += 1
            continue
        if hunks:
            raise DiffParseError(f"line {i + 1}: unexpected text after hunk {len(hunks)}: {row[:80]!r}")
        raise DiffParseError(f"line {i + 1}: text before the first hunk header: {row[:80]!r}")
    if not hunks:
        raise DiffParseError("no hunk: a diff needs at least one '@@' header")
    return hunks


def _crlf_diff(rows: list[str]) -> bool:
    """True when the whole diff was saved with CRLF endings (its own, not the file's)."""
    return len(rows) > 0 and all(row.endswith("\r") for row in rows if row)


def _parse_hunk(rows: list[str], i: int, number: int) -> tuple[Hunk, int]:
    match = _HUNK_HEADER.match(rows[i])
    if match is None:
        raise DiffParseError(f"hunk {number}, line {i + 1}: malformed hunk header {rows[i][:80]!r}")
    a, b, c, d = match.group(1, 2, 3, 4)
    old_start = int(a) if a is not None else None
    old_count = (int(b) if b is not None else 1) if a is not None else None
    new_start = int(c) if c is not None else None
    new_count = (int(d) if d is not None else 1) if c is not None else None
    body_start = i + 1
    lines = None
    if old_count is not None and new_count is not None:
        lines, end = _body_by_counts(rows, body_start, old_count, new_count)
    if lines is None:
        lines, end = _body_by_markers(rows, body_start, number)
    if not lines:
        raise DiffParseError(f"hunk {number}, line {i + 1}: empty hunk")
    if all(op == " " for op, _ in lines):
        raise DiffParseError(f"hunk {number}, line {i + 1}: hunk changes nothing")
    hunk = Hunk(old_start, old_count, new_start, new_count, tuple(lines), match.group(5).strip())
    return hunk, end


def _body_by_counts(rows, start, old_count, new_count):
    """Read exactly the lines the header announces; None when the body disagrees."""
    lines: list[tuple[str, str]] = []
    old = new = 0
    j = start
    while old < old_count or new < new_count:
        if j >= len(rows):
            return None, start
        row = rows[j]
        op = row[:1] if row else " "
        if op not in " -+":
            return None, start
        if op != "+":
            old += 1
        if op != "-":
            new += 1
        lines.append((op, row[1:] + "\n"))
        j += 1
        if j < len(rows) and rows[j].startswith("\\"):
            lines[-1] = (op, lines[-1][1][:-1])
            j += 1
    if old != old_count or new != new_count:
        return None, start
    if j < len(rows) and not _ends_hunk(rows, j):
        return None, start
    return lines, j


def _ends_hunk(rows: list[str], j: int) -> bool:
    row = rows[j]
    if row.startswith("@@") or row.startswith(_GIT_PREAMBLE):
        return True
    if row.startswith("--- ") and j + 1 < len(rows) and rows[j + 1].startswith("+++"):
        return True
    return not row.strip() and all(not r.strip() for r in rows[j:])


def _body_by_markers(rows, start, number):
    """Model output with wrong or missing counts: the body runs to the next hunk or file header."""
    lines: list[tuple[str, str]] = []
    j = start
    while j < len(rows) and not _ends_hunk(rows, j):
        row = rows[j]
        if row.startswith("\\"):
            if not lines:
                raise DiffParseError(f"hunk {number}, line {j + 1}: '\\' line with no line before it")
            op, text = lines[-1]
            lines[-1] = (op, text[:-1] if text.endswith("\n") else text)
        elif not row:
            lines.append((" ", "\n"))
        elif row[0] in " -+":
            lines.append((row[0], row[1:] + "\n"))
        else:
            raise DiffParseError(
                f"hunk {number}, line {j + 1}: line does not start with ' ', '-' or '+': {row[:80]!r}"
            )
        j += 1
    while lines and lines[-1] == (" ", "\n"):
        lines.pop()  # blank lines a model leaves after its diff are not context
    return lines, j


# --------------------------------------------------------------------------- applying diffs


def apply_diff(source: str | bytes, diff: str | bytes | Sequence[Hunk]) -> str:
    """Apply a one-file diff (text, or hunks from :func:`parse_diff`) to ``source``.

    Raises :class:`DiffParseError` for unreadable diffs and :class:`DiffApplyError`, naming the hunk
    and line, for diffs that do not fit the file.
    """
    source = _as_text(source, DiffApplyError, "source")
    hunks = parse_diff(diff) if isinstance(diff, str | bytes) else list(diff)
    lines = split_lines(source)
    out: list[str] = []
    cursor = 0  # first line of the file not yet copied
    offset = 0  # how far the file has drifted from the line numbers seen so far
    file = _Normalised(lines)
    for number, hunk in enumerate(hunks, 1):
        start, level = _place(file, hunk, cursor, offset, number)
        if hunk.old_start is not None:
            stated = hunk.old_start - 1 if hunk.old_count else hunk.old_start
            offset = start - stated
        _extend(out, lines[cursor:start])
        _extend(out, _new_side(source, lines, start, hunk, level), inner=True)
        cursor = start + len(hunk.old_lines)
    _extend(out, lines[cursor:])
    return "".join(out)


def _as_text(value: str | bytes, error: type[DiffError], what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text: {exc}") from None
    if not isinstance(value, str):
        raise error(f"{what} must be str or bytes, not {type(value).__name__}")
    return value


_NORMALISERS: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    lambda s: s.rstrip(),
    lambda s: " ".join(s.split()),
)


class _Normalised:
    """The file's lines under each normaliser, computed once per file and only when needed."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self._levels: dict[int, list[str]] = {0: lines}

    def level(self, level: int) -> list[str]:
        if level not in self._levels:
            self._levels[level] = [_NORMALISERS[level](line) for line in self.lines]
        return self._levels[level]

    def find(self, block: list[str], level: int, start: int) -> list[int]:
        """Every position at or after ``start`` where ``block`` matches at this level."""
        lines = self.level(level)
        wanted = [_NORMALISERS[level](line) for line in block]
        first, size = wanted[0], len(wanted)
        found = []
        stop = len(lines) - size + 1
        i = start
        while i < stop:
            try:
                i = lines.index(first, i, stop)  # C-speed scan for the first line
            except ValueError:
                break
            if lines[i : i + size] == wanted:
                found.append(i)
            i += 1
        return found


def _place(file: _Normalised, hunk: Hunk, cursor: int, offset: int, number: int) -> tuple[int, int]:
    """Where the hunk's old side starts in the file, and the normaliser level that matched."""
    lines = file.lines
    old = hunk.old_lines
    if hunk.old_start is not None:
        stated = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        if stated < 0:
            raise DiffApplyError(f"hunk {number} ({hunk.header}): negative line number")
    else:
        stated = None
    if not old:
        # A pure insertion has nothing to match: only its line number (or an empty file) places it.
        if stated is None:
            if not lines and cursor == 0:
                return 0, 0
            raise DiffApplyError(f"hunk {number} ({hunk.header}): an insertion without a line number")
        if stated > len(lines):
            raise DiffApplyError(
                f"hunk {number} ({hunk.header}): inserts after line {stated}, "
                f"but the file has {len(lines)} lines"
            )
        if stated < cursor:
            raise DiffApplyError(f"hunk {number} ({hunk.header}): overlaps the hunk before it")
        return stated, 0
    if stated is not None and stated >= cursor and lines[stated : stated + len(old)] == old:
        return stated, 0
    expected = cursor if stated is None else max(cursor, stated + offset)
    for level in range(len(_NORMALISERS)):
        found = file.find(old, level, cursor)
        if not found:
            continue
        if len(found) == 1:
            return found[0], level
        if stated is None:
            raise DiffApplyError(
                f"hunk {number} ({hunk.header}): its lines occur {len(found)} times "
                f"(first at line {found[0] + 1}) and there is no line number to choose"
            )
        ranked = sorted(found, key=lambda s: abs(s - expected))
        if abs(ranked[0] - expected) == abs(ranked[1] - expected):
            raise DiffApplyError(
                f"hunk {number} ({hunk.header}): lines {ranked[0] + 1} and {ranked[1] + 1} fit equally well"
            )
        return ranked[0], level
    first = old[0].rstrip("\r\n")
    raise DiffApplyError(
        f"hunk {number} ({hunk.header}): its lines are not in the file (first line {first[:60]!r})"
    )


def _new_side(source: str, lines: list[str], start: int, hunk: Hunk, level: int) -> list[str]:
    """The replacement lines; in tolerant mode context is kept from the file and new lines take
    the file's line endings."""
    if level == 0:
        return hunk.new_lines
    eol = "\r\n" if source.count("\r\n") * 2 > len(lines) else "\n"
    out = []
    k = start
    for op, text in hunk.lines:
        if op == " ":
            out.append(lines[k])
            k += 1
        elif op == "-":
            k += 1
        else:
            body = text.rstrip("\r\n")
            out.append(body + eol if text.endswith("\n") else body)
    return out


def _extend(out: list[str], segment: list[str], inner: bool = False) -> None:
    """Append lines; a line without a newline that is no longer last (a model forgot the ``\\``
    marker) gets one. Only hunk lines (``inner``) and the file's last line can lack one, so only
    the joins and the hunks' own lines are looked at, never the whole file."""
    if not segment:
        return
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    for k in range(len(segment) - 1 if inner else 0):
        if not segment[k].endswith("\n"):
            segment = segment[:k] + [segment[k] + "\n"] + segment[k + 1 :]
    out += segment
