"""The bug-fix benchmark: programs with synthetic bugs that make their tests fail, to be repaired.

Built by ``editlm bugfix-benchmark`` (see :mod:`editlm.data.bugs.benchmark`) from HumanEval's
canonical solutions, or any programs with tests; read here from a JSONL file:
``$EDITLM_BUGFIX_BENCHMARK``, else ``$XDG_CACHE_HOME/editlm/bugfix.jsonl`` (``~/.cache/...``).

Scored two ways, as the seed's diff-model paper does: by execution (``editlm evaluate -b bugfix``:
the repaired program passes the original tests) and by exact match with the original program
(``--metrics``: ``Problem.canonical`` is the bug-free program). Problems are grouped by bug class.
"""

from __future__ import annotations

import os
from pathlib import Path

from editlm.edits.diff_model import DiffSample
from editlm.evaluate.benchmarks import Benchmark, BenchmarkError, Problem, register_benchmark

ENV = "EDITLM_BUGFIX_BENCHMARK"
# The fields of one benchmark row (written by editlm.data.bugs.benchmark).
FIELDS = (
    "task_id",
    "source_task",
    "entry_point",
    "filename",
    "buggy",
    "fixed",
    "message",
    "diff",
    "prompt",
    "test",
    "bug_classes",
    "details",
    "n_bugs",
)


def default_path() -> Path:
    """Where the benchmark file is read from (and written to by default)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "editlm" / "bugfix.jsonl"


def plain_prompt(buggy: str) -> str:
    """For a plain code model: the buggy program and a comment asking for the fix (OpenELM's
    CodeGen prompt for 4-Parity); the program run is this prompt plus the completion, so the fixed
    definitions written after it replace the buggy ones."""
    return f"# A buggy implementation\n#!/usr/bin/python3\n{buggy}\n# Fixed bugs\n"


def diff_prompt(filename: str, buggy: str, message: str) -> str:
    return DiffSample(filename, buggy, message, "").prompt()


def problem_from_row(row: dict) -> Problem:
    buggy = row["buggy"]
    return Problem(
        task_id=row["task_id"],
        prompt=plain_prompt(buggy),
        test=row["test"],
        entry_point=row["entry_point"],
        source=buggy,
        filename=row["filename"],
        message=row["message"],
        instruction=f"{row['message']} in this program:\n{buggy}",
        edit_source=buggy,
        canonical=row["fixed"],
        group=" + ".join(sorted(set(row["bug_classes"]))),
        meta={
            "source_task": row.get("source_task"),
            "bug_classes": list(row["bug_classes"]),
            "details": list(row.get("details") or []),
            "n_bugs": row.get("n_bugs", len(row["bug_classes"])),
            "reference_diff": row["diff"],
        },
    )


class BugFix(Benchmark):
    name = "bugfix"
    description = "Synthetic bugs that fail their tests (HumanEval by default): repair them"
    timeout = 5.0

    def __init__(self, path: str | Path | None = None, rows: list[dict] | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else None
        self._rows = rows

    def load_problems(self) -> list[Problem]:
        if self._rows is not None:
            return [problem_from_row(r) for r in self._rows]
        from editlm.io.tables import TableError, read_rows

        path = self.path or default_path()
        if not path.exists():
            raise BenchmarkError(
                f"no bug-fix benchmark at {path}: build it with `editlm bugfix-benchmark -o {path}` "
                f"(or point ${ENV} at one)"
            )
        try:
            return [problem_from_row(r) for r in read_rows(path)]
        except (TableError, KeyError) as exc:
            raise BenchmarkError(f"{path}: not a bug-fix benchmark file ({exc})") from None


register_benchmark("bugfix", BugFix)
