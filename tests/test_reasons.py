"""Failed samples counted by kind, from the reasons the evaluator actually writes."""

from __future__ import annotations

from editlm.evaluate.benchmarks import SampleError, get_benchmark
from editlm.evaluate.reasons import failure_kind, failure_kinds


def _reason(sample: dict) -> str:
    bench = get_benchmark("parity")
    try:
        bench.program(bench.problem("Parity/1"), sample)
    except SampleError as exc:
        return str(exc)
    raise AssertionError("expected a SampleError")


def test_invalid_samples_are_told_apart_by_what_went_wrong():
    rows = [
        {"status": "invalid", "reason": _reason({"diff": "not a diff at all"})},
        {"status": "invalid", "reason": _reason({"diff": "@@ -1,1 +1,1 @@\n-nothing like this\n+x\n"})},
        {"status": "invalid", "reason": _reason({"edits": "@@ -9,1 +9,1 @@\n-zzz\n+y\n"})},
        {"status": "invalid", "reason": _reason({"diff": "   "})},
        {"status": "error", "reason": "SyntaxError: invalid syntax"},
        {"status": "error", "reason": "AssertionError: parity(0, 0, 0, 1) returned 0"},
        {"status": "error", "reason": "NameError: name 'c1' is not defined"},
        {"status": "timeout", "reason": "timed out after 3.0s"},
        {"status": "ok", "passed": True, "reason": ""},
    ]
    kinds = [failure_kind(r) for r in rows]
    assert kinds == ["diff does not parse", "diff does not apply", "edit sequence does not decode", "empty sample",
                     "syntax error", "wrong answer (assertion)", "runtime error (NameError)", "timeout", None]  # fmt: skip
    assert failure_kinds(rows + rows[:1]) == {
        "diff does not parse": 2, "diff does not apply": 1, "edit sequence does not decode": 1, "empty sample": 1,
        "syntax error": 1, "wrong answer (assertion)": 1, "runtime error (NameError)": 1, "timeout": 1,
    }  # fmt: skip
