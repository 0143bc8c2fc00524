"""Unified diffs: make, parse and apply, strictly for data and tolerantly for model output.

Written by hand rather than taken from a library: ``difflib`` makes diffs but does not apply them,
and the patch libraries on PyPI (``whatthepatch``, ``unidiff``, ``patch``) either ignore line
numbers, silently drop hunks that do not match, or cannot cope with the damage that language
models do to diffs (shifted line numbers, wrong ``@@`` counts, missing headers, whitespace drift).
``benchmarks/diff_apply.py`` measures this module against GNU ``patch``, ``git apply``,
``whatthepatch`` and ``unidiff`` on real commits.

Reading. Model output goes through :func:`editlm.edits.extract.extract_diff` first (fences, prose,
svn/hg/GNU/git headers). A hunk's ``@@`` counts are authoritative whenever its body can meet them:

* a body that ends (end of input) before its counts are met was cut off: :class:`DiffParseError`
  naming the hunk;
* text after a hunk whose counts are met ends the hunk; it is kept aside (``Hunk.trailing``) and
  never applied. If that text is diff lines that continue the hunk in the file (its counts were
  too small), applying refuses rather than drop them;
* a body that meets a hunk or file header before its counts (the counts are wrong, as models write
  them) runs to that header; without counts (``@@ @@``) the body runs to the next header;
* one exception to the first rule: a cut inside the *trailing context* of a hunk whose context is
  symmetric and not clipped by the top or end of the file loses nothing (diff tools write the
  same context on both sides, so the cut rows can only be context); it is applied and reported.

Placing is :mod:`editlm.edits.placement`. Multi-file diffs (``diff --git``, ``Index:``, ``---``/``+++``
pairs) are read by :func:`parse_patch` and applied by :func:`apply_patch`; :func:`apply_diff` takes
one file and refuses more, naming them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from editlm.edits.extract import extract_diff
from editlm.edits.hunks import (
    Applied,
    DiffApplyError,
    DiffError,
    DiffParseError,
    FilePatch,
    Hunk,
    Placement,
    _is_body,
    _patch_key,
    split_lines,
)
from editlm.edits.placement import NEAREST_MARGIN, NEAREST_WITHIN, SEARCH_BUDGET, _apply_hunks

__all__ = [
    "NEAREST_MARGIN",
    "NEAREST_WITHIN",
    "SEARCH_BUDGET",
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
    "split_lines",
]

NO_NEWLINE = "\\ No newline at end of file"
_HUNK_HEADER = re.compile(r"^@@+\s*(?:-(\d+)(?:,(\d+))?)?\s*(?:\+(\d+)(?:,(\d+))?)?\s*@@+(.*)$")
# Lines of a file's header block (git's extended header, svn, CVS, hg) between files or before hunks.
_PREAMBLE = (
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
    "====",
    "RCS file:",
    "retrieving revision",
    "Property changes on:",
)
_BINARY = ("Binary files ", "GIT binary patch")


# --------------------------------------------------------------------------- making diffs

# Above this many lines (before + after) make_diff uses libgit2's xdiff instead of difflib: difflib
# is quadratic on repetitive text, and below it its output (what LintSeq's reference emits) is kept.
DIFFLIB_MAX_LINES = 4000


def make_diff(
    before: str,
    after: str,
    context: int = 3,
    *,
    headers: bool = True,
    fromfile: str = "a",
    tofile: str = "b",
    algorithm: str = "auto",
) -> str:
    """A unified diff from ``before`` to ``after``; ``""`` when they are equal (and
    ``apply_diff(x, "") == x``).

    ``context=0`` with ``headers=False`` gives LintSeq-style edits (only ``@@`` lines and ``+``/``-``
    lines). Unlike ``difflib.unified_diff`` the result marks a missing final newline, so
    :func:`apply_diff` restores the text byte for byte. ``algorithm``: ``difflib`` (the hunks of
    ``difflib.unified_diff`` exactly), ``xdiff`` (libgit2's Myers diff through pygit2, git's speed),
    or ``auto``: difflib up to :data:`DIFFLIB_MAX_LINES` lines, xdiff above.
    """
    if context < 0:
        raise ValueError("context must be >= 0")
    if algorithm not in ("auto", "difflib", "xdiff"):
        raise ValueError(f"algorithm must be auto, difflib or xdiff, not {algorithm!r}")
    if before == after:
        return ""
    a, b = split_lines(before), split_lines(after)
    use_xdiff = algorithm == "xdiff" or (algorithm == "auto" and len(a) + len(b) > DIFFLIB_MAX_LINES)
    groups = _xdiff_groups(before, after, context) if use_xdiff else None
    if groups is None:
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        groups = matcher.get_grouped_opcodes(context)
    out: list[str] = []
    for group in groups:
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


def _xdiff_groups(before: str, after: str, context: int) -> list[list[tuple]] | None:
    """difflib-style grouped opcodes from libgit2's xdiff; None when pygit2 is missing or libgit2
    sees binary data (NUL bytes), so the caller falls back to difflib."""
    try:
        import pygit2
    except ImportError:  # pragma: no cover - pygit2 is a dependency; kept for partial installs
        return None
    if "\x00" in before or "\x00" in after:
        return None
    patch = pygit2.Patch.create_from(
        before.encode("utf-8", "surrogatepass"),
        after.encode("utf-8", "surrogatepass"),
        context_lines=context,
        interhunk_lines=0,
        flag=pygit2.enums.DiffOption.FORCE_TEXT,
    )
    groups = []
    for hunk in patch.hunks:
        # old_start/new_start are 1-based, or the line before for an empty side (as in unified diffs).
        i = hunk.old_start - 1 if hunk.old_lines else hunk.old_start
        j = hunk.new_start - 1 if hunk.new_lines else hunk.new_start
        ops: list[list] = []
        for line in hunk.lines:
            origin = line.origin
            if origin == " ":
                tag, di, dj = "equal", 1, 1
            elif origin == "-":
                tag, di, dj = "delete", 1, 0
            elif origin == "+":
                tag, di, dj = "insert", 0, 1
            else:
                continue  # '<', '>', '=': end-of-file newline markers, rebuilt by _body
            if ops and (
                ops[-1][0] == tag or (tag != "equal" and ops[-1][0] in ("delete", "insert", "replace"))
            ):
                last = ops[-1]
                if last[0] != tag:
                    last[0] = "replace"
                last[2] += di
                last[4] += dj
            else:
                ops.append([tag, i, i + di, j, j + dj])
            i += di
            j += dj
        groups.append([tuple(op) for op in ops])
    return groups


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


def parse_patch(text: str | bytes, *, require_newline: bool = False) -> list[FilePatch]:
    """The files of a unified diff (one or many), after :func:`extract_diff`.

    An empty (or blank) diff has no files. Raises :class:`DiffParseError`, naming the hunk and
    line, for text that is not a diff, a diff that was cut off, or garbage inside a diff.

    ``require_newline``: also refuse a diff whose last row is a ``+`` row without its newline.
    A cut inside that row meets the counts just the same and nothing in the file can check an
    added line, so it is the one cut the counts cannot catch. Diffs in the standard format end
    with a newline (the diff-model samples do); LintSeq edits do not (their reference joins the
    rows with ``"\n"``), so the default accepts them.
    """
    text = _as_text(text, DiffParseError, "diff")
    if "\x00" in text:
        raise DiffParseError("diff contains NUL bytes: binary data, not a text diff")
    if not text.strip():
        return []
    text = extract_diff(text)
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    if _crlf_diff(rows):
        rows = [row[:-1] if row.endswith("\r") else row for row in rows]
    ended = text.endswith("\n")
    return _Parser(rows, open_end=require_newline and not ended, ended=ended).files()


def parse_diff(text: str | bytes, *, require_newline: bool = False) -> list[Hunk]:
    """The hunks of a one-file unified diff; raises :class:`DiffParseError` naming the files when
    the diff touches more than one."""
    files = _one_file(parse_patch(text, require_newline=require_newline))
    if files and files[0].binary:
        raise DiffParseError(f"{files[0].name}: binary diff, not a text diff")
    return list(files[0].hunks) if files else []


def _one_file(files: list[FilePatch]) -> list[FilePatch]:
    unique = {_patch_key(f): f for f in reversed(files)}  # a file's part repeated word for word: once
    files = [f for f in files if unique.get(_patch_key(f)) is f]
    if len(files) > 1:
        names = ", ".join(f.name for f in files[:5]) + (", ..." if len(files) > 5 else "")
        raise DiffParseError(
            f"the diff touches {len(files)} files ({names}): apply it with apply_patch, not apply_diff"
        )
    return files


def _crlf_diff(rows: list[str]) -> bool:
    """True when the whole diff was saved with CRLF endings (its own, not the file's)."""
    return len(rows) > 0 and all(row.endswith("\r") for row in rows if row)


def _unquote(path: str) -> str:
    """git writes paths with special characters C-quoted: ``"a/sp\\303\\251cial"``."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        try:
            return raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return raw
    return path


def _header_path(rest: str) -> str:
    """The path of a ``---``/``+++`` row: without the tab and timestamp that GNU diff and svn add."""
    rest = rest.split("\t", 1)[0].rstrip()
    if not rest.startswith('"'):
        rest = re.sub(r"\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?( [+-]\d{4})?$", "", rest)
    return _unquote(rest)


class _Section:
    def __init__(self) -> None:
        self.old_path: str | None = None
        self.new_path: str | None = None
        self.hunks: list[Hunk] = []
        self.preamble: list[str] = []
        self.header = False  # has a ---/+++ pair
        self.binary = False
        self.git = False

    def started(self) -> bool:
        return self.header or bool(self.hunks) or self.binary

    def empty(self) -> bool:
        return not (self.started() or self.preamble)

    def build(self) -> FilePatch:
        old, new = self.old_path, self.new_path
        for row in self.preamble:
            if row.startswith("rename from ") or row.startswith("copy from "):
                old = old or _unquote(row.split(" ", 2)[2])
            elif row.startswith("rename to ") or row.startswith("copy to "):
                new = new or _unquote(row.split(" ", 2)[2])
        if old is None and new is None:
            old = new = self._path_from_preamble()
        return FilePatch(old, new, tuple(self.hunks), tuple(self.preamble), self.binary, self.git)

    def _path_from_preamble(self) -> str | None:
        for row in self.preamble:
            if row.startswith("diff --git "):
                rest = row[len("diff --git ") :]
                half = (len(rest) - 1) // 2
                if rest[half : half + 1] == " ":
                    return _unquote(rest[:half])
                if " b/" in rest:
                    return _unquote(rest.split(" b/", 1)[0])
            elif row.startswith("Index: "):
                return row[len("Index: ") :].strip()
            elif row.startswith("diff "):
                return row.split()[-1]
        return None


class _Parser:
    def __init__(self, rows: list[str], open_end: bool = False, ended: bool = True):
        self.rows = rows
        self.ended = ended  # the text ends with a newline: its last row is whole
        self.open_end = open_end  # the text does not end with a newline: its last row may be cut
        self.number = 0  # hunks read so far, over the whole patch
        self.delta = 0  # lines added minus removed by the hunks before, in the current file

    def structural(self, j: int) -> bool:
        """A row that starts a hunk or a file: where a hunk's trailing text ends."""
        row = self.rows[j]
        if row.startswith("@@") or row.startswith("diff ") or row.startswith("Index: "):
            return True
        return row.startswith("--- ") and j + 1 < len(self.rows) and self.rows[j + 1].startswith("+++ ")

    def files(self) -> list[FilePatch]:
        rows = self.rows
        out: list[_Section] = []
        cur = _Section()
        i = 0
        while i < len(rows):
            row = rows[i]
            if row.startswith("@@"):
                hunk, i = self.hunk(i)
                cur.hunks.append(hunk)
                continue
            if row.startswith("--- ") and i + 1 < len(rows) and rows[i + 1].startswith("+++ "):
                if cur.started():
                    out.append(cur)
                    cur = _Section()
                    self.delta = 0
                cur.old_path, cur.new_path = _header_path(row[4:]), _header_path(rows[i + 1][4:])
                cur.header = True
                i += 2
                continue
            if row.startswith("diff ") or row.startswith("Index: "):
                # A new file, unless this row belongs to the same header (CVS: Index:, then diff -u).
                same = ("diff ",) if row.startswith("diff ") else ("diff ", "Index: ")
                if cur.started() or any(r.startswith(same) for r in cur.preamble):
                    out.append(cur)
                    cur = _Section()
                    self.delta = 0
                cur.git = cur.git or row.startswith("diff --git ")
                cur.preamble.append(row)
                i += 1
                continue
            if row.startswith(_BINARY):
                cur.binary = True
                i += 1
                continue
            if not cur.hunks and row.startswith(_PREAMBLE):
                cur.preamble.append(row)
                i += 1
                continue
            if not row.strip():
                i += 1
                continue
            where = f"after hunk {self.number}" if self.number else "before the first hunk header"
            raise DiffParseError(f"line {i + 1}: unexpected text {where}: {row[:80]!r}")
        if not cur.empty():
            out.append(cur)
        if not out:
            raise DiffParseError("no hunk: a diff needs at least one '@@' header")
        for section in out:
            self.check_section(section)
        return [section.build() for section in out]

    def check_section(self, section: _Section) -> None:
        if section.hunks or section.binary:
            return
        if section.header:
            raise DiffParseError(
                f"{section.new_path or section.old_path}: file header with no hunk (the diff was cut off?)"
            )
        meta = [r for r in section.preamble if not r.startswith(("diff ", "Index: ", "====", "index "))]
        if not meta:
            name = section.preamble[0][:80] if section.preamble else "?"
            raise DiffParseError(f"{name!r}: a file header with no changes (the diff was cut off?)")

    def hunk(self, i: int) -> tuple[Hunk, int]:
        self.number += 1
        number, rows = self.number, self.rows
        match = _HUNK_HEADER.match(rows[i])
        if match is None:
            raise DiffParseError(f"hunk {number}, line {i + 1}: malformed hunk header {rows[i][:80]!r}")
        a, b, c, d = match.group(1, 2, 3, 4)
        old_start = int(a) if a is not None else None
        old_count = (int(b) if b is not None else 1) if a is not None else None
        new_start = int(c) if c is not None else None
        new_count = (int(d) if d is not None else 1) if c is not None else None
        header = rows[i][: match.start(5)].strip()
        start = i + 1
        trailing: list[str] = []
        lines = None
        missing = 0
        partial = None
        overcount = (0, 0)
        if old_count is not None and new_count is not None:
            lines, end, state = self.body_by_counts(start, old_count, new_count)
            if state == "met" and not self.ended and end == len(rows) and lines and lines[-1][0] == " ":
                state = "cut"  # the counts are met by a context row the cut went through: that row is lost
            if state == "met":
                stop = end
                while stop < len(rows) and not self.structural(stop):
                    stop += 1
                trailing = rows[end:stop]
                end = stop
            elif state == "cut" and self.dropped_zero(
                lines, old_start, new_start, b, d, old_count, new_count
            ):
                # "@@ -2 +3 @@" with one '+' line: a one-line insertion whose ",0" was dropped (the
                # starts say so: a change would keep them equal); likewise for a deletion.
                old_count = sum(op != "+" for op, _ in lines)
                new_count = sum(op != "-" for op, _ in lines)
            elif state == "cut" and not self.ended and lines and lines[-1][0] == " " and end == len(rows):
                # The text ends inside (or at the end of) a context row: keep its text to check as
                # the start of the file's line; rows cut off after it can only be context by symmetry.
                partial = lines[-1][1][:-1]
                rest = old_count - sum(op != "+" for op, _ in lines[:-1])
                if rest == new_count - sum(op != "-" for op, _ in lines[:-1]) and (
                    rest == 1 or self.cut_in_context(lines[:-1], old_count, new_count)
                ):
                    lines = lines[:-1]
                    missing = rest
                    old_count -= missing
                    new_count -= missing
                else:
                    raise self.cut_error(number, header, lines[:-1], old_count, new_count)
            elif state == "cut" and self.ended and self.cut_in_context(lines, old_count, new_count):
                missing = old_count - sum(op != "+" for op, _ in lines)
                old_count -= missing
                new_count -= missing
            elif state == "cut" and self.ended and self.overcounted(lines, old_count, new_count):
                # The body is whole by symmetry and claims too few rows to hide a change: the counts
                # are a model's miscount, not a cut. Applying checks the file (see _check_overcount).
                old_body = sum(op != "+" for op, _ in lines)
                overcount = (old_count - old_body, new_count - sum(op != "-" for op, _ in lines))
                old_count = old_body
                new_count = sum(op != "-" for op, _ in lines)
            elif state == "cut":
                raise self.cut_error(number, header, lines, old_count, new_count)
            elif state == "open":
                raise DiffParseError(
                    f"hunk {number} ({header}): its last line has no line ending, so the diff may be "
                    "cut off inside it; end the diff with a newline"
                )
            elif state == "text":
                raise DiffParseError(
                    f"hunk {number}, line {end + 1}: line does not start with ' ', '-' or '+' "
                    f"before the hunk's counts are met: {rows[end][:80]!r}"
                )
            else:  # "disagree": the counts are wrong (a model's); the body runs to the next header
                lines = None
        if lines is None:
            lines, end, trailing = self.body_by_markers(start, number)
        if not lines:
            raise DiffParseError(f"hunk {number}, line {i + 1}: empty hunk")
        hunk = Hunk(
            old_start,
            old_count,
            new_start,
            new_count,
            tuple(lines),
            match.group(5).strip(),
            tuple(trailing),
            missing,
            partial,
            overcount,
            # the diff ends inside this '-' row (no line ending): it may be cut, so only the file's
            # very line may match it (tolerant levels would take a cut "-      " for any blank line)
            not self.ended and end == len(rows) and not trailing and lines[-1][0] == "-",
        )
        self.delta += sum(op == "+" for op, _ in lines) - sum(op == "-" for op, _ in lines)
        return hunk, end

    @staticmethod
    def overcounted(lines, old_count: int, new_count: int) -> bool:
        """Counts larger than a body whose trailing context already equals its leading context U,
        by at most U rows a side. A cut there would have lost a change *and* the U context rows a
        diff tool writes after it, at least U + 1 rows on one side; so this is a miscount, provided
        the file goes on past those rows (checked when applying)."""
        old = sum(op != "+" for op, _ in lines)
        new = sum(op != "-" for op, _ in lines)
        over_old, over_new = old_count - old, new_count - new
        if over_old < 0 or over_new < 0 or not lines:
            return False
        lead = next((k for k, (op, _) in enumerate(lines) if op != " "), None)
        if not lead:
            return False
        tail = next(k for k, (op, _) in enumerate(reversed(lines)) if op != " ")
        return tail == lead and max(over_old, over_new) <= lead

    @staticmethod
    def cut_error(number: int, header: str, lines, old_count: int, new_count: int) -> DiffParseError:
        return DiffParseError(
            f"hunk {number} ({header}) is cut off: the diff ends after "
            f"{sum(op != '+' for op, _ in lines)} of its {old_count} old and "
            f"{sum(op != '-' for op, _ in lines)} of its {new_count} new lines"
        )

    @staticmethod
    def cut_in_context(lines, old_count: int, new_count: int) -> bool:  # (only at a row boundary)
        """A hunk cut inside its trailing context: as many old as new lines are missing, and with
        them its trailing context would be as long as its leading context. Diff tools write the
        same context on both sides, so the missing rows can only be context; applying then checks
        that the file has them and that the hunk neither starts at the top nor ends at the end of
        the file (where context is clipped and the argument fails). See :func:`_symmetric`."""
        old = sum(op != "+" for op, _ in lines)
        new = sum(op != "-" for op, _ in lines)
        missing = old_count - old
        if missing <= 0 or new_count - new != missing or not lines:
            return False
        lead = next((k for k, (op, _) in enumerate(lines) if op != " "), None)
        if lead is None or lead == 0:
            return False
        tail = next(k for k, (op, _) in enumerate(reversed(lines)) if op != " ")
        return tail + missing == lead

    def dropped_zero(self, lines, old_start, new_start, b, d, old_count, new_count) -> bool:
        old = sum(op != "+" for op, _ in lines)
        new = sum(op != "-" for op, _ in lines)
        if b is None and old == 0 and new == new_count:
            return new_start == old_start + 1 + self.delta
        if d is None and new == 0 and old == old_count:
            return new_start == old_start - 1 + self.delta
        return False

    def body_by_counts(self, start: int, old_count: int, new_count: int):
        """Read the rows the header announces. State: ``met``; ``cut`` (input ended first);
        ``disagree`` (a header came first, or a count was exceeded); ``text`` (a row that is no
        diff line came first)."""
        rows = self.rows
        lines: list[tuple[str, str]] = []
        old = new = 0
        j = start
        while old < old_count or new < new_count:
            if j >= len(rows):
                return lines, j, "cut"
            row = rows[j]
            if row.startswith("\\"):
                if not lines:
                    return lines, j, "text"
                op, text = lines[-1]
                lines[-1] = (op, text[:-1] if text.endswith("\n") else text)
                j += 1
                continue
            if not _is_body(row):
                return lines, j, "disagree" if self.structural(j) else "text"
            op = row[:1] or " "
            old += op != "+"
            new += op != "-"
            if old > old_count or new > new_count:
                return lines, j, "disagree"  # the body disagrees with its counts: read it by markers
            lines.append((op, row[1:] + "\n"))
            j += 1
        if j < len(rows) and rows[j].startswith("\\"):
            op, text = lines[-1]
            lines[-1] = (op, text[:-1])
            j += 1
        elif j == len(rows) and self.open_end and lines and lines[-1][0] == "+":
            # The counts are met by the last row of the input, a '+' row without its newline: a
            # cut inside that row would meet them just the same, and nothing in the file can
            # check an added line. (A ' ' or '-' row is checked against the file.)
            return lines, j, "open"
        return lines, j, "met"

    def body_by_markers(self, start: int, number: int):
        """Wrong or missing counts: the body runs to the next header, or to a row that is no diff
        line when no header follows (prose after the diff, kept aside)."""
        rows = self.rows
        lines: list[tuple[str, str]] = []
        j = start
        while j < len(rows) and not self.structural(j):
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
                if any(self.structural(k) for k in range(j + 1, len(rows))):
                    raise DiffParseError(
                        f"hunk {number}, line {j + 1}: line does not start with ' ', '-' or '+': {row[:80]!r}"
                    )
                break
            j += 1
        trailing = rows[j:] if j < len(rows) and not self.structural(j) else []
        while lines and lines[-1] == (" ", "\n"):
            lines.pop()  # blank lines a model leaves after its diff are not context
        end = len(rows) if trailing else j
        return lines, end, trailing


# --------------------------------------------------------------------------- applying diffs


def apply_diff(
    source: str | bytes, diff: str | bytes | Sequence[Hunk], *, require_newline: bool = False
) -> str:
    """Apply a one-file diff (text, or hunks from :func:`parse_diff`) to ``source``.

    ``apply_diff(a, make_diff(a, b)) == b`` for all texts, ``a == b`` included (the empty diff
    changes nothing). Raises :class:`DiffParseError` for unreadable, cut-off or multi-file diffs
    and :class:`DiffApplyError`, naming the hunk and line, for diffs that do not fit the file.
    ``require_newline``: see :func:`parse_patch` (pass True for model output in the standard
    format, whose every row ends with a newline).
    """
    return apply_diff_report(source, diff, require_newline=require_newline).text


def apply_diff_report(
    source: str | bytes, diff: str | bytes | Sequence[Hunk], *, require_newline: bool = False
) -> Applied:
    """:func:`apply_diff` with the report: where each hunk was placed and how (exact, shifted,
    whitespace-tolerant, line number only), and the text kept aside after the diff."""
    source = _as_text(source, DiffApplyError, "source")
    if isinstance(diff, str | bytes) or diff is None:
        files = _one_file(parse_patch(diff, require_newline=require_newline))
        hunks = list(files[0].hunks) if files else []
        if files:
            _check_file_kind(files[0], source)
    elif isinstance(diff, FilePatch):
        hunks = list(diff.hunks)
        _check_file_kind(diff, source)
    else:
        hunks = list(diff) if isinstance(diff, Sequence) else [None]
        if not all(isinstance(h, Hunk) for h in hunks):
            raise DiffParseError(f"a diff must be text or a sequence of Hunk, not {type(diff).__name__}")
    new_file = bool(files) and files[0].is_new if isinstance(diff, str | bytes) else False
    text, placements = _apply_hunks(source, hunks, new_file=new_file)
    trailing = "\n".join(hunks[-1].trailing) if hunks else ""
    return Applied(text, tuple(placements), trailing)


def _check_file_kind(patch: FilePatch, source: str) -> None:
    if patch.binary:
        raise DiffParseError(f"{patch.name}: binary diff, not a text diff")
    if patch.is_new and source:
        raise DiffApplyError(f"the diff creates {patch.name} (from /dev/null), but the file already has text")


def apply_patch(
    files: Mapping[str, str], diff: str | bytes | Sequence[FilePatch], *, require_newline: bool = False
) -> dict[str, str | None]:
    """Apply a multi-file diff to a set of files (path -> text).

    Returns every file of ``files`` and every file the diff creates: the new text, or None for a
    file the diff deletes or renames away. Paths in the diff are matched to ``files`` as written,
    then without leading directories (``a/``, ``b/``, like ``patch -p``). Raises
    :class:`DiffApplyError` naming the file for a file that is missing, created over an existing
    one, touched twice, or left non-empty by a deletion.
    """
    if isinstance(diff, str | bytes) or diff is None:
        patches = parse_patch(diff, require_newline=require_newline)
    else:
        patches = list(diff)
    result: dict[str, str | None] = dict(files)
    touched: set[str] = set()
    seen: set[tuple] = set()
    for patch in patches:
        key = _patch_key(patch)
        if key in seen:
            continue  # the same file's part twice, word for word (the diff repeated): once is meant
        seen.add(key)
        if patch.binary:
            raise DiffParseError(f"{patch.name}: binary diff, not a text diff")
        if patch.is_new:
            target = _resolve(result, patch.new_path, patch.git, new=True)
            if result.get(target):
                raise DiffApplyError(f"{target}: the diff creates it (from /dev/null), but it already exists")
            source = ""
            old = None
        else:
            old = _resolve(result, patch.old_path, patch.git, new=False, single=len(patches) == 1)
            source = result[old]
            if source is None:
                raise DiffApplyError(f"{old}: the diff changes a file that an earlier part of it deleted")
            target = (
                old if patch.is_deleted else _resolve(result, patch.new_path, patch.git, new=True, like=old)
            )
        for path in {p for p in (old, target) if p is not None}:
            if path in touched:
                raise DiffApplyError(f"{path}: the diff touches this file twice (a repeated part?)")
            touched.add(path)
        try:
            text, _ = _apply_hunks(source, list(patch.hunks), new_file=patch.is_new)
        except DiffApplyError as exc:
            raise DiffApplyError(f"{target}: {exc}", hunk=exc.hunk, closest=exc.closest) from None
        if patch.is_deleted:
            if text:
                raise DiffApplyError(f"{target}: the diff deletes the file but its hunks leave text in it")
            result[target] = None
            continue
        if old is not None and old != target:
            result[old] = None  # renamed (a copy keeps its source: git says "copy from")
            if any(r.startswith("copy from") for r in patch.preamble):
                result[old] = source
        result[target] = text
    return result


def _resolve(
    files: Mapping[str, str | None],
    path: str | None,
    git: bool,
    *,
    new: bool,
    single: bool = False,
    like: str | None = None,
) -> str:
    """The key of ``files`` that a diff path means: as written, or without leading directories."""
    if path is None or path == "/dev/null":
        if like is not None:
            return like
        if single and len(files) == 1:
            return next(iter(files))
        raise DiffApplyError("the diff does not name the file it changes")
    parts = path.split("/")
    for k in range(len(parts)):
        candidate = "/".join(parts[k:])
        if candidate in files:
            return candidate
    if new:
        if like is not None and path.split("/", 1)[-1] == like:
            return like
        if git and len(parts) > 1 and parts[0] in ("a", "b", "i", "w", "c", "o"):
            return "/".join(parts[1:])
        return path
    raise DiffApplyError(f"{path}: the diff changes a file that is not in the file set")


def _as_text(value, error: type[DiffError], what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text: {exc}") from None
    if not isinstance(value, str):
        raise error(f"{what} must be str or bytes, not {type(value).__name__}")
    return value
