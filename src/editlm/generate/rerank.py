"""MBR-exec (Shi et al. 2022): run every candidate on the same inputs and keep the one whose outputs
agree with the most others; ties go to the higher log-probability.

The inputs are call expressions only (``candidate(3, 4)`` in HumanEval's tests), never the expected
outputs, so reranking does not peek at the answers.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from collections.abc import Sequence

_HARNESS = """
import json as __json
__outs = []
for __call in __CALLS:
    try:
        __outs.append(repr(eval(__call)))
    except BaseException as __exc:
        __outs.append('!' + type(__exc).__name__)
print('__MBR__' + __json.dumps(__outs))
"""


def call_inputs(test_code: str, entry_point: str, limit: int = 20) -> list[str]:
    """The argument lists of ``candidate(...)`` calls in a test, as calls to ``entry_point``."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
            args = ", ".join(ast.unparse(a) for a in node.args)
            kwargs = ", ".join(f"{k.arg}={ast.unparse(k.value)}" for k in node.keywords if k.arg)
            calls.append(f"{entry_point}({', '.join(x for x in (args, kwargs) if x)})")
    return list(dict.fromkeys(calls))[:limit]


def execution_signatures(
    programs: Sequence[str], calls: Sequence[str], sandbox, timeout: float = 3.0
) -> list:
    """One hashable output signature per program (None where it did not run)."""
    harness = _HARNESS.replace("__CALLS", json.dumps(list(calls)))
    results = sandbox.run_many([p + "\n" + harness for p in programs], timeout=timeout)
    signatures = []
    for result in results:
        line = next((x for x in result.stdout.splitlines() if x.startswith("__MBR__")), None)
        signatures.append(tuple(json.loads(line[len("__MBR__") :])) if line else None)
    return signatures


def mbr_exec(
    programs: Sequence[str], calls: Sequence[str], sandbox, logprobs: Sequence[float | None] | None = None
) -> int:
    """Index of the chosen program."""
    if not programs:
        raise ValueError("no candidates to rerank")
    signatures = execution_signatures(programs, calls, sandbox)
    votes = Counter(s for s in signatures if s is not None)
    logprobs = list(logprobs or [None] * len(programs))

    def score(i: int) -> tuple:
        agreement = votes[signatures[i]] if signatures[i] is not None else 0
        return (agreement, logprobs[i] if logprobs[i] is not None else float("-inf"), -i)

    return max(range(len(programs)), key=score)
