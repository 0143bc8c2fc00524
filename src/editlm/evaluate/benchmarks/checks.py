"""Checks that make a benchmark trustworthy: every reference passes its tests and every buggy (or
unedited) input fails them, run in the sandbox exactly as samples are scored.

``editlm benchmarks check NAME`` runs them and can write the items that fail a check, with the
reason, to the exclusions file shipped beside the data, so that they are left out by name.
"""

from __future__ import annotations

from editlm.evaluate.benchmarks import Benchmark, Problem


def reference_text(problem: Problem) -> str:
    return problem.meta.get("reference_output", problem.canonical)


def check_samples(problems: list[Problem]) -> list[dict]:
    """Two samples a problem: the reference (must pass) and the input as it is (must fail)."""
    samples = []
    for p in problems:
        samples.append({"task_id": p.task_id, "response": reference_text(p), "check": "reference"})
        samples.append({"task_id": p.task_id, "response": p.source or "", "check": "input"})
    return samples


def check_benchmark(bench: Benchmark, *, workers: int = 0, limit: int | None = None, **evaluate) -> dict:
    """``{"checked", "reference_passed", "input_failed", "failures": {task_id: reason}}``."""
    from editlm.evaluate.run import evaluate_samples

    problems = list(bench.problems().values())[:limit]
    samples = check_samples(problems)
    rows, _ = evaluate_samples(samples, bench, workers=workers, **evaluate)
    failures: dict[str, str] = {}
    passed = failed = 0
    for sample, row in zip(samples, rows, strict=True):
        if sample["check"] == "reference":
            passed += bool(row["passed"])
            if not row["passed"]:
                failures[sample["task_id"]] = f"the reference fails its tests ({row['reason'][:200]})"
        else:
            failed += not row["passed"]
            if row["passed"]:
                failures.setdefault(sample["task_id"], "the buggy input already passes its tests")
    return {
        "benchmark": bench.name,
        "checked": len(problems),
        "reference_passed": passed,
        "input_failed": failed,
        "failures": failures,
        "excluded_upstream_items": dict(bench.excluded),
    }
