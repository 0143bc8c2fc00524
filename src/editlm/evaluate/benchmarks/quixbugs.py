"""QuixBugs (Lin et al. 2017), Python: 40 classic algorithms, each with a one-line bug, a reference
fix (``correct_python_programs/``) and tests (``python_testcases/``, most reading
``json_testcases/``).

Upstream runs its tests with pytest in the program's own process. Here every test is rewritten into
the HumanEval form, ``check(candidate)``, over the same cases, so it can run outside the candidate's
process and call it with plain data only:

- JSON cases (31 programs): ``candidate(*input) == expected``, with upstream's three special
  comparisons kept (``list(...)`` for the two generators, ``pytest.approx(abs=epsilon)`` for sqrt);
- hand-written tests over dicts and tuples (3 programs): the same test functions, called in order;
- tests that build ``Node`` graphs (6 programs): objects cannot cross to a process the candidate
  does not run in, so these are left out with that reason (``Benchmark.excluded``).

Generators cannot cross either: for ``flatten`` and ``kheapsort`` the candidate is called through a
wrapper in its own process that returns ``list(...)`` (:meth:`QuixBugs.harness`), as upstream's
tests do.
"""

from __future__ import annotations

import ast
import json

from editlm.evaluate.benchmarks import Benchmark, Problem, register_benchmark
from editlm.evaluate.benchmarks.bugfix import plain_prompt
from editlm.evaluate.benchmarks.shipped import exclusions, files, text

MESSAGE = "Fix bug"
GENERATORS = ("flatten", "kheapsort")
APPROX = {"sqrt": "abs(got - expected) <= args[-1]"}  # upstream: pytest.approx(expected, abs=input_data[-1])
WRAPPER = "_editlm_list_of"
NODE_REASON = (
    "its tests build Node graphs (objects), which cannot cross to a process the candidate does not run in"
)


def names() -> list[str]:
    """The 40 program names (helpers such as ``node.py`` and the ``*_test.py`` drivers left out)."""
    found = {
        path.split("/", 1)[1][: -len(".py")]
        for path in files("quixbugs")
        if path.startswith("python_programs/") and path.endswith(".py")
    }
    return sorted(n for n in found if n != "node" and not n.endswith("_test"))


def skipped_inputs(test_source: str) -> list:
    """Inputs upstream's test skips (``if input_data == [...]: pytest.skip(...)``: cases that take
    minutes even for the reference), read from the test file itself."""
    skipped = []
    for node in ast.walk(ast.parse(test_source)):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "input_data":
            if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
                skipped.append(ast.literal_eval(node.comparators[0]))
    return skipped


def json_check(name: str, cases_text: str, test_source: str = "") -> str:
    skipped = skipped_inputs(test_source) if test_source else []
    cases = [json.loads(line) for line in cases_text.splitlines() if line.strip()]
    cases = [c for c in cases if c[0] not in skipped]
    if name == "hanoi":  # upstream's test: testdata = [[inp, [tuple(x) for x in out]] ...]
        cases = [[args, [tuple(step) for step in expected]] for args, expected in cases]
    call = "list(candidate(*args))" if name in GENERATORS else "candidate(*args)"
    compare = APPROX.get(name, "got == expected")
    return (
        f"CASES = {cases!r}\n\n\n"
        "def check(candidate):\n"
        "    for args, expected in CASES:\n"
        f"        got = {call}\n"
        f"        assert {compare}, f'{name}{{tuple(args)}} returned {{got!r}}, expected {{expected!r}}'\n"
    )


def pytest_check(name: str, source: str) -> str | None:
    """Upstream's hand-written test functions, called in order by ``check(candidate)``; None when they
    need ``Node`` objects."""
    tree = ast.parse(source)
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if "Node" in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} or not tests:
        return None
    body = "\n\n\n".join(ast.unparse(t) for t in tests)
    calls = "".join(f"    {t.name}()\n" for t in tests)
    return f"{body}\n\n\ndef check(candidate):\n    global {name}\n    {name} = candidate\n{calls}"


def load() -> tuple[list[Problem], dict[str, str]]:
    problems, left_out = [], {}
    for name in names():
        task_id = f"QuixBugs/{name}"
        buggy = text("quixbugs", f"python_programs/{name}.py")
        fixed = text("quixbugs", f"correct_python_programs/{name}.py")
        cases = files("quixbugs").get(f"json_testcases/{name}.json")
        if cases is not None:
            test = json_check(
                name, cases.decode("utf-8"), text("quixbugs", f"python_testcases/test_{name}.py")
            )
        else:
            test = pytest_check(name, text("quixbugs", f"python_testcases/test_{name}.py"))
            if test is None:
                left_out[task_id] = NODE_REASON
                continue
        problems.append(
            Problem(
                task_id=task_id,
                prompt=plain_prompt(buggy),
                test=test,
                entry_point=WRAPPER if name in GENERATORS else name,
                source=buggy,
                filename=f"{name}.py",
                message=MESSAGE,
                instruction=f"Fix the bug in {name}.",
                edit_source=buggy,
                canonical=fixed,
                group=name,
                meta={"function": name},
            )
        )
    return problems, left_out


class QuixBugs(Benchmark):
    name = "quixbugs"
    description = "QuixBugs (Python): 40 classic algorithms with one-line bugs"
    timeout = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.excluded = dict(exclusions(self.name))

    def load_problems(self) -> list[Problem]:
        problems, left_out = load()
        self.excluded.update(left_out)
        return [p for p in problems if p.task_id not in self.excluded]

    def harness(self, problem: Problem) -> str:
        function = problem.meta["function"]
        if function in GENERATORS:
            return f"\n\ndef {WRAPPER}(*args):\n    return list({function}(*args))\n"
        return ""


register_benchmark("quixbugs", QuixBugs)
