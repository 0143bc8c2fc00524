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
  them) runs to that header; without counts (``@@ @@``) the body runs to the next header.

Placing, for each hunk in turn (:class:`Placement` reports which rule placed it):

1. exact: the old side matches the file at its stated line plus the offset the hunks before it
   were found at;
2. search: the old side is looked for in the whole file, first verbatim, then ignoring line
   endings and trailing whitespace, then ignoring all whitespace differences; the match nearest
   the expected line wins only when the next one is more than twice as far (else: ambiguous);
   a match before the end of the previous hunk means the hunks are out of order or repeated, and
   raises;
3. a pure insertion (no old side) is placed by its line numbers alone, and only when its old and
   new starts agree and no hunk before it was shifted.

A hunk that cannot be placed with confidence raises :class:`DiffApplyError` (with the closest
region of the file); it is never dropped, never appended at the end of the file and never inserted
at the top. ``+`` lines keep the line endings the diff gives them, except when the diff has lost
them all (an LF diff for a CRLF file).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from editlm.edits.extract import extract_diff

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
# How many compared lines one apply may spend searching: bounds a request on a hostile input
# (a 40,000-line file of one repeated line and a 20,000-line hunk) to well under a second.
SEARCH_BUDGET = 4_000_000


class DiffError(ValueError):
    """Any problem with a diff. Callers that handle model output catch this one class."""


class DiffParseError(DiffError):
    """The text is not a diff that can be read (or it was cut off)."""


