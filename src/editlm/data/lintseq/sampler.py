"""LintSeq (REFERENCE.md section 1): turn a program into a sequence of lint-clean insertion edits.

Backward sampling: pick a line (deeper lines more often), delete it with its indented block, then
delete every line the linter flags until the rest is clean; repeat until nothing is left. Reversed,
the states write the program from nothing, each one lint-clean, each edit an insertion.

Faithful to ``pylintseq`` 0.0.2 in the choice of candidate lines, the depth weights, the block rule
(including its quirk that blank and one-character lines belong to the block above), the cascade and
the diff format (``difflib`` hunks with no context and no file headers, no trailing newline, leading
and trailing blank lines of each state ignored). Differs in: the linter (in process, see
:mod:`editlm.data.lintseq.lint`), a seed per sequence instead of numpy's global state, a time limit, typed
errors instead of silently missing rows, and edits that are insertions even where ``difflib``'s
greedy matcher would pair lines differently.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import time
from collections.abc import Callable, Sequence

from editlm.data.lintseq.lint import make_linter, syntax_error
from editlm.data.lintseq.units import UnitError, line_units, unit_spans
from editlm.edits.diff import apply_diff

Linter = Callable[[str], list[int]]  # a state's text -> the 1-based lines with errors


class LintSeqError(ValueError):
    """A program LintSeq cannot turn into edits; ``reason`` is the skip-count key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def normalize_program(program: str) -> list[str]:
    """The program's lines as LintSeq sees them: LF endings, no blank lines at either end."""
    if not isinstance(program, str):
        raise LintSeqError("not_text", f"program is {type(program).__name__}, not str")
    lines = program.replace("\r\n", "\n").split("\n")
    start, stop = 0, len(lines)
    while start < stop and not lines[start].strip():
        start += 1
    while stop > start and not lines[stop - 1].strip():
        stop -= 1
    return lines[start:stop]


def candidate_lines(lines: Sequence[str]) -> list[int]:
    """Indices of the lines that may be picked: not blank, not comment-only, and not a continuation
    of a multi-line ALL-CAPS global (``NAMES = [`` ... ``]``), exactly as the reference decides."""
    out: list[int] = []
    open_kind = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped[0] == "#":
            continue
        if open_kind is not None:
            end = line.rstrip()[-1]
            if (open_kind == "(" and end == ")") or (open_kind == "[" and end == "]"):
                open_kind = None
            continue
        out.append(i)
        head = line[: line.find("=")].replace(" ", "")
        if "=" in line and head.isupper() and line.rstrip()[-1] in "([":
            open_kind = line.rstrip()[-1]
    return out


def line_indents(lines: Sequence[str]) -> list[int]:
    """Indent per line; a line with at most one visible character (blank, ``)``, ``]``) takes the
    indent of the line before it, so it belongs to that line's block (the reference's rule)."""
    indents, current = [], 0
    for line in lines:
        stripped = line.lstrip()
        if len(stripped) > 1:
            current = len(line) - len(stripped)
        indents.append(current)
    return indents


def depth_weights(indents: Sequence[int]) -> list[float]:
    """1 for a top-level line, indent / (first non-zero indent) for an indented one."""
    unit = next((i for i in indents if i > 0), 1)
    return [1.0 if i == 0 else i / unit for i in indents]


def block_of(target: int, indents: Sequence[int]) -> list[int]:
    """The lines after ``target`` indented deeper than it, up to the first that is not."""
    out, depth = [], indents[target]
    for j in range(target + 1, len(indents)):
        if indents[j] <= depth:
            break
        out.append(j)
    return out


def unit_indents(lines: Sequence[str], spans: Sequence[range]) -> list[int]:
    """The indent of each unit: :func:`line_indents`' rule applied to the first line of each unit
    (the lines inside a string or bracket do not count: their indentation is not Python's)."""
    return line_indents([lines[span[0]] for span in spans])


def unit_block(target: int, indents: Sequence[int]) -> range:
    """The units after ``target`` indented deeper than it, up to the first that is not."""
    depth, stop = indents[target], target + 1
    while stop < len(indents) and indents[stop] > depth:
        stop += 1
    return range(target + 1, stop)


