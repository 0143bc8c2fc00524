"""``editlm bugs``, one program at a time: the pure per-row step behind the command.

Each program gives diff-model bug-fix samples (file before = buggy program, message = ``Fix
{bug class}``, diff = the fix). A program is skipped, with the reason counted, when it is not
Python, too large, contains a protected benchmark program, or offers no bug site.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from editlm.data.bugs.inject import BUG_CLASSES, DEFAULT_TEMPLATE, BugError, Program, sample_bugs
from editlm.edits.diff_model import FormatError


@dataclass(frozen=True)
class BugJob:
    """Settings of one ``editlm bugs`` run (small and picklable: it travels with every chunk)."""

    counts: tuple[int, ...] = (1,)
    per_count: int = 1
    kinds: tuple[str, ...] = tuple(BUG_CLASSES)
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    max_chars: int = 100_000
    decontaminate: bool = True
    exclude: tuple[str, ...] = field(default=())


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
    try:
        program = Program(source, job.kinds)
    except BugError:
        return [], "not valid Python"
    rng = random.Random(f"{job.seed}:{key}")
    bugs = sample_bugs(program, rng, job.counts, job.per_count, job.kinds)
    rows = []
    for number, bug in enumerate(bugs):
        try:
            sample = bug.sample(name, job.template)
        except FormatError:
            continue  # the program holds a line the diff-model format cannot carry
        rows.append(
            {
                "id": f"{key}/{number}",
                "source_id": str(key),
                "name": name,
                "before": sample.before,
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
    if not rows:
        return [], "no bug site" if not bugs else "format error"
    return rows, None


def bug_worker(item: tuple) -> tuple:
    """Top-level for process pools: ``(key, source, name, job)`` -> ``(key, rows, skip reason)``."""
    key, source, name, job = item
    try:
        rows, reason = bug_rows(key, source, name, job)
    except RecursionError:
        rows, reason = [], "too deeply nested"
    return key, rows, reason