class DiffApplyError(DiffError):
    """The diff is readable but does not fit the file it is applied to.

    ``hunk`` is the number of the hunk that failed (1-based) and ``closest`` the 1-based first and
    last line of the region of the file most like its old side, when there is one."""

    def __init__(self, message: str, *, hunk: int | None = None, closest: tuple[int, int] | None = None):
        super().__init__(message)
        self.hunk = hunk
        self.closest = closest


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` block. ``lines`` holds (op, text) with op in ``" -+"``; text keeps its line ending,
    so a line without one is the last line of its file (``\\ No newline at end of file``).
    ``trailing`` holds the rows after a hunk whose counts were met, up to the next header: kept
    aside, never applied."""

    old_start: int | None
    old_count: int | None
    new_start: int | None
    new_count: int | None
    lines: tuple[tuple[str, str], ...]
    section: str = ""
    trailing: tuple[str, ...] = ()

    @property
    def old_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "-"]

    @property
    def header(self) -> str:
        if self.old_start is None and self.new_start is None:
            return "@@ @@"
        old = "" if self.old_start is None else f"-{self.old_start},{self.old_count} "
        new = "" if self.new_start is None else f"+{self.new_start},{self.new_count} "
        return f"@@ {old}{new}@@"


@dataclass(frozen=True)
class FilePatch:
    """The changes to one file. Paths are as the diff writes them (``a/x.py``), None where the diff
    names none (bare hunks); ``/dev/null`` sides set :attr:`is_new` / :attr:`is_deleted`."""

    old_path: str | None
    new_path: str | None
    hunks: tuple[Hunk, ...]
    preamble: tuple[str, ...] = ()
    binary: bool = False
    git: bool = False

    @property
    def is_new(self) -> bool:
        return self.old_path == "/dev/null" or any(r.startswith("new file mode") for r in self.preamble)

    @property
    def is_deleted(self) -> bool:
        return self.new_path == "/dev/null" or any(r.startswith("deleted file mode") for r in self.preamble)

    @property
    def name(self) -> str:
        """The file's path, without git's ``a/``/``b/`` prefix."""
        for path in (self.new_path, self.old_path):
            if path and path != "/dev/null":
                return path[2:] if self.git and path[:2] in ("a/", "b/") else path
        return "<unnamed>"

    @property
    def trailing(self) -> str:
        """Text after the last hunk that is not part of it (prose, a signature)."""
        return "\n".join(self.hunks[-1].trailing) if self.hunks else ""


@dataclass(frozen=True)
class Placement:
    """Where one hunk went. ``how`` is ``exact``, ``shifted`` (by ``offset`` lines),
    ``whitespace`` (matched ignoring whitespace, shifted by ``offset``) or ``line-number`` (a pure
    insertion: nothing in the file could confirm the place). ``line`` is the 1-based line of the
    file where its old side starts (for an insertion: the line it goes before)."""

    hunk: int
    header: str
    how: str
    offset: int
    line: int
    old_lines: int

    def __str__(self) -> str:
        last = self.line + self.old_lines - 1
        where = f"at line {self.line}" if self.old_lines <= 1 else f"at lines {self.line}-{last}"
        if self.how == "exact":
            what = "exact"
        elif self.how == "shifted":
            what = f"shifted by {self.offset:+d} lines"
        elif self.how == "whitespace":
            what = "whitespace-tolerant" + (f", shifted by {self.offset:+d} lines" if self.offset else "")
        else:
            what = "placed by line number only (a pure insertion cannot be checked against the file)"
            where = f"before line {self.line}"
        return f"hunk {self.hunk} ({self.header}): {what}, {where}"


@dataclass(frozen=True)
class Applied:
    """The result of :func:`apply_diff_report`: the new text, one :class:`Placement` per hunk, and
    the text the parser kept aside after the diff."""

    text: str
    placements: tuple[Placement, ...]
    trailing: str = ""


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
    return _Parser(rows, open_end=require_newline and not text.endswith("\n")).files()


def parse_diff(text: str | bytes, *, require_newline: bool = False) -> list[Hunk]:
    """The hunks of a one-file unified diff; raises :class:`DiffParseError` naming the files when
    the diff touches more than one."""
    files = _one_file(parse_patch(text, require_newline=require_newline))
    if files and files[0].binary:
        raise DiffParseError(f"{files[0].name}: binary diff, not a text diff")
    return list(files[0].hunks) if files else []


def _one_file(files: list[FilePatch]) -> list[FilePatch]:
    if len(files) > 1:
        names = ", ".join(f.name for f in files[:5]) + (", ..." if len(files) > 5 else "")
        raise DiffParseError(
            f"the diff touches {len(files)} files ({names}): apply it with apply_patch, not apply_diff"
        )
    return files


def _crlf_diff(rows: list[str]) -> bool:
    """True when the whole diff was saved with CRLF endings (its own, not the file's)."""
    return len(rows) > 0 and all(row.endswith("\r") for row in rows if row)


def _is_body(row: str) -> bool:
    return not row or row[0] in " -+\\"


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
    def __init__(self, rows: list[str], open_end: bool = False):
        self.rows = rows
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
                if cur.started():
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
        if old_count is not None and new_count is not None:
            lines, end, state = self.body_by_counts(start, old_count, new_count)
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
            elif state == "cut":
                raise DiffParseError(
                    f"hunk {number} ({header}) is cut off: the diff ends after "
                    f"{sum(op != '+' for op, _ in lines)} of its {old_count} old and "
                    f"{sum(op != '-' for op, _ in lines)} of its {new_count} new lines"
                )
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
            old_start, old_count, new_start, new_count, tuple(lines), match.group(5).strip(), tuple(trailing)
        )
        self.delta += sum(op == "+" for op, _ in lines) - sum(op == "-" for op, _ in lines)
        return hunk, end

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
    text, placements = _apply_hunks(source, hunks)
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
    for patch in patches:
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
            text, _ = _apply_hunks(source, list(patch.hunks))
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


_NORMALISERS: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    lambda s: s.rstrip(),
    lambda s: " ".join(s.split()),
)


class _Budget(Exception):
    pass


class _Index:
    """The file's lines under each normaliser, with where each distinct line occurs: computed once
    per file and only when a hunk is not where it says. A search costs the occurrences of the
    hunk's rarest line, each checked in C; the total is capped by :data:`SEARCH_BUDGET`."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self._levels: dict[int, list[str]] = {0: lines}
        self._where: dict[int, dict[str, list[int]]] = {}
        self.spent = 0

    def level(self, level: int) -> list[str]:
        if level not in self._levels:
            self._levels[level] = [_NORMALISERS[level](line) for line in self.lines]
        return self._levels[level]

    def where(self, level: int) -> dict[str, list[int]]:
        if level not in self._where:
            where: dict[str, list[int]] = {}
            for i, line in enumerate(self.level(level)):
                where.setdefault(line, []).append(i)
            self._where[level] = where
        return self._where[level]

    def find(self, block: list[str], level: int) -> list[int]:
        """Every position where ``block`` matches at this level."""
        lines, where = self.level(level), self.where(level)
        wanted = [_NORMALISERS[level](line) for line in block]
        rarest, positions = 0, None
        for k, line in enumerate(wanted):
            found = where.get(line)
            if not found:
                return []
            if positions is None or len(found) < len(positions):
                rarest, positions = k, found
        size, stop = len(wanted), len(lines) - len(wanted)
        out = []
        for p in positions or ():
            s = p - rarest
            if s < 0 or s > stop:
                continue
            self.spent += size
            if self.spent > SEARCH_BUDGET:
                raise _Budget
            if lines[s : s + size] == wanted:
                out.append(s)
        return out

    def closest(self, block: list[str]) -> tuple[int, int] | None:
        """(first index, lines that match) of the region most like ``block``, ignoring whitespace:
        each of the block's lines votes for the starts it implies; lines that occur more than 64
        times say nothing and are skipped, which keeps this linear."""
        where = self.where(2)
        votes: dict[int, int] = {}
        for k, line in enumerate(block):
            found = where.get(_NORMALISERS[2](line), ())
            if not line.strip() or len(found) > 64:
                continue
            for p in found:
                votes[p - k] = votes.get(p - k, 0) + 1
        if not votes:
            return None
        start, count = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))
        return max(0, start), count


def _stated(hunk: Hunk) -> int | None:
    """0-based index where the header says the old side starts (``-0,N`` with N > 0 read as 1)."""
    if hunk.old_start is None:
        return None
    if hunk.old_count:
        return max(0, hunk.old_start - 1)
    return hunk.old_start


def _apply_hunks(source: str, hunks: Sequence[Hunk]) -> tuple[str, list[Placement]]:
    lines = split_lines(source)
    index = _Index(lines)
    out: list[str] = []
    placements: list[Placement] = []
    cursor = 0  # first line of the file not yet copied
    offset = 0  # how far the file has drifted from the line numbers seen so far
    delta = 0  # lines added minus lines removed by the hunks so far
    last_insertion: int | None = None  # where the previous hunk inserted, if it was a pure insertion
    for number, hunk in enumerate(hunks, 1):
        old = hunk.old_lines
        if old:
            try:
                start, level = _place(index, hunk, number, cursor, offset)
            except _Budget:
                raise DiffApplyError(
                    f"hunk {number} ({hunk.header}): its lines are too repetitive to place within the "
                    f"search budget ({SEARCH_BUDGET:,} compared lines)",
                    hunk=number,
                ) from None
            stated = _stated(hunk)
            shift = 0 if stated is None else start - stated
            offset = shift
            how = "whitespace" if level else ("exact" if shift == 0 else "shifted")
            _check_trailing(index, hunk, number, start + len(old))
            last_insertion = None
        else:
            start = _place_insertion(lines, hunk, number, cursor, offset, delta, last_insertion)
            level, shift, how = 0, 0, "line-number"
            last_insertion = start
        placements.append(Placement(number, hunk.header, how, shift, start + 1, len(old)))
        _extend(out, lines[cursor:start])
        _extend(out, _new_side(lines, start, hunk, level), inner=True)
        cursor = start + len(old)
        delta += len(hunk.new_lines) - len(old)
    _extend(out, lines[cursor:])
    return "".join(out), placements


def _place(index: _Index, hunk: Hunk, number: int, cursor: int, offset: int) -> tuple[int, int]:
    """Where the hunk's old side starts in the file, and the normaliser level that matched."""
    lines = index.lines
    old = hunk.old_lines
    stated = _stated(hunk)
    expected = None if stated is None else stated + offset
    if expected is not None and cursor <= expected and lines[expected : expected + len(old)] == old:
        return expected, 0
    for level in range(len(_NORMALISERS)):
        found = index.find(old, level)
        if found:
            return _choose(found, hunk, number, cursor, expected), level
    closest = index.closest(old)
    first = old[0].rstrip("\r\n")
    message = f"hunk {number} ({hunk.header}): its lines are not in the file (first line {first[:60]!r})"
    region = None
    if closest is not None:
        at, count = closest
        end = min(len(lines), at + len(old))
        region = (at + 1, max(at + 1, end))
        message += f"; closest: lines {region[0]}-{region[1]} ({count} of {len(old)} lines alike)"
    raise DiffApplyError(message, hunk=number, closest=region)


def _choose(found: list[int], hunk: Hunk, number: int, cursor: int, expected: int | None) -> int:
    def error(message: str, at: int) -> DiffApplyError:
        size = len(hunk.old_lines)
        return DiffApplyError(
            f"hunk {number} ({hunk.header}): {message}", hunk=number, closest=(at + 1, at + max(size, 1))
        )

    if expected is None:
        ahead = [s for s in found if s >= cursor]
        if len(ahead) == 1:
            return ahead[0]
        if not ahead:
            raise error(
                f"its lines are at line {found[-1] + 1}, which the hunk before it already passed "
                "(hunks out of order or repeated)",
                found[-1],
            )
        raise error(
            f"its lines occur {len(ahead)} times (first at line {ahead[0] + 1}) and there is no line "
            "number to choose",
            ahead[0],
        )
    ranked = sorted(found, key=lambda s: (abs(s - expected), s))
    best = ranked[0]
    if best < cursor:
        raise error(
            f"its lines are at line {best + 1}, which the hunk before it already passed "
            "(hunks out of order or repeated)",
            best,
        )
    if len(ranked) > 1:
        near, far = abs(best - expected), abs(ranked[1] - expected)
        if far <= 2 * near:
            raise error(
                f"lines {best + 1} and {ranked[1] + 1} fit about equally well ({near} and {far} lines from "
                f"line {expected + 1}, where it is expected); refusing to guess",
                best,
            )
    return best


def _place_insertion(
    lines: list[str],
    hunk: Hunk,
    number: int,
    cursor: int,
    offset: int,
    delta: int,
    last_insertion: int | None,
) -> int:
    """A hunk with no old side: nothing to match, so both sides' line numbers must agree."""

    def error(message: str) -> DiffApplyError:
        return DiffApplyError(f"hunk {number} ({hunk.header}): {message}", hunk=number)

    by_new = None if hunk.new_start is None else hunk.new_start - 1 - delta
    if hunk.old_start is None:
        if by_new is None:
            if not lines and cursor == 0:
                return 0
            raise error("an insertion without a line number")
        options = {by_new}
    elif hunk.old_count == 0:
        options = {hunk.old_start}
    else:  # "@@ -2 +3 @@" with only '+' lines: a ",0" was dropped, or the start is off by one
        options = {hunk.old_start, hunk.old_start - 1}
    if by_new is not None and by_new not in options:
        raise error(
            f"an insertion whose old and new line numbers disagree (after line {min(options)} or "
            f"{by_new}); with no context lines nothing can settle it"
        )
    if len(options) > 1 and by_new is None:
        raise error("an insertion whose place is not clear from its line numbers")
    at = by_new if by_new is not None else options.pop()
    if offset:
        raise error(
            f"a pure insertion (no context lines to check) after hunks that were {offset:+d} lines "
            "from their line numbers: its own line number cannot be trusted"
        )
    if at > len(lines):
        raise error(f"inserts after line {at}, but the file has {len(lines)} lines")
    if at < cursor or (at == cursor and last_insertion == at):
        raise error("overlaps the hunk before it (hunks out of order or repeated)")
    return at


def _check_trailing(index: _Index, hunk: Hunk, number: int, after: int) -> None:
    """Refuse when the rows kept aside after a counted hunk are diff lines that go on matching the
    file where the hunk ends: then the counts were too small, and dropping the rows would change
    the result. Prose (``- Fixed the bug``, ``+ also``) does not match the file and stays aside."""
    body = []
    for row in hunk.trailing:
        if not _is_body(row) or row.startswith("\\"):
            break
        body.append(row)
    while body and not body[-1].strip():
        body.pop()
    if not any(row[:1] in "-+" for row in body):
        return
    old = [_NORMALISERS[1](row[1:]) for row in body if row[:1] != "+"]
    if not old:
        return
    have = index.level(1)[after : after + len(old)]
    if have == old:
        raise DiffApplyError(
            f"hunk {number} ({hunk.header}): the {len(body)} diff lines after its counted body continue "
            "it in the file (are its @@ counts too small?); refusing to drop them",
            hunk=number,
        )


def _new_side(lines: list[str], start: int, hunk: Hunk, level: int) -> list[str]:
    """The replacement lines. In tolerant mode context is kept from the file. ``+`` lines keep the
    diff's line endings, unless the diff has lost them: no CR in the hunk while the file's lines
    there all end in CRLF (an LF copy of a diff for a CRLF file); then they get CRLF."""
    if level == 0:
        return hunk.new_lines
    region = lines[start : start + len(hunk.old_lines)]
    lost_crlf = all(line.endswith("\r\n") for line in region) and not any("\r" in t for _, t in hunk.lines)
    out = []
    k = start
    for op, text in hunk.lines:
        if op == " ":
            out.append(lines[k])
            k += 1
        elif op == "-":
            k += 1
        elif lost_crlf and text.endswith("\n"):
            out.append(text[:-1] + "\r\n")
        else:
            out.append(text)
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
