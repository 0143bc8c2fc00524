"""HumanEvalFix (HumanEvalPack, Python; Muennighoff et al. 2023): 164 HumanEval functions, each with
a bug written by a person (value misuse 44, missing logic 33, excess logic 31, operator misuse 25,
variable misuse 23, function misuse 8), scored with HumanEval's own tests.

The file a model repairs is the function with its docstring and the buggy body (upstream's "docs"
variant: a real file keeps its docstring). Prompt formats (``Benchmark.prompt``):

- ``diff``: ``<NME> {entry_point}.py <BEF> {buggy file} <MSG> Fix bug <DFF>`` (the seed's message);
- ``completion``: editlm's plain bug-fix prompt (the buggy file, then ``# Fixed bugs``), as for the
  bug-fix benchmark and 4-Parity: the program run is the prompt plus the completion;
- ``response``: upstream's instruction, ``Fix bugs in {entry_point}.``, with the buggy code and the
  tests (upstream's "tests" variant), for instruction-tuned models; the answer is the program.

Published (bigcode evaluation harness): SantaCoder-1.1B pass@1 6.6, pass@10 12.4.
"""

from __future__ import annotations

import re

from editlm.evaluate.benchmarks import Problem, register_benchmark
from editlm.evaluate.benchmarks.bugfix import plain_prompt
from editlm.evaluate.benchmarks.shipped import ShippedBenchmark, jsonl

DATA = "humanevalpack-python.jsonl"
MESSAGE = "Fix bug"
PUBLISHED = {"SantaCoder-1.1B": {"pass@1": 0.066, "pass@10": 0.124}}
_CHECK_CALL = re.compile(r"\n\s*check\(\w+\)\s*$")


def _test_without_call(test: str) -> str:
    """Upstream's ``test`` ends with ``check(entry_point)``; editlm makes that call itself."""
    return _CHECK_CALL.sub("\n", test.rstrip()) if _CHECK_CALL.search(test.rstrip()) else test


def problem_from_row(row: dict) -> Problem:
    number = int(str(row["task_id"]).split("/")[-1])
    entry = row["entry_point"]
    buggy = row["prompt"] + row["buggy_solution"]
    test = _test_without_call(row["test"])
    return Problem(
        task_id=f"HumanEvalFix/{number}",
        prompt=plain_prompt(buggy),
        test=test,
        entry_point=entry,
        source=buggy,
        filename=f"{entry}.py",
        message=MESSAGE,
        instruction=f"Fix bugs in {entry}.",
        edit_source=buggy,
        canonical=row["prompt"] + row["canonical_solution"],
        group=row["bug_type"],
        meta={
            "upstream_id": row["task_id"],
            "bug_type": row["bug_type"],
            "failure_symptoms": row.get("failure_symptoms", ""),
            "tests_shown": row["declaration"] + row["buggy_solution"] + "\n" + test,
        },
    )


class HumanEvalFix(ShippedBenchmark):
    name = "humanevalfix"
    description = "HumanEvalFix (Python): 164 human-written bugs in HumanEval solutions"
    timeout = 10.0  # upstream's Python timeout
    published = PUBLISHED

    def load(self) -> tuple[list[Problem], dict[str, str]]:
        return [problem_from_row(row) for row in jsonl(self.name, DATA)], {}

    def response_prompt(self, problem: Problem) -> str:
        return f"{problem.instruction}\n\n```python\n{problem.meta['tests_shown']}\n```\n"


register_benchmark("humanevalfix", HumanEvalFix)
