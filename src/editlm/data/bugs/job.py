"""``editlm bugs``, one program at a time: the pure per-row step behind the command.

Each program gives diff-model bug-fix samples (file before = buggy program, message = ``Fix
{bug class}``, diff = the fix). A program is skipped, with the reason counted, when it is not
Python, too large, contains a protected benchmark program, or offers no bug site.

The final-newline rule, the same in training data and in benchmark prompts: ``<BEF>`` carries the
file exactly as it is, and a diff whose last line has no newline marks it with
``\\ No newline at end of file`` (a standard unified diff, as 4-Parity's reference fix is). Programs
cut out of larger files usually have no final newline (4-Parity's function has none); ``final_newline``
says what to do with the programs given: ``keep`` them, ``strip`` the final newline of each, or
``mixed`` (strip it from a seeded half), so that a model sees both kinds of file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from editlm.data.bugs.inject import BUG_CLASSES, DEFAULT_TEMPLATE, BugError, Program, sample_bugs
from editlm.edits.diff import make_diff
from editlm.edits.diff_model import DiffSample, FormatError

FINAL_NEWLINE = ("keep", "strip", "mixed")


@dataclass(frozen=True)
class BugJob:
    """Settings of one ``editlm bugs`` run (small and picklable: it travels with every chunk).

    ``templates``, when given, replaces ``template``: each sample's message is one of them, drawn
    with the seeded generator (a mix of specific and generic commit messages). ``context``: lines of
    context around each change in the diff (3, as git writes them; 0 gives the shortest diffs)."""

    counts: tuple[int, ...] = (1,)
    per_count: int = 1
    kinds: tuple[str, ...] = tuple(BUG_CLASSES)
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    max_chars: int = 100_000
    decontaminate: bool = True
    exclude: tuple[str, ...] = field(default=())
    templates: tuple[str, ...] = ()
    context: int = 3
    final_newline: str = "keep"
    # renamed copies of each program (``editlm.data.bugs.rename``), each with its own bugs, drawing new
    # local names from ``names`` (default: short names): copying then pays where recall does not
    renamings: int = 0
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.final_newline not in FINAL_NEWLINE:
            raise ValueError(f"final_newline must be one of {FINAL_NEWLINE}, not {self.final_newline!r}")
        if self.context < 0:
            raise ValueError("context must be >= 0")
        if self.renamings < 0:
            raise ValueError("renamings must be >= 0")


def final_newline_rule(source: str, rule: str, rng: random.Random) -> str:
    """``source`` with its final newline kept or stripped according to ``rule`` (see the module)."""
    if rule == "strip" or (rule == "mixed" and rng.random() < 0.5):
        return source.rstrip("\n")
    return source


def bug_rows(key, source, name: str, job: BugJob) -> tuple[list[dict], str | None]:
    """The samples of one program, or ``([], reason)``. Deterministic in (seed, key)."""
    if not isinstance(source, str) or not source.strip():
        return [], "empty or not text"
    if len(source) > job.max_chars:
        return [], "too large"
    if job.decontaminate:
        from editlm.data.transforms.contamination import default_index

        if default_index(job.exclude).is_contaminated(source):
            return [], "benchmark program (contamination)"
    rng = random.Random(f"{job.seed}:{key}")
    source = final_newline_rule(source, job.final_newline, rng)
    try:
        first = Program(source, job.kinds)
    except BugError:
        return [], "not valid Python"
    variants = [source]
    if job.renamings:
        from editlm.data.bugs.rename import rename_locals

        pool = list(job.names) or None
        variants += [rename_locals(source, rng, pool) for _ in range(job.renamings)]
    rows = []
    drawn = 0
    for variant in dict.fromkeys(variants):  # a program with nothing to rename gives one variant
        program = first if variant is source else Program(variant, job.kinds)
        bugs = sample_bugs(program, rng, job.counts, job.per_count, job.kinds)
        drawn += len(bugs)
        rows += _rows_of(key, len(rows), name, bugs, job, rng)
    if not rows:
        return [], "no bug site" if not drawn else "format error"
    return rows, None


def _rows_of(key, first: int, name: str, bugs, job: BugJob, rng: random.Random) -> list[dict]:
    rows = []
    for number, bug in enumerate(bugs, start=first):
        template = rng.choice(job.templates) if job.templates else job.template
        try:
            diff = (
                bug.fix
                if job.context == 3
                else make_diff(bug.buggy, bug.original, context=job.context, headers=False)
            )
            sample = DiffSample(name, bug.buggy, bug.message(template), diff)
        except FormatError:
            continue  # the program holds a line the diff-model format cannot carry
        rows.append(
            {
                "id": f"{key}/{number}",
                "source_id": str(key),
                "name": name,
                "before": sample.before,
                "after": bug.original,
                "message": sample.message,
                "diff": sample.diff,
                "text": sample.text(),
                # ready for supervised training (editlm.train: prompt + completion, loss from <DFF>)
                "prompt": sample.prompt(),
                "completion": sample.completion(),
                "loss_start": sample.loss_start,
                "bug_classes": list(bug.kinds),
                "n_bugs": len(bug.kinds),
                "details": list(bug.details),
            }
        )
    return rows


def bug_worker(item: tuple) -> tuple:
    """Top-level for process pools: ``(key, source, name, job)`` -> ``(key, rows, skip reason)``."""
    key, source, name, job = item
    try:
        rows, reason = bug_rows(key, source, name, job)
    except RecursionError:
        rows, reason = [], "too deeply nested"
    return key, rows, reason
