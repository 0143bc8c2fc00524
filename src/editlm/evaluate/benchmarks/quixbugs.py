"""QuixBugs (Lin et al. 2017), Python: 40 classic algorithms, each with a one-line bug, a reference
fix (``correct_python_programs/``) and tests (``python_testcases/``, most reading
``json_testcases/``).

Upstream runs its tests with pytest in the program's own process. Here every test is rewritten into
the HumanEval form, ``check(candidate)``, over the same cases, so it can run outside the candidate's
process and call it with plain data only:

- JSON cases (31 programs): ``candidate(*input) == expected``, with upstream's three special
  comparisons kept (``list(...)`` for the two generators, ``pytest.approx(abs=epsilon)`` for sqrt);
- hand-written tests over dicts and tuples (3 programs): the same test functions, called in order;
- tests that build ``Node`` graphs (6 programs): objects cannot cross to a process the candidate does
  not run in, so the graph crosses as data. The test's own ``Node`` objects are encoded (values and
  links, by index) when it calls the function; a wrapper in the candidate's process rebuilds them,
  calls the candidate, and sends back the result and every node's links after the call (the function
  may relink them: ``reverse_linked_list``); the test side applies those and maps nodes in the result
  back to its own objects, so upstream's assertions (``result == node1``) run unchanged.

Generators cannot cross either: for ``flatten`` and ``kheapsort`` the candidate is called through a
wrapper in its own process that returns ``list(...)`` (:meth:`QuixBugs.harness`), as upstream's
tests do.
"""

from __future__ import annotations

import ast
import json

from editlm.evaluate.benchmarks import Problem, register_benchmark
from editlm.evaluate.benchmarks.bugfix import plain_prompt
from editlm.evaluate.benchmarks.shipped import ShippedBenchmark, files, text

MESSAGE = "Fix bug"
GENERATORS = ("flatten", "kheapsort")
APPROX = {"sqrt": "abs(got - expected) <= args[-1]"}  # upstream: pytest.approx(expected, abs=input_data[-1])
WRAPPER = "_editlm_list_of"
GRAPH_ENTRY = "_editlm_graph_call"
# Shared by both sides of a graph test: Node graphs <-> plain data. Links are node indices.
_LINKS = ("successor", "successors", "predecessors", "incoming_nodes", "outgoing_nodes")
GRAPH_CODEC = f"""
_LINKS = {_LINKS!r}


def _graph_encode(value, nodes):
    if isinstance(value, Node):
        for i, node in enumerate(nodes):
            if node is value:
                return {{"node": i}}
        nodes.append(value)
        return {{"node": len(nodes) - 1}}
    if isinstance(value, (list, tuple)):
        items = [_graph_encode(v, nodes) for v in value]
        return {{"tuple": items}} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {{"dict": [[_graph_encode(k, nodes), _graph_encode(v, nodes)] for k, v in value.items()]}}
    return value


def _graph_states(nodes):
    states, done = [], 0
    while done < len(nodes):  # encoding a node's links may reach nodes not seen yet
        node = nodes[done]
        state = {{"value": node.value}}
        for name in _LINKS:
            link = getattr(node, name, None)
            state[name] = None if link is None else _graph_encode(link, nodes)
        states.append(state)
        done += 1
    return states


def _graph_decode(value, nodes):
    if isinstance(value, dict):
        if "node" in value:
            return nodes[value["node"]]
        if "tuple" in value:
            return tuple(_graph_decode(v, nodes) for v in value["tuple"])
        return {{_graph_decode(k, nodes): _graph_decode(v, nodes) for k, v in value["dict"]}}
    if isinstance(value, list):
        return [_graph_decode(v, nodes) for v in value]
    return value


def _graph_relink(nodes, states):
    while len(nodes) < len(states):
        nodes.append(Node())
    for node, state in zip(nodes, states):
        node.value = state["value"]
        for name in _LINKS:
            setattr(node, name, _graph_decode(state[name], nodes))
"""


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


