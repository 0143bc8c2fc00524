"""Where each hunk of a diff goes in the file, and the new text: the tolerant half of the core.

For each hunk (:class:`~editlm.edits.hunks.Placement` reports which rule placed it):

1. exact: the old side matches the file at its stated line (plus the shift of the anchors around
   it, below);
2. search: the old side is looked for in the whole file, first verbatim, then ignoring line
   endings and trailing whitespace, then ignoring all whitespace differences. A hunk whose old
   side occurs once is an *anchor*: its shift is evidence for the hunks around it, which are
   expected at their stated line plus the shift of the nearest anchor before (or after) them, and
   between the predictions of the anchors on both sides when these disagree. Of several matches
   the one at the expected place wins; the nearest otherwise only when it is at most
   ``NEAREST_WITHIN`` lines away and the next is more than ``NEAREST_MARGIN`` times as far;
3. a pure insertion (no old side) is placed by its line numbers alone: only when its old and new
   starts agree and no hunk of the diff was found away from its stated line.

Hunks must land in file order without overlapping; a hunk repeated word for word is applied once,
and hunks given out of order are applied in line order only when each is exact at its stated line.
Anything else raises :class:`DiffApplyError` (with the closest region of the file): a hunk is
never dropped, appended at the end of the file or put at the top. ``+`` lines keep the line
endings the diff gives them, unless the diff lost them all (an LF copy of a diff for a CRLF file).
The search is linear in the file (an index of where each line occurs) and capped by
:data:`SEARCH_BUDGET` compared lines per apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from editlm.edits.hunks import (
    DiffApplyError,
    DiffParseError,
    Hunk,
    Placement,
    _hunk_key,
    _is_body,
    split_lines,
)

# How many compared lines one apply may spend searching: bounds a request on a hostile input
# (a 40,000-line file of one repeated line and a 20,000-line hunk) to well under a second.
SEARCH_BUDGET = 4_000_000

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
    """0-based index where the header says the old side starts (``-0,N`` with N > 0 read as 1).
    A start names the first old line, or the line before when there is none: which one is settled
    by the body, not by a count that may be wrong."""
    if hunk.old_start is None:
        return None
    if any(op != "+" for op, _ in hunk.lines):
        return max(0, hunk.old_start - 1)
    return hunk.old_start


def _apply_hunks(
    source: str, hunks: Sequence[Hunk], *, new_file: bool = False
) -> tuple[str, list[Placement]]:
    lines = split_lines(source)
    index = _Index(lines)
    # A hunk repeated word for word (header and body) cannot mean anything but itself once: a
    # diff never changes the same lines twice. Repeats are skipped and reported.
    kept: list[Hunk] = []
    numbers: list[int] = []
    repeats: dict[int, tuple[int, Hunk]] = {}
    first: dict[tuple, int] = {}
    for number, hunk in enumerate(hunks, 1):
        key = _hunk_key(hunk)
        if key in first:
            repeats[number] = (first[key], hunk)
            continue
        first[key] = number
        kept.append(hunk)
        numbers.append(number)
    if new_file and not lines and len(kept) == 1 and not kept[0].old_lines:
        # A file the diff creates: an empty text has one place to insert into, whatever the numbers.
        only = kept[0]
        kept = [Hunk(0, 0, 1, len(only.new_lines), only.lines, only.section, only.trailing)]
    try:
        text, placements = _apply_indexed(index, kept, numbers)
    except _Budget:
        raise DiffApplyError(
            f"the hunks' lines are too repetitive to place within the search budget ({SEARCH_BUDGET:,} "
            "compared lines)"
        ) from None
    placements += [Placement(n, h.header, "duplicate", k, 0, 0) for n, (k, h) in repeats.items()]
    return text, sorted(placements, key=lambda p: p.hunk)


def _in_line_order(lines: list[str], hunks: Sequence[Hunk]) -> list[Hunk] | None:
    """The hunks sorted by line, when the diff gave them out of order but each is exact at its
    stated line and none overlap: then the order in the text does not matter. Else None."""
    if len(hunks) < 2 or not all(_exact_at_stated(lines, h) for h in hunks):
        return None
    spans = sorted((_stated(h), _stated(h) + len(h.old_lines), k) for k, h in enumerate(hunks))
    if [k for *_, k in spans] == list(range(len(hunks))):
        return None
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        return None
    return [hunks[k] for *_, k in spans]


def _apply_indexed(index: _Index, hunks: Sequence[Hunk], numbers: list[int]) -> tuple[str, list[Placement]]:
    """Place and apply ``hunks`` (``numbers``: their numbers in the diff, for messages)."""
    lines = index.lines
    order = list(range(len(hunks)))
    sorted_hunks = _in_line_order(lines, hunks)
    if sorted_hunks is not None:
        position = {id(h): k for k, h in enumerate(hunks)}
        order = [position[id(h)] for h in sorted_hunks]
        hunks = sorted_hunks
    exact = [_exact_at_stated(lines, hunk) for hunk in hunks]
    found: list[tuple[list[int], int]] = [([], 0)] * len(hunks)
    anchors: dict[int, int] = {}
    if not all(exact):
        # Anchors: hunks whose old side occurs once in the whole file. Every other hunk expects the
        # shift of the nearest anchor before it (after it, when none is before): another hunk's
        # certain place is evidence; a hunk exact at its stated line while others have moved, or
        # the nearest of several matches, is not.
        found = [_candidates(index, hunk) for hunk in hunks]
        for k, (hunk, (where, _)) in enumerate(zip(hunks, found, strict=True)):
            stated = _stated(hunk)
            if hunk.old_lines and stated is not None and len(where) == 1:
                anchors[k] = where[0] - stated
    out: list[str] = []
    placements: list[Placement] = []
    cursor = 0  # first line of the file not yet copied
    delta = 0  # lines added minus lines removed by the hunks so far
    last_insertion: int | None = None  # where the previous hunk inserted, if it was a pure insertion
    for k, hunk in enumerate(hunks):
        number = numbers[order[k]]
        before = [j for j in anchors if j < k]
        after = [j for j in anchors if j > k]
        if k in anchors:
            offset = spread = anchors[k]
        else:
            offset = anchors[max(before)] if before else anchors[min(after)] if after else 0
            spread = anchors[min(after)] if before and after else offset
        old = hunk.old_lines
        if old:
            start, level = _place(index, hunk, number, cursor, (offset, spread), found[k])
            stated = _stated(hunk)
            shift = 0 if stated is None else start - stated
            how = "whitespace" if level else ("exact" if shift == 0 else "shifted")
            _check_trailing(index, hunk, number, start)
            if hunk.missing:
                _check_missing(lines, hunk, number, start)
            if any(hunk.overcount):
                _check_overcount(lines, hunk, number, start)
            last_insertion = None
        else:
            start = _place_insertion(lines, hunk, number, cursor, offset, delta, last_insertion)
            level, shift, how = 0, 0, "line-number"
            _check_trailing(index, hunk, number, start)
            last_insertion = start
        note = "reordered" if sorted_hunks is not None else ""
        if hunk.missing:
            note = f"cut off in its last {hunk.missing} context line(s); the file has them"
        if any(hunk.overcount):
            note = f"its @@ counts claimed {hunk.overcount[0]} old and {hunk.overcount[1]} new lines more"
        placements.append(Placement(number, hunk.header, how, shift, start + 1, len(old), note))
        _extend(out, lines[cursor:start])
        _extend(out, _new_side(lines, start, hunk, level), inner=True)
        cursor = start + len(old)
        delta += len(hunk.new_lines) - len(old)
    _extend(out, lines[cursor:])
    unchecked = [p for p in placements if p.how == "line-number"]
    moved = [p for p in placements if p.offset]
    if unchecked and moved:
        raise DiffApplyError(
            f"hunk {unchecked[0].hunk} was placed by its line number alone (a pure insertion), but hunk "
            f"{moved[0].hunk} ({moved[0].header}) is {moved[0].offset:+d} lines from its stated line: the "
            f"line numbers cannot be trusted, so neither can hunk {unchecked[0].hunk}'s place",
            hunk=unchecked[0].hunk,
        )
    return "".join(out), placements


def _exact_at_stated(lines: list[str], hunk: Hunk) -> bool:
    old = hunk.old_lines
    stated = _stated(hunk)
    return bool(old) and stated is not None and lines[stated : stated + len(old)] == old


def _candidates(index: _Index, hunk: Hunk) -> tuple[list[int], int]:
    """Where the hunk's old side occurs, over the whole file, at the first normaliser level with
    any match: (positions, level)."""
    old = hunk.old_lines
    if not old:
        return [], 0
    for level in range(1 if hunk.open_end else len(_NORMALISERS)):
        where = index.find(old, level)
        if where:
            return where, level
    return [], 0


def _place(
    index: _Index,
    hunk: Hunk,
    number: int,
    cursor: int,
    offsets: tuple[int, int],
    found: tuple[list[int], int],
) -> tuple[int, int]:
    """Where the hunk's old side starts in the file, and the normaliser level that matched.
    ``offsets``: the shifts of the anchors before and after it (equal when one or none)."""
    lines = index.lines
    old = hunk.old_lines
    stated = _stated(hunk)
    expected = None if stated is None else (stated + min(offsets), stated + max(offsets))
    # The fast path needs one expected place: anchors on both sides that disagree leave a range.
    guess = None if expected is None or offsets[0] != offsets[1] else stated + offsets[0]
    if guess is not None and cursor <= guess and lines[guess : guess + len(old)] == old:
        return guess, 0
    where, level = found
    if not where:  # not searched yet (a clean diff until here)
        where, level = _candidates(index, hunk)
    if where:
        return _choose(where, hunk, number, cursor, expected), level
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


# The nearest of several matches is taken only when it is at most NEAREST_WITHIN lines from where the
# hunk is expected (between the places its neighbouring anchors predict) and the next is more than
# NEAREST_MARGIN times as far. Measured on damaged diffs (benchmarks/diff_apply.py), a wider window
# adds wrong placements and hardly any right ones.
NEAREST_MARGIN = 2
NEAREST_WITHIN = 3


def _choose(found: list[int], hunk: Hunk, number: int, cursor: int, expected: tuple[int, int] | None) -> int:
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
    lo, hi = expected

    def distance(s: int) -> int:
        return 0 if lo <= s <= hi else min(abs(s - lo), abs(s - hi))

    ranked = sorted(found, key=lambda s: (distance(s), s))
    best = ranked[0]
    if best < cursor:
        raise error(
            f"its lines are at line {best + 1}, which the hunk before it already passed "
            "(hunks out of order or repeated)",
            best,
        )
    if len(ranked) > 1:
        near, far = distance(best), distance(ranked[1])
        guess = near <= NEAREST_WITHIN and far > NEAREST_MARGIN * near
        if not guess or far == 0:
            where = f"line {lo + 1}" if lo == hi else f"lines {lo + 1}-{hi + 1}"
            raise error(
                f"lines {best + 1} and {ranked[1] + 1} fit about equally well ({near} and {far} lines from "
                f"{where}, where it is expected); refusing to guess",
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


def _check_trailing(index: _Index, hunk: Hunk, number: int, start: int) -> None:
    """Refuse when the rows kept aside after a counted hunk are diff lines that go on matching the
    file where the hunk ends: then the counts were too small, and dropping the rows would change
    the result. Prose (``- Fixed the bug``) does not match the file and stays aside; ``+`` rows
    right after the hunk are prose only when the hunk is complete by :func:`_symmetric`."""
    after = start + len(hunk.old_lines)
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
    if old and index.level(1)[after : after + len(old)] == old:
        raise DiffApplyError(
            f"hunk {number} ({hunk.header}): the {len(body)} diff lines after its counted body continue "
            "it in the file (are its @@ counts too small?); refusing to drop them",
            hunk=number,
        )
    if body[0].startswith("+") and not _symmetric(hunk, start, len(index.lines)):
        raise DiffApplyError(
            f"hunk {number} ({hunk.header}): a '+' line follows its counted body: more of the hunk (its "
            f"@@ counts too small) or prose? Refusing to guess: {body[0][:60]!r}",
            hunk=number,
        )


def _check_overcount(lines: list[str], hunk: Hunk, number: int, start: int) -> None:
    """A hunk whose counts claim more rows than its (symmetric, whole) body: a miscount only when
    neither end is clipped and the file goes on past the claimed rows (else a cut could hide an
    addition at the end of the file)."""
    end = start + len(hunk.old_lines)
    if not (start > 0 and end + hunk.overcount[0] < len(lines)):
        raise DiffParseError(
            f"hunk {number} ({hunk.header}) is cut off, or its @@ counts are wrong: its body ends "
            f"{hunk.overcount[0]} old and {hunk.overcount[1]} new lines short of them, here (near the "
            "top or the end of the file) that cannot be told apart"
        )


def _check_missing(lines: list[str], hunk: Hunk, number: int, start: int) -> None:
    """A hunk cut inside its trailing context: the file must have the cut rows, the row the cut
    went through must start like the file's line, and rows cut whole need :func:`_symmetric`."""
    after = start + len(hunk.old_lines)
    if after + hunk.missing > len(lines):
        raise DiffParseError(f"hunk {number} ({hunk.header}) is cut off, and the file ends before its counts")
    if hunk.partial is not None and not lines[after].startswith(hunk.partial):
        raise DiffParseError(
            f"hunk {number} ({hunk.header}) is cut off inside a context line that does not start like "
            f"line {after + 1} of the file: {hunk.partial[:60]!r}"
        )
    whole = hunk.missing - (hunk.partial is not None)
    if whole and not _symmetric(hunk, start, len(lines)):
        raise DiffParseError(
            f"hunk {number} ({hunk.header}) is cut off: {whole} context line(s) missing at its end, and "
            "here (at the top or the end of the file) they could have been changes"
        )


