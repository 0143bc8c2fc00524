"""The bug-fix benchmark: every kept bug fails its tests and every reference fix passes them,
judged by the same harness as ``editlm evaluate``; it registers as ``bugfix``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from editlm.data.bugs.benchmark import (
    BuildSettings,
    Source,
    build_rows,
    candidate_bugs,
    humaneval_sources,
    source_from_row,
)
from editlm.edits.diff import apply_diff
from editlm.evaluate.benchmarks import BenchmarkError, get_benchmark, list_benchmarks
from editlm.evaluate.benchmarks.bugfix import ENV, BugFix
from editlm.evaluate.run import iter_results, sample_metrics
from editlm.evaluate.sandbox import Sandbox


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=2) as sandbox:
        yield sandbox


def build(sources, settings, box):
    kept, skipped = {}, {}

    def on_result(task_id, rows, reason):
        if reason:
            skipped[task_id] = reason
        else:
            kept[task_id] = rows

    build_rows(sources, settings, box, on_result, batch=3)
    return kept, skipped


@pytest.fixture(scope="module")
def humaneval_rows(box):
    kept, skipped = build(humaneval_sources(limit=5), BuildSettings(seed=1), box)
    assert not skipped  # every reference passes and every problem gives a failing bug
    return [row for rows in kept.values() for row in rows]


def test_humaneval_bugs_all_fail_and_references_all_pass(humaneval_rows, box):
    rows = humaneval_rows
    assert len(rows) >= 10
    assert {r["source_task"] for r in rows} == {f"HumanEval/{i}" for i in range(5)}
    bench = BugFix(rows=rows)
    # judged again, independently, through the evaluation harness: the reference diffs pass ...
    fixes = [{"task_id": r["task_id"], "diff": r["diff"]} for r in rows]
    assert all(res["passed"] for res in iter_results(fixes, bench, sandbox=box))
    # ... and the buggy programs, run as they are (a plain completion that changes nothing), fail
    unchanged = [{"task_id": r["task_id"], "completion": "pass\n"} for r in rows]
    assert not any(res["passed"] for res in iter_results(unchanged, bench, sandbox=box))
    # exact match of the repaired program with the original
    assert sample_metrics(fixes, bench)["exact_match"] == 1.0
    for row in rows:
        assert apply_diff(row["buggy"], row["diff"]) == row["fixed"]
        assert row["prompt"].endswith("<DFF>") and row["message"].startswith("Fix ")


def test_problems_carry_both_formats_and_the_bug_class(humaneval_rows):
    problem = next(iter(BugFix(rows=humaneval_rows).problems().values()))
    row = humaneval_rows[0]
    assert problem.source == row["buggy"] and problem.canonical == row["fixed"]
    assert problem.group == row["bug_classes"][0] and problem.message == row["message"]
    assert row["buggy"] in problem.prompt and problem.prompt.endswith("# Fixed bugs\n")


SLEEPY = Source(
    "sleepy",
    "import time\n\n\ndef f(x):\n    if x > 5:\n        time.sleep(30)\n    return x\n",
    "def check(candidate):\n    assert candidate(5) == 5\n",
    "f",
)


def test_skips_reference_failures_uncaught_bugs_and_timeouts(box):
    wrong = Source("wrong", "def f(x):\n    return x + 1\n", "def check(c):\n    assert c(1) == 1\n", "f")
    untested = Source("untested", "def f(x):\n    return x * 2\n", "def check(c):\n    pass\n", "f")
    no_site = Source("nosite", "def f():\n    return 'a'\n", "def check(c):\n    assert c() == 'a'\n", "f")
    settings = BuildSettings(kinds=("wrong-constant",), per_class=4, timeout=1.0)
    # the sleepy program's `5 -> 4` bug only times out, and its other bugs pass the test
    assert any("x > 4" in bug.buggy for bug in candidate_bugs(SLEEPY, settings))
    kept, skipped = build([wrong, untested, no_site, SLEEPY], settings, box)
    assert kept == {}
    assert skipped == {
        "wrong": "reference fails its tests",
        "untested": "no bug fails the tests",
        "nosite": "no bug site",
        "sleepy": "no bug fails the tests",
    }


def test_candidates_are_deterministic_and_distinct():
    source = humaneval_sources(limit=1)[0]
    a = candidate_bugs(source, BuildSettings(per_class=2, counts=(1, 2)))
    b = candidate_bugs(source, BuildSettings(per_class=2, counts=(1, 2)))
    assert [x.buggy for x in a] == [x.buggy for x in b]
    assert len({x.buggy for x in a}) == len(a)
    assert {len(x.kinds) for x in a} == {1, 2}


def test_source_rows():
    assert source_from_row({"program": "p", "test": "t", "entry_point": "f"}, 3).task_id == "3"
    humaneval = {"task_id": "H/1", "prompt": "a", "canonical_solution": "b", "test": "t", "entry_point": "f"}
    assert source_from_row(humaneval, 0).program == "ab"
    with pytest.raises(KeyError):
        source_from_row({"program": "p", "test": "t"}, 0)


def test_command_builds_resumes_and_registers(tmp_path, monkeypatch):
    from editlm.cli import app

    programs = tmp_path / "programs.jsonl"
    rows = [
        {
            "task_id": "add",
            "program": "def add(a, b):\n    total = a + b\n    return total\n",
            "test": "def check(c):\n    assert c(2, 3) == 5\n    assert c(-1, 1) == 0\n",
            "entry_point": "add",
        },
        {"task_id": "bad", "program": "def f(:\n", "test": "", "entry_point": "f"},
    ]
    programs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "bugfix.jsonl"
    args = ["bugfix-benchmark", str(programs), "-o", str(out), "-w", "1", "--per-class", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert written and all(r["source_task"] == "add" for r in written)
    summary = json.loads((tmp_path / "bugfix.jsonl.summary.json").read_text())
    assert summary["skipped"] == {"not valid Python": 1}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and [json.loads(x) for x in out.read_text().splitlines()] == written

    assert "bugfix" in list_benchmarks()
    monkeypatch.setenv(ENV, str(out))
    bench = get_benchmark("bugfix")
    assert isinstance(bench, BugFix)
    assert len(BugFix().problems()) == len(written)
    with pytest.raises(BenchmarkError, match="editlm bugfix-benchmark"):
        BugFix(tmp_path / "missing.jsonl").problems()


@pytest.mark.parametrize("kind", ["missing-logic", "excess-logic", "function-misuse", "value-misuse"])
def test_real_bug_classes_change_behaviour(kind, box):
    """HumanEvalFix's bug types injected into HumanEval solutions: the builder keeps a bug only when
    the tests fail on it in the sandbox, so kept rows are bugs that change behaviour."""
    kept, skipped = build(humaneval_sources(limit=10), BuildSettings(seed=0, kinds=(kind,)), box)
    rows = [row for rows in kept.values() for row in rows]
    assert len(rows) >= 3, (kind, skipped)
    assert all(row["bug_classes"] == [kind] for row in rows)
    assert all(apply_diff(row["buggy"], row["diff"]) == row["fixed"] for row in rows)