def uses_nodes(source: str) -> bool:
    return "Node" in {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def pytest_check(name: str, source: str, node_source: str) -> str:
    """Upstream's hand-written test functions, called in order by ``check(candidate)``. Tests that
    build ``Node`` graphs call the candidate through the graph codec (see the module docstring)."""
    tree = ast.parse(source)
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    # the module's own statements stay (some tests share nodes built at module level); its imports
    # and the `if pytest.use_correct:` choice of the program under test go
    kept = [
        n
        for n in tree.body
        if not isinstance(n, (ast.Import, ast.ImportFrom))
        and not (isinstance(n, ast.If) and "pytest" in ast.unparse(n.test))
    ]
    body = "\n\n\n".join(ast.unparse(n) for n in kept)
    calls = "".join(f"    {t.name}()\n" for t in tests)
    if not uses_nodes(source):
        return f"{body}\n\n\ndef check(candidate):\n    global {name}\n    {name} = candidate\n{calls}"
    proxy = (
        "def _graph_proxy(candidate):\n"
        "    def call(*args):\n"
        "        nodes = []\n"
        "        encoded = _graph_encode(list(args), nodes)\n"
        "        out = candidate({'args': encoded, 'nodes': _graph_states(nodes)})\n"
        "        _graph_relink(nodes, out['nodes'])\n"
        "        return _graph_decode(out['result'], nodes)\n"
        "    return call\n"
    )
    return (
        f"{node_source}\n{GRAPH_CODEC}\n\n{proxy}\n\n{body}\n\n\n"
        f"def check(candidate):\n    global {name}\n    {name} = _graph_proxy(candidate)\n{calls}"
    )


def graph_harness(name: str, node_source: str) -> str:
    """The candidate's side of a graph test: rebuild the nodes, call, send back result and links."""
    return (
        f"\n\n{node_source}\n{GRAPH_CODEC}\n\n"
        # the function is taken now: a test run in this same process (the forgeable in-process mode)
        # rebinds the name to its proxy
        f"_editlm_graph_target = {name}\n\n\n"
        f"def {GRAPH_ENTRY}(spec):\n"
        "    nodes = []\n"
        "    _graph_relink(nodes, spec['nodes'])\n"
        "    result = _editlm_graph_target(*_graph_decode(spec['args'], nodes))\n"
        "    encoded = _graph_encode(result, nodes)\n"
        "    return {'result': encoded, 'nodes': _graph_states(nodes)}\n"
    )


def load() -> tuple[list[Problem], dict[str, str]]:
    problems, left_out = [], {}
    for name in names():
        task_id = f"QuixBugs/{name}"
        buggy = text("quixbugs", f"python_programs/{name}.py")
        fixed = text("quixbugs", f"correct_python_programs/{name}.py")
        cases = files("quixbugs").get(f"json_testcases/{name}.json")
        test_source = text("quixbugs", f"python_testcases/test_{name}.py")
        graph = cases is None and uses_nodes(test_source)
        if cases is not None:
            test = json_check(name, cases.decode("utf-8"), test_source)
        else:
            test = pytest_check(name, test_source, text("quixbugs", "python_testcases/node.py"))
        problems.append(
            Problem(
                task_id=task_id,
                prompt=plain_prompt(buggy),
                test=test,
                entry_point=WRAPPER if name in GENERATORS else GRAPH_ENTRY if graph else name,
                source=buggy,
                filename=f"{name}.py",
                message=MESSAGE,
                instruction=f"Fix the bug in {name}.",
                edit_source=buggy,
                canonical=fixed,
                group=name,
                meta={"function": name, "graph": graph},
            )
        )
    return problems, left_out


class QuixBugs(ShippedBenchmark):
    name = "quixbugs"
    description = "QuixBugs (Python): 40 classic algorithms with one-line bugs"
    timeout = 10.0

    def load(self) -> tuple[list[Problem], dict[str, str]]:
        return load()

    def harness(self, problem: Problem) -> str:
        function = problem.meta["function"]
        if problem.meta.get("graph"):
            return graph_harness(function, text("quixbugs", "python_testcases/node.py"))
        if function in GENERATORS:
            return f"\n\ndef {WRAPPER}(*args):\n    return list({function}(*args))\n"
        return ""


register_benchmark("quixbugs", QuixBugs)