def sample_deletion_path(
    program: str,
    seed: int = 0,
    *,
    linter: Linter | None = None,
    deadline: float | None = None,
    passed: set[str] | None = None,
) -> tuple[list[str], list[tuple[int, ...]]]:
    """The backward pass: the program's lines and the states (kept line indices), full to last.
    ``passed``, when given, collects every text the linter found clean.

    A line is picked as the reference picks it (same candidates, same depth weights, same random
    draws), then its whole unit (:mod:`editlm.data.lintseq.units`: the logical line, with its
    decorators) is deleted with the units of its block. ``linter`` maps a state's text, exactly as
    it will be written (:func:`render_state`), to the 1-based lines with errors; the units of
    those lines go next, until the state is clean. ``None`` is the random-deletion baseline:
    blocks are deleted, nothing is linted. ``deadline`` is on :func:`cpu_clock`.
    """
    lines = normalize_program(program)
    if not lines:
        raise LintSeqError("empty", "the program has no code")
    try:
        units = line_units(lines)
    except UnitError as exc:
        raise LintSeqError("tokenize_error", str(exc)) from None
    spans = unit_spans(units)
    block_indents = unit_indents(lines, spans)
    weights = depth_weights(line_indents(lines))
    rng = random.Random(seed)
    deleted = [False] * len(lines)
    remaining = candidate_lines(lines)
    states: list[tuple[int, ...]] = [tuple(range(len(lines)))]
    while remaining:
        _check(deadline)
        total = sum(weights[i] for i in remaining)
        point = rng.random() * total
        pick = remaining[-1]
        for i in remaining:  # weighted choice; a linear scan is cheaper than linting once
            point -= weights[i]
            if point < 0:
                pick = i
                break
        affected = {units[pick]}
        while affected:
            _check(deadline)
            for unit in affected:
                for u in (unit, *unit_block(unit, block_indents)):
                    for line in spans[u]:
                        deleted[line] = True
            if linter is None:
                break
            shown, text = render_state(lines, [i for i, gone in enumerate(deleted) if not gone])
            if not shown:
                break
            # lint() keeps every reported line inside the text, so each round deletes a kept line
            # and the cascade ends.
            affected = {units[shown[n - 1]] for n in linter(text) if 1 <= n <= len(shown)}
            if not affected and passed is not None:
                passed.add(text)
        remaining = [i for i in remaining if not deleted[i]]
        states.append(tuple(i for i, gone in enumerate(deleted) if not gone))
    return lines, states


def cpu_clock() -> float:
    """The clock of the per-program time limit: this thread's CPU time, so that a loaded machine
    (or a busy Dask worker thread next door) does not turn a program into a timeout."""
    return time.thread_time()


def _check(deadline: float | None) -> None:
    if deadline is not None and cpu_clock() > deadline:
        raise LintSeqError("timeout", "the per-program time limit ran out")


def render_state(lines: Sequence[str], kept: Sequence[int]) -> tuple[list[int], str]:
    """A state as text, without its leading and trailing blank lines (the reference strips them),
    and the indices of the lines shown. The linter judges exactly this text."""
    start, stop = 0, len(kept)
    while start < stop and not lines[kept[start]].strip():
        start += 1
    while stop > start and not lines[kept[stop - 1]].strip():
        stop -= 1
    shown = list(kept[start:stop])
    return shown, "".join(lines[i] + "\n" for i in shown)


def states_to_edits(lines: Sequence[str], states: Sequence[tuple[int, ...]]) -> list[str]:
    """Forward insertion diffs from the empty program through the states (given full to last)."""
    rendered = [render_state(lines, kept) for kept in reversed(states)]
    if rendered[0][1]:
        rendered.insert(0, ([], ""))
    edits = []
    for (before_idx, _), (after_idx, _) in zip(rendered, rendered[1:], strict=False):
        if before_idx == after_idx:
            continue
        before, after = [lines[i] for i in before_idx], [lines[i] for i in after_idx]
        # The reference's get_diff: difflib.unified_diff with n=0, headers dropped, rows joined by
        # "\n". difflib's default autojunk is kept (as in the reference): without it, a repetitive
        # file takes minutes and some edits differ from the reference's on the same deletion path.
        rows = list(difflib.unified_diff(before, after, n=0, lineterm=""))[2:]
        if any(row.startswith("-") for row in rows):
            # difflib matches greedily (longest block first, popular lines junked), so with repeated
            # lines it can pair a line with the wrong copy and emit a deletion; we know which lines
            # were inserted.
            edits.append(_insertion_diff(before_idx, after_idx, lines)[:-1])
        elif rows:
            edits.append("\n".join(rows))
    return edits


def _insertion_diff(before: Sequence[int], after: Sequence[int], lines: Sequence[str]) -> str:
    """The insertion-only diff between two states, in ``difflib``'s hunk format (context 0)."""
    old = set(before)
    out: list[str] = []
    j, seen_old = 0, 0
    while j < len(after):
        if after[j] in old:
            seen_old += 1
            j += 1
            continue
        start = j
        while j < len(after) and after[j] not in old:
            j += 1
        count = j - start
        new_range = str(start + 1) if count == 1 else f"{start + 1},{count}"
        out.append(f"@@ -{seen_old},0 +{new_range} @@\n")
        out += ["+" + lines[i] + "\n" for i in after[start:j]]
    return "".join(out)


