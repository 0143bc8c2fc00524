"""The incremental lint gives the whole-state lint's lines on every state, whatever came before it.

``incremental.lint_errors`` reuses trees, compile checks and function-body messages of unchanged
top-level statements across calls, so each check here runs states in sequence (the caches carry
over) and compares every answer with ``lint.lint_errors`` on the same text: on every state of real
programs' LintSeq paths, on random damage to real programs (deletions that break syntax, names,
blocks), and on hand-made pairs where a change in one segment must change another's messages.
"""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editlm.data.lintseq import incremental
from editlm.data.lintseq.lint import lint_errors, make_linter
from editlm.data.lintseq.real_code import real_programs
from editlm.data.lintseq.sampler import normalize_program, sample_deletion_path
from editlm.data.lintseq.units import line_units, unit_spans

pytestmark = pytest.mark.skipif(
    not incremental.ENABLED, reason="pyflakes is not the version this was written for"
)


@pytest.fixture(scope="module")
def real_rows():
    return real_programs(24, seed=23, max_lines=800)


def same_as_whole(states):
    """Lint the states in order with both linters; return the incremental linter's counts."""
    incremental._caches.clear()
    before = incremental.stats()
    for state in states:
        assert incremental.lint_errors(state) == lint_errors(state), state
    after = incremental.stats()
    return {key: after.get(key, 0) - before.get(key, 0) for key in after}


def test_the_default_linter_is_the_incremental_one():
    assert make_linter() is incremental.lint_errors
    assert make_linter(missing_imports=True) is not incremental.lint_errors


def test_every_state_of_real_lintseq_paths(real_rows):
    totals = {"states": 0, "skipped": 0, "whole": 0, "one_segment": 0}
    for seed, row in enumerate(real_rows):
        seen = []

        def both(text, seen=seen):
            seen.append(text)
            return lint_errors(text)

        sample_deletion_path(row["program"], seed, linter=both)
        counts = same_as_whole(seen)
        for key in totals:
            totals[key] += counts.get(key, 0)
    # the reuse is exercised, not bypassed: most states skip some function bodies
    assert totals["skipped"] > totals["states"]
    assert totals["whole"] - totals["one_segment"] < totals["states"] / 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_to_real_programs(real_rows, data):
    """Deletions a model's damage looks like: whole units (names go undefined, blocks go empty) or
    single physical lines (strings, brackets and continuations torn apart), several in a row."""
    row = data.draw(st.sampled_from(real_rows))
    lines = normalize_program(row["program"])
    spans = unit_spans(line_units(lines))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    kept = list(range(len(lines)))
    states = ["".join(line + "\n" for line in lines)]
    for _ in range(data.draw(st.integers(1, 12))):
        if not kept:
            break
        if rng.random() < 0.7:
            span = set(spans[rng.randrange(len(spans))])
            kept = [i for i in kept if i not in span]
        else:
            del kept[rng.randrange(len(kept))]
        states.append("".join(lines[i] + "\n" for i in kept))
    same_as_whole(states)


DEFS = "def f():\n    return helper(1)\n\n\ndef g():\n    x: int = 2\n    return x\n"