def _symmetric(hunk: Hunk, start: int, size: int) -> bool:
    """True when the hunk's end is settled by the symmetry of diff context: diff tools write
    ``min(U, lines there)`` context lines at both ends of a hunk, so with lines before it and after
    it in the file (neither end clipped) its trailing context, missing rows included, must equal its
    leading context U >= 1. Then rows cut off its end can only have been context (a change there
    would have brought U more context rows with it), and '+' rows after it are not part of it
    unless context rows that match the file follow them (which _check_trailing refuses)."""
    lead, tail = hunk.leading_context, hunk.trailing_context + hunk.missing
    end = start + len(hunk.old_lines) + hunk.missing
    if lead == len(hunk.lines):  # context only: no diff tool writes that, so nothing settles its end
        return False
    return lead >= 1 and tail == lead and start > 0 and end < size


def _new_side(lines: list[str], start: int, hunk: Hunk, level: int) -> list[str]:
    """The replacement lines. In tolerant mode context is kept from the file. ``+`` lines keep the
    diff's line endings, unless the diff has lost them: no CR in the hunk while the file's lines
    there all end in CRLF (an LF copy of a diff for a CRLF file); then they get CRLF."""
    if level == 0:
        return hunk.new_lines
    region = lines[start : start + len(hunk.old_lines)]
    ended = [line for line in region if line.endswith("\n")]
    lost_crlf = bool(ended) and all(line.endswith("\r\n") for line in ended)
    lost_crlf = lost_crlf and not any("\r" in t for _, t in hunk.lines)
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
