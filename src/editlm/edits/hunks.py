"""The data of a parsed diff, shared by the parser (:mod:`editlm.edits.diff`) and the placement
(:mod:`editlm.edits.placement`): the typed errors, hunks, file parts and placement reports."""

from __future__ import annotations

from dataclasses import dataclass


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
    missing: int = 0  # context rows cut off its end (see _symmetric); applying checks the file has them
    partial: str | None = None  # the first of them, when the cut went through it: the start of its text
    overcount: tuple[int, int] = (0, 0)  # old and new rows its @@ counts claim beyond its whole body
    open_end: bool = False  # the diff ends inside its last ('-') row: placed only where it matches exactly

    @property
    def leading_context(self) -> int:
        return next((k for k, (op, _) in enumerate(self.lines) if op != " "), len(self.lines))

    @property
    def trailing_context(self) -> int:
        return next((k for k, (op, _) in enumerate(reversed(self.lines)) if op != " "), len(self.lines))

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
    insertion: nothing in the file could confirm the place) or ``duplicate`` (a repeat of hunk
    ``offset``, skipped). ``line`` is the 1-based line of the file where its old side starts (for
    an insertion: the line it goes before). ``note``: ``reordered`` when the diff gave the hunks
    out of order and each was exact at its stated line, so they were applied in line order."""

    hunk: int
    header: str
    how: str
    offset: int
    line: int
    old_lines: int
    note: str = ""

    def __str__(self) -> str:
        last = self.line + self.old_lines - 1
        where = f"at line {self.line}" if self.old_lines <= 1 else f"at lines {self.line}-{last}"
        if self.how == "exact":
            what = "exact"
        elif self.how == "shifted":
            what = f"shifted by {self.offset:+d} lines"
        elif self.how == "whitespace":
            what = "whitespace-tolerant" + (f", shifted by {self.offset:+d} lines" if self.offset else "")
        elif self.how == "duplicate":
            return f"hunk {self.hunk} ({self.header}): a repeat of hunk {self.offset}, skipped"
        else:
            what = "placed by line number only (a pure insertion cannot be checked against the file)"
            where = f"before line {self.line}"
        note = f" ({self.note})" if self.note else ""
        return f"hunk {self.hunk} ({self.header}): {what}, {where}{note}"


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


def _is_body(row: str) -> bool:
    return not row or row[0] in " -+\\"


def _hunk_key(hunk: Hunk) -> tuple:
    return (hunk.old_start, hunk.old_count, hunk.new_start, hunk.new_count, hunk.lines)


def _patch_key(patch: FilePatch) -> tuple:
    return (patch.old_path, patch.new_path, tuple(_hunk_key(h) for h in patch.hunks))
