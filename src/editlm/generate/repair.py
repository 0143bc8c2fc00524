"""Self-repair: feed a failing program's error back as a commit message and let a diff model fix it.

The repair prompt is the diff-model format itself: the failing program as the file before and
``Fix {error}`` as the message, so any diff model is a repair model without extra training. Every
repair attempt counts as a sample (REFERENCE.md: gains are modest once the extra samples are counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from editlm.edits.diff import DiffError, apply_diff
from editlm.edits.diff_model import DiffSample, FormatError, extract_diff
from editlm.generate.engines import Engine, SamplingParams


@dataclass
class Attempt:
    program: str
    passed: bool
    error: str
    samples_used: int


def error_summary(stderr: str, limit: int = 200) -> str:
    """The last line of a traceback (``NameError: name 'x' is not defined``), one line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "failing tests")[:limit]


def repair_prompt(program: str, error: str, filename: str = "main.py") -> str:
    return DiffSample(filename, program, f"Fix {error_summary(error)}", "").prompt()


def self_repair(
    engine: Engine,
    program: str,
    run_tests,
    params: SamplingParams,
    *,
    rounds: int = 2,
    n: int = 1,
    filename: str = "main.py",
) -> Attempt:
    """Up to ``rounds`` repair rounds of ``n`` diffs each. ``run_tests(program) -> (passed, stderr)``
    runs the program's tests in the sandbox."""
    passed, stderr = run_tests(program)
    used = 0
    for _ in range(rounds):
        if passed:
            break
        prompt = repair_prompt(program, stderr, filename)
        stop = params.stop or ("<NME>",)
        candidates = engine.sample([prompt], n, SamplingParams(**{**params.__dict__, "stop": stop}))[0]
        used += len(candidates)
        for completion in candidates:
            try:
                fixed = apply_diff(program, extract_diff(completion.text))
            except (DiffError, FormatError):
                continue
            ok, err = run_tests(fixed)
            if ok:
                return Attempt(fixed, True, "", used)
            program, stderr = fixed, err  # keep the last applicable attempt for the next round
    return Attempt(program, passed, "" if passed else error_summary(stderr), used)