@pytest.mark.parametrize(
    "states",
    [
        # a function body's undefined name depends on a def in another segment
        ["def helper(x):\n    return x\n\n\n" + DEFS, DEFS, "def helper(x):\n    return x\n\n\n" + DEFS],
        # an annotation-only module binding does not define the name
        ["helper: int\n" + DEFS, "helper = 1\n" + DEFS, "helper: int\n" + DEFS],
        # Literal's strings are not annotations only when Literal is typing's
        [
            "from typing import Literal\n\n\ndef f():\n    x: Literal['a b'] = 1\n    return x\n",
            "from elsewhere import Literal\n\n\ndef f():\n    x: Literal['a b'] = 1\n    return x\n",
            "from typing import Literal\n\n\ndef f():\n    x: Literal['a b'] = 1\n    return x\n",
        ],
        # typing.cast's first argument is an annotation (here under another name)
        [
            "from typing import cast as c\n\n\ndef f(y):\n    return c('Missing', y)\n",
            "from os import cast as c\n\n\ndef f(y):\n    return c('Missing', y)\n",
            "import typing as c\n\n\ndef f(y):\n    return c.cast('Missing', y)\n",
            "import os as c\n\n\ndef f(y):\n    return c.cast('Missing', y)\n",
        ],
        # at module level too (the deferred string annotation is registered or not)
        [
            "from typing import cast\n\nx = cast('Missing', 1)\n\n\ndef f():\n    return x\n",
            "cast = print\n\nx = cast('Missing', 1)\n\n\ndef f():\n    return x\n",
        ],
        [
            "from typing import cast\n\nx = [cast('Missing', 1), lambda: 0]\n",
            "cast = print\n\nx = [cast('Missing', 1), lambda: 0]\n",
            "from typing import cast\n\nx = [cast('Missing', 1), lambda: 0]\n",
        ],
        # a star import turns undefined names into warnings
        ["from os import *\n\n\n" + DEFS, DEFS, "from os import *\n\n\n" + DEFS],
        # local variable referenced before assignment, with and without the module binding
        [
            "x = 1\n\n\ndef f():\n    print(x)\n    x = 2\n",
            "\n\ndef f():\n    print(x)\n    x = 2\n",
            "x = 1\n\n\ndef f():\n    print(x)\n    x = 2\n",
        ],
        # __all__ names defined (or not) elsewhere, and augmented
        [
            "__all__ = ['f', 'g']\n__all__ += ['helper']\n\n\n" + DEFS,
            "__all__ = ['f', 'g']\n\n\n" + DEFS,
            "__all__ = ['f', 'g']\n__all__ += ['helper']\n\n\ndef helper():\n    pass\n\n\n" + DEFS,
        ],
        # class bodies and decorators run at module level, in order
        [
            "import functools\n\n\n@functools.cache\ndef f():\n    pass\n\n\nclass A:\n    y = f\n",
            "@functools.cache\ndef f():\n    pass\n\n\nclass A:\n    y = f\n",
            "class A:\n    y = f\n\n\ndef f():\n    pass\n",
        ],
        # an unchanged def's module-level errors (a default, a decorator) are kept when it is replayed
        [
            "@missing_deco\ndef f(x=missing):\n    return x\n\n\ny = 1\n",
            "@missing_deco\ndef f(x=missing):\n    return x\n\n\ny = 2\n",
            "missing = 0\n\n\n@missing_deco\ndef f(x=missing):\n    return x\n\n\ny = 2\n",
            "from os import *\n\n\n@missing_deco\ndef f(x=missing):\n    return x\n\n\ny = 2\n",
        ],
        # the same segment twice in one state
        [
            "x = 1\nx = 1\n\n\ndef f():\n    return x\n",
            "x = 1\n\n\ndef f():\n    return x\n",
            "def f():\n    return x\n",
        ],
        # future annotations: which annotations are deferred, and what compiles
        [
            "from __future__ import annotations\n\n\ndef f(x: Later) -> Later:\n    return x\n\n\nclass Later:\n    pass\n",
            "def f(x: Later) -> Later:\n    return x\n\n\nclass Later:\n    pass\n",
            '"""doc"""\nfrom __future__ import annotations\n\n\ndef f(x: Later) -> Later:\n    return x\n',
            "x = 1\nfrom __future__ import annotations\n\n\ndef f():\n    return x\n",
            "from __future__ import annotations\n\n\ndef g():\n    def f(x: (yield)):\n        pass\n",
            "def g():\n    def f(x: (yield)):\n        pass\n",
        ],
        # postponed annotations may name an annotation-only binding
        [
            "from __future__ import annotations\nFoo: int\n\n\ndef f():\n    y: Foo = 1\n    return y\n",
            "Foo: int\n\n\ndef f():\n    y: Foo = 1\n    return y\n",
            "from __future__ import annotations\nFoo: int\n\n\ndef f():\n    y: Foo = 1\n    return y\n",
        ],
        # global and nonlocal (whole-state lint), also in a class body and in comments
        [
            "def f():\n    global y\n    y = 1\n\n\ndef g():\n    return y\n",
            "def g():\n    return y\n",
            "class A:\n    global y\n\n\ndef g():\n    return y\n",
            "# global y\ndef g():\n    return y\n",
        ],
        # a walrus in a string annotation binds a module name while function bodies are checked
        [
            "def f(x: '(y := int)'):\n    return y\n",
            "def f(x: 'int'):\n    return y\n",
            "def f(x: '(y := int)'):\n    return y\n",
        ],
        # ... and replaces an annotation-only one that a later function body reads
        [
            "x: int\n\n\ndef f(a: 'int'):\n    pass\n\n\ndef g():\n    return x\n",
            "x: int\n\n\ndef f(a: '(x := 1)'):\n    pass\n\n\ndef g():\n    return x\n",
        ],
        # lines at column 0 that do not start statements
        [
            'x = """\ndef not_code(:\n"""\n\n\ndef f():\n    return x\n',
            'x = """\ny = 1\n"""\nz = (\n1)\n\n\ndef f():\n    return x + z\n',
            "x = 1 + \\\n2\ntry:\n    pass\nexcept Exception:\n    pass\nelse:\n    pass\nfinally:\n    pass\n",
            "if True:\n    pass\nelif False:\n    pass\nelse:\n    undefined_name\n",
            "@property\n\ndef f():\n    pass\n",
        ],
        # syntax and compiler errors in one segment
        [
            "def f():\n    return 1\n\n\ndef g():\n    await f()\n",
            "def f():\n    return 1\n\n\ndef g(:\n    pass\n",
            "def f():\n    return 1\n\n\nelse:\n    pass\n",
            "def f():\n    return 1\n\n\nreturn 2\n",
            "def f():\n    return 1\n\n\ndef g():\n    nonlocal q\n",
            "def f():\n    return 1\n\n\nclass A:\n    return 3\n",
        ],
        # a carriage return inside a line: the parser counts lines differently
        ["x = 1\r y = 2\ndef f():\n    return y\n", "def f():\n    return y\n"],
    ],
)
def test_a_change_elsewhere_changes_what_must_change(states):
    same_as_whole(states)
    same_as_whole(states[::-1])


def test_an_unchanged_function_body_is_not_checked_again():
    base = "import os\n\n\ndef f():\n    return os.sep\n\n\ndef g():\n    return undefined_name\n"
    counts = same_as_whole([base, base.replace("import os", "import os\nimport sys")])
    assert counts["skipped"] == 2  # f and g the second time
    assert counts["whole"] == 0


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("x = 1\ny = 2\n", [0, 1]),
        ("@dec\n\n# c\ndef f():\n    pass\nz = 1\n", [0, 5]),
        ('s = """\nnot = a cut\n"""\nt = 1\n', [0, 3]),
        ("f(\n    1,\n)\ng = 2\n", [0, 3]),
        ("if a:\n    pass\nelse:\n    pass\nx = 1\n", [0, 4]),
        ("x = 1 + \\\n2\ny = 3\n", [0, 2]),
        ("# lead\n\nx = 1\n", [0]),
    ],
)
def test_segments_start_at_statements(text, starts):
    assert incremental.segment_starts(text.split("\n")[:-1]) == starts
