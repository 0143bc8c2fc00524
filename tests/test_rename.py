"""Renamed copies of programs (editlm.data.bugs.rename), checked on real code nobody here wrote.

The promises: the renamed program means the same thing (same tree under the inverse mapping, no
new pyflakes messages, same behaviour when run), only local names change, and the result is
deterministic per seed.
"""

import ast
import random

import pyflakes.checker
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.data.bugs.job import BugJob, bug_rows
from editlm.data.bugs.rename import local_names, name_pool, rename_locals
from editlm.data.lintseq.real_code import real_programs


def flakes(source: str) -> list[str]:
    checker = pyflakes.checker.Checker(ast.parse(source), filename="<p>")
    return sorted(type(m).__name__ for m in checker.messages)


@pytest.fixture(scope="module")
def real_functions():
    rows = real_programs(120, seed=3, max_lines=200)
    return [r["program"] for r in rows]


def test_real_code_keeps_its_meaning(real_functions):
    rng = random.Random(0)
    pool = name_pool(real_functions)
    renamed_count = with_locals = 0
    for source in real_functions:
        tree = ast.parse(source)
        with_locals += any(
            local_names(node)
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        renamed = rename_locals(source, rng, pool)
        ast.parse(renamed)
        # pyflakes sees the same program: no name became undefined, unused or shadowed
        assert flakes(renamed) == flakes(source), source
        # only identifiers changed: the token stream outside names is the same
        assert len(renamed.splitlines()) == len(source.splitlines())
        renamed_count += renamed != source
    # every program with a top-level function that has locals gets new names (none refused by the check)
    assert with_locals > 20 and renamed_count == with_locals


def test_attributes_keywords_and_module_names_stay():
    source = (
        "import os\n"
        "LIMIT = 3\n"
        "def f(path, size=LIMIT):\n"
        '    """Uses path."""\n'
        "    total = os.path.join(path, sep=size)\n"
        "    obj.path = total  # path\n"
        "    return [total for _ in range(size)]\n"
    )
    out = rename_locals(source, random.Random(1))
    assert out != source
    assert "os.path.join(" in out and "sep=" in out and "obj.path =" in out and "LIMIT" in out
    assert '"""Uses path."""' in out and "# path" in out
    tree = ast.parse(out)
    args = [a.arg for a in tree.body[2].args.args]
    assert "path" not in args and "size" not in args


@pytest.mark.parametrize(
    "source",
    [
        "def f(x):\n    class A:\n        y = x\n    return A.y\n",  # a class body: names are attributes
        "def f(x):\n    return locals()['x']\n",
        "def f(x):\n    global y\n    y = x\n",
    ],
)
def test_unsafe_functions_are_left_alone(source):
    renamed = rename_locals(source, random.Random(0))
    ast.parse(renamed)
    if "class A" in source or "locals" in source:
        assert renamed == source
    else:
        assert "global y" in renamed and "y = " in renamed  # the declared name stays


def test_defaults_and_annotations_keep_the_module_names_they_read():
    # a default and an annotation are evaluated outside the function: ``x`` there is the module's
    source = "x = 1\nT = int\n\ndef f(y=x, z: T = 2):\n    x = y + z\n    T = x\n    return T\n"
    out = rename_locals(source, random.Random(4))
    assert out != source and "(y=x" not in out  # y itself is renamed
    head = out.splitlines()[3]
    assert "=x," in head and ": T = 2" in head
    space: dict = {}
    exec(compile(out, "<r>", "exec"), space)  # noqa: S102 - our own fixed program
    assert space["f"]() == 3 and space["f"](5, 1) == 6


def test_names_bound_as_strings_are_not_renamed():
    source = (
        "def f(items):\n"
        "    def helper(v):\n        return v\n"
        "    try:\n        err = helper(items)\n"
        "    except ValueError as err:\n        return err\n"
        "    import json as helper2\n"
        "    return helper2.dumps(err)\n"
    )
    out = rename_locals(source, random.Random(2))
    assert flakes(out) == flakes(source)
    assert "def helper(" in out and "as err" in out and "return err" in out


def test_behaviour_is_unchanged_for_positional_calls():
    # parameters are renamed too (4-Parity-like bugs rename them), so keyword calls from outside would change
    source = (
        "def mean_of(values, weights=None):\n"
        "    if weights is None:\n        weights = [1] * len(values)\n"
        "    total = sum(v * w for v, w in zip(values, weights))\n"
        "    return total / sum(weights)\n"
    )
    for seed in range(20):
        out = rename_locals(source, random.Random(seed))
        space: dict = {}
        exec(compile(out, "<r>", "exec"), space)  # noqa: S102 - our own fixed program
        assert space["mean_of"]([1, 2, 3]) == 2 and space["mean_of"]([1, 3], [3, 1]) == 1.5


@given(st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_deterministic_per_seed(seed):
    source = "def f(a, b):\n    c = a + b\n    for i in range(c):\n        a += i\n    return a\n"
    assert rename_locals(source, random.Random(seed)) == rename_locals(source, random.Random(seed))
    assert local_names(ast.parse(source).body[0]) == {"a", "b", "c", "i"}


def test_bug_rows_with_renamings_fix_renamed_programs(real_functions):
    job = BugJob(counts=(1, 2), per_count=1, renamings=3, context=0, decontaminate=False)
    programs = [s for s in real_functions if s.count("\n") < 40][:10]
    total = 0
    for key, source in enumerate(programs):
        rows, _reason = bug_rows(key, source, "m.py", job)
        afters = {r["after"] for r in rows}
        total += len(rows)
        # the fixed programs differ between copies (renamed), and each one is a renaming of the source
        for after in afters:
            assert flakes(after) == flakes(source.rstrip("\n")) or flakes(after) == flakes(source)
        assert len({r["id"] for r in rows}) == len(rows)
    assert total > 2 * len(programs) * 2  # more than one copy's worth of samples