def sample_edit_sequence(
    program: str,
    seed: int = 0,
    *,
    linter: str = "pyflakes",
    missing_imports: bool = False,
    time_limit: float | None = None,
    check_syntax: bool = True,
    passed: set[str] | None = None,
) -> list[str]:
    """One LintSeq edit sequence for ``program``: insertion diffs from the empty program to it.

    Deterministic per ``seed``. Raises :class:`LintSeqError` (``reason`` ``syntax_error``,
    ``empty``, ``timeout``, ``not_text``) for programs that cannot be sampled.
    """
    deadline = None if time_limit is None else cpu_clock() + time_limit
    if check_syntax:
        check_program(program)
    lint = make_linter(linter, missing_imports)
    lines, states = sample_deletion_path(program, seed, linter=lint, deadline=deadline, passed=passed)
    return states_to_edits(lines, states)


def sample_random_edit_sequence(program: str, seed: int = 0, *, time_limit: float | None = None) -> list[str]:
    """The paper's ablation: the same sampler with the linter removed (blocks still go together),
    so intermediate states may not even parse."""
    deadline = None if time_limit is None else cpu_clock() + time_limit
    check_program(program)
    lines, states = sample_deletion_path(program, seed, linter=None, deadline=deadline)
    return states_to_edits(lines, states)


def random_chunk_path(lines: Sequence[str], seed: int) -> list[list[int]]:
    """The authors' linter ablation (``random_chunked_trajectory`` in their
    ``generate_with_random_sampling.py``), on numpy's and Python's generators seeded per sequence:
    every line (blank lines too) is a candidate; while more than one is left, delete a chunk of
    ``numpy.randint(1, len(left))`` lines drawn by ``random.sample``; the last line goes alone."""
    import numpy as np

    np_rng, py_rng = np.random.RandomState(seed % 2**32), random.Random(seed)
    left = list(range(len(lines)))
    path = []
    while left:
        if len(left) == 1:
            chunk = list(left)
        else:
            chunk = py_rng.sample(left, int(np_rng.randint(1, high=len(left))))
        path.append(chunk)
        gone = set(chunk)
        left = [i for i in left if i not in gone]
    return path


def sample_random_chunk_sequence(program: str, seed: int = 0) -> list[str]:
    """Edits from the authors' linter ablation (:func:`random_chunk_path`): random chunks of lines,
    no linter, no blocks; the states need not parse. The lines are the program's as the authors
    split it (``program.split("\\n")``, so a final newline adds an empty line to draw)."""
    check_program(program)
    lines = program.replace("\r\n", "\n").split("\n")
    states, deleted = [tuple(range(len(lines)))], set()
    for chunk in random_chunk_path(lines, seed):
        deleted.update(chunk)
        states.append(tuple(i for i in range(len(lines)) if i not in deleted))
    return states_to_edits(lines, states)


def check_program(program: str) -> None:
    """Raise :class:`LintSeqError` (``not_text``, ``empty``, ``syntax_error``) for a program that
    cannot be sampled; cheap, so jobs run it before the time limit starts."""
    lines = normalize_program(program)
    if not lines:
        raise LintSeqError("empty", "the program has no code")
    error = syntax_error("".join(line + "\n" for line in lines))
    if error is not None:
        raise LintSeqError("syntax_error", f"line {error.line}: {error.message}")


def apply_edit_sequence(diffs: Sequence[str], source: str = "") -> str:
    """Apply the edits in order; raises ``editlm.edits.diff.DiffError`` naming the bad edit."""
    program = source
    for number, diff in enumerate(diffs, 1):
        try:
            program = apply_diff(program, diff)
        except ValueError as exc:
            raise type(exc)(f"edit {number}: {exc}") from None
    return program


def sequence_seed(seed: int, key: object, sample: int) -> int:
    """A seed per (run seed, input row, sample): the same row gets the same sequences on any worker."""
    digest = hashlib.blake2b(f"{seed}:{key}:{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits a signed 64-bit column


def first_unclean_state(
    edits: Sequence[str], *, missing_imports: bool = False, passed: set[str] | None = None
) -> str | None:
    """Rebuild the states from ``edits`` (applying each diff, independently of the sampler's own
    bookkeeping) and check each intermediate one with ``compile`` and pyflakes; the last state is
    the program itself and may keep its own errors. Returns what is wrong with the first bad state,
    or None. The job runs this on every sequence before writing it.

    ``passed`` (the texts the linter found clean while sampling, from ``sample_edit_sequence``)
    makes the check cheap: a rebuilt state that is one of them was compiled and pyflakes-checked as
    it stands, so only the others are linted here."""
    from editlm.data.lintseq.lint import lint

    state = ""
    for number, edit in enumerate(edits[:-1], 1):
        try:
            state = apply_diff(state, edit)
        except ValueError as exc:
            return f"edit {number} does not apply: {exc}"
        if passed is not None and state in passed:
            continue
        errors = lint(state, missing_imports=missing_imports)
        if errors:
            first = errors[0]
            return f"state {number}, line {first.line}: {first.code}: {first.message}"
    return None
