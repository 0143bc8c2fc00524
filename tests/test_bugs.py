"""Synthetic bug injectors: each class injects what it says, and every bug's fix restores the original."""

from __future__ import annotations

import ast
import inspect
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyflakes.api import check as pyflakes_check
from pyflakes.reporter import Reporter
from typer.testing import CliRunner

from editlm.data.bugs.inject import BUG_CLASSES, Bug, BugError, Program, check_bug, inject_bug, inject_bugs
from editlm.data.bugs.job import BugJob, bug_rows
from editlm.edits.diff import apply_diff, make_diff
from editlm.edits.diff_model import parse_diff_sample

PARITY = (
    "def parity(b1,b2,b3,b4):\n"
    '    """Return binary parity of a sequence of input bits. Return 0 for even parity, 1 for odd parity."""\n'
    "    bit_sum = sum([b1,b2,b3,b4])\n"
    "    return bit_sum % 2\n"
)


def all_bugs(source: str, kind: str, seeds: int = 60) -> set[str]:
    """Every distinct buggy program one class makes of ``source`` over many seeds."""
    program = Program(source)
    out = set()
    for seed in range(seeds):
        bug = program.inject(kind, random.Random(seed))
        assert bug is not None
        check_bug(bug)
        assert bug.kinds == (kind,)
        out.add(bug.buggy)
    return out


def changed_lines(a: str, b: str) -> list[str]:
    return [line for line in make_diff(a, b, context=0, headers=False).splitlines() if line[:1] in "+-"]


def undefined_names(source: str) -> list[str]:
    class Collect:
        def __init__(self):
            self.messages = []

        def flake(self, message):
            self.messages.append(str(message))

        def unexpectedError(self, *args):  # noqa: N802 - pyflakes' reporter API
            raise AssertionError(args)

        def syntaxError(self, *args):  # noqa: N802
            raise AssertionError(args)

    collect = Collect()
    reporter = Reporter(None, None)
    reporter.flake, reporter.unexpectedError, reporter.syntaxError = (
        collect.flake,
        collect.unexpectedError,
        collect.syntaxError,
    )
    pyflakes_check(source, "x.py", reporter)
    return [m for m in collect.messages if "undefined name" in m]


# ----------------------------------------------------------------------------- each class on its own example


def test_variable_misuse_uses_another_local_assigned_earlier():
    source = "def f(a, b):\n    c = a * 2\n    return c\n"
    expected = {
        "def f(a, b):\n    c = b * 2\n    return c\n",
        "def f(a, b):\n    c = a * 2\n    return a\n",
        "def f(a, b):\n    c = a * 2\n    return b\n",
    }
    assert all_bugs(source, "variable-misuse") == expected


def test_variable_misuse_never_uses_a_name_assigned_later_or_a_global():
    source = "G = 1\n\ndef f(a):\n    x = a + G\n    y = x\n    return y\n"
    lines = {changed_lines(source, b)[1][1:].strip() for b in all_bugs(source, "variable-misuse")}
    assert lines == {"y = a", "return a", "return x"}


def test_wrong_operator_stays_within_its_class():
    arithmetic = all_bugs("def f(x, y):\n    return x + y\n", "wrong-operator")
    assert {b.splitlines()[1].strip() for b in arithmetic} == {
        "return x - y",
        "return x * y",
        "return x / y",
        "return x // y",
        "return x % y",
    }
    comparison = all_bugs("def f(x, y):\n    return x<y\n", "wrong-operator", seeds=120)
    lines = {b.splitlines()[1].strip() for b in comparison}
    assert lines == {
        "return x==y",
        "return x!=y",
        "return x is y",  # word operators get the spaces they need
        "return x is not y",
        "return x<=y",
        "return x>y",
        "return x>=y",
        "return x in y",
        "return x not in y",
    }
    boolean = all_bugs("def f(x, y):\n    return x and y\n", "wrong-operator")
    assert boolean == {"def f(x, y):\n    return x or y\n"}


def test_argument_swap_exchanges_two_positional_arguments_only():
    source = "def f(a, b, c):\n    return g(a, b, key=c)\n"
    assert all_bugs(source, "argument-swap") == {"def f(a, b, c):\n    return g(b, a, key=c)\n"}
    three = all_bugs("def f(a, b, c):\n    return g(a, b, c)\n", "argument-swap")
    assert {b.splitlines()[1].strip() for b in three} == {
        "return g(b, a, c)",
        "return g(c, b, a)",
        "return g(a, c, b)",
    }
    assert (
        inject_bug("def f(a):\n    return g(a, a)\n", "argument-swap") is None
    )  # a swap that changes nothing


def test_undefined_name_is_undefined_and_4parity_style():
    bugs = all_bugs(PARITY, "undefined-name", seeds=200)
    assert PARITY.replace("[b1,", "[c1,") in bugs  # 4-Parity's first bug is among them
    for buggy in bugs:
        assert len(undefined_names(buggy)) == 1, buggy
    assert undefined_names(PARITY) == []


def test_wrong_constant_changes_one_integer_by_one():
    assert all_bugs(PARITY, "wrong-constant") == {PARITY.replace("% 2", "% 3"), PARITY.replace("% 2", "% 1")}
    assert all_bugs("X = 0\n", "wrong-constant") == {"X = 1\n"}  # never negative
    assert all_bugs("X = 0xFF\n", "wrong-constant") == {"X = 0x100\n", "X = 0xFE\n"}  # base kept


def test_off_by_one_in_comparisons_and_ranges():
    loop = "def f(n, xs):\n    for i in range(len(xs) - 1):\n        if i < n:\n            pass\n"
    lines = {changed_lines(loop, b)[1][1:].strip() for b in all_bugs(loop, "off-by-one")}
    assert lines == {"for i in range(len(xs)):", "for i in range(len(xs) - 1 - 1):", "if i <= n:"}
    start = all_bugs("def f(n):\n    return range(1, n)\n", "off-by-one")
    assert {b.splitlines()[1].strip() for b in start} == {
        "return range(2, n)",
        "return range(0, n)",
        "return range(1, n + 1)",
        "return range(1, n - 1)",
    }
    # a bound of low precedence gets parentheses rather than a different meaning
    shifted = all_bugs("def f(a, b):\n    return range(a if b else 3)\n", "off-by-one")
    assert "def f(a, b):\n    return range((a if b else 3) + 1)\n" in shifted


def test_no_site_is_said_not_faked():
    program = Program('x = "hello"\nprint(x)\n')
    assert program.kinds() == ["undefined-name", "value-misuse"]  # the string may be emptied
    none = ("variable-misuse", "wrong-operator", "argument-swap", "wrong-constant", "off-by-one")
    # statements are deleted or repeated only inside functions; print is no similar-function pair
    for kind in none + ("missing-logic", "excess-logic", "function-misuse"):
        assert program.inject(kind, random.Random(0)) is None


def test_only_wanted_classes_are_looked_for():
    program = Program(PARITY, ["wrong-constant", "wrong-operator"])
    assert program.kinds() == ["wrong-operator", "wrong-constant"]
    assert program.inject("undefined-name", random.Random(0)) is None
    assert Program(PARITY).kinds() == [
        "variable-misuse",
        "wrong-operator",
        "undefined-name",
        "wrong-constant",
        "missing-logic",  # a statement deleted
        "function-misuse",  # sum -> len or max
    ]


def test_bad_input_is_a_typed_error():
    with pytest.raises(BugError):
        Program("def f(:\n    pass\n")
    with pytest.raises(BugError):
        Program("x = 1\n").inject("typo", random.Random(0))


def test_formatting_and_comments_are_kept():
    source = "def f( a,b ):  # odd style\n    c=a+b   # sum\n\n\n    return c*2  # twice\n"
    program = Program(source)
    for kind in program.kinds():
        for seed in range(20):
            bug = program.inject(kind, random.Random(seed))
            changes = changed_lines(source, bug.buggy)
            if kind in ("missing-logic", "excess-logic") and len(changes) == 1:
                # a whole statement deleted or repeated: one line out or in, comment and all
                assert changes[0][1:].rstrip() in source.splitlines(), (kind, changes)
                continue
            assert len(changes) == 2, (kind, changes)  # exactly one line out, one line in
            assert changes[0].split("#")[1] == changes[1].split("#")[1]  # its comment untouched


def test_several_bugs_at_once_like_4parity():
    bug = inject_bugs(PARITY, 5, seed=3)
    check_bug(bug)
    assert len(bug.kinds) == 5 and len(bug.details) == 5
    assert bug.message().startswith("Fix ")
    assert inject_bugs("x = 1\n", 2) is None  # only one site: cannot place two bugs
    restricted = inject_bugs(PARITY, 4, seed=0, kinds=["undefined-name"])
    assert restricted.kinds == ("undefined-name",) * 4
    assert len(undefined_names(restricted.buggy)) == 4


def test_deterministic_per_seed():
    a = [inject_bugs(PARITY, 2, seed=s).buggy for s in range(5)]
    b = [inject_bugs(PARITY, 2, seed=s).buggy for s in range(5)]
    assert a == b and len(set(a)) > 1


# ----------------------------------------------------------------------------- properties on real code

_MODULES = ["textwrap", "heapq", "bisect", "colorsys", "fnmatch", "shlex"]
_PROGRAMS: dict[str, Program] = {}


def _program(name: str) -> Program:
    if name not in _PROGRAMS:
        _PROGRAMS[name] = Program(inspect.getsource(__import__(name)))
    return _PROGRAMS[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    module=st.sampled_from(_MODULES),
    kinds=st.lists(st.sampled_from(sorted(BUG_CLASSES)), min_size=1, max_size=3, unique=True),
    n=st.integers(1, 5),
    seed=st.integers(0, 10**6),
)
def test_every_bug_parses_differs_and_its_fix_restores_the_original(module, kinds, n, seed):
    program = _program(module)
    bug = program.inject_many(n, random.Random(seed), kinds)
    if bug is None:  # refused only for lack of (non-overlapping) sites
        assert n > 1 or not any(program.sites[k] for k in kinds)
        return
    ast.parse(bug.buggy)
    assert bug.buggy != bug.original
    assert apply_diff(bug.buggy, bug.fix) == bug.original
    assert set(bug.kinds) <= set(kinds) and len(bug.kinds) == n
    assert not bug.fix.startswith("---") and bug.fix.startswith("@@")


# ----------------------------------------------------------------------------- the job and the command


def test_bug_rows_are_diff_model_samples():
    job = BugJob(counts=(1, 2), per_count=2, seed=7, decontaminate=False)
    rows, reason = bug_rows("k", PARITY, "parity.py", job)
    assert reason is None and len(rows) == 4
    assert len({r["before"] for r in rows}) == 4  # distinct bugs
    for row in rows:
        sample = parse_diff_sample(row["text"])
        assert sample.name == "parity.py" and sample.before == row["before"]
        assert sample.message.startswith("Fix ")
        assert apply_diff(sample.before, sample.diff) == PARITY
        assert row["prompt"] + row["completion"] == row["text"]
        assert row["text"][row["loss_start"] :].startswith("<DFF> @@")
    assert bug_rows("k", PARITY, "parity.py", job) == (rows, None)  # deterministic


def test_bug_rows_skips_with_reasons():
    job = BugJob()
    assert bug_rows(1, PARITY, "p.py", job) == ([], "benchmark program (contamination)")
    assert bug_rows(1, "def f(:\n", "p.py", job)[1] == "not valid Python"
    assert bug_rows(1, "print(hi)\n", "p.py", job)[1] == "no bug site"
    assert bug_rows(1, None, "p.py", job)[1] == "empty or not text"
    assert bug_rows(1, "x = 1\n" * 10, "p.py", BugJob(max_chars=20))[1] == "too large"


def test_message_template():
    bug = Bug("x = 1\n", "x = 2\n", ("wrong-constant",), ("line 1",))
    assert bug.message() == "Fix wrong integer constant"
    assert bug.message("Fixed {n} bug(s): {bug_class}") == "Fixed 1 bug(s): wrong integer constant"


def test_bugs_command_streams_counts_skips_and_resumes(tmp_path):
    from editlm.cli import app

    source = tmp_path / "code.jsonl"
    programs = [inspect.getsource(__import__(m)) for m in ("colorsys", "bisect")]
    rows = [{"content": p, "path": f"m{i}.py"} for i, p in enumerate(programs)]
    rows += [{"content": PARITY, "path": "parity.py"}, {"content": "def (", "path": "bad.py"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "bugs.jsonl"
    args = ["bugs", str(source), "-o", str(out), "--name-column", "path", "--bugs", "1-2", "-w", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 4 and {r["name"] for r in written} == {"m0.py", "m1.py"}
    assert {r["n_bugs"] for r in written} == {1, 2}
    summary = json.loads((tmp_path / "bugs.jsonl.summary.json").read_text())
    assert summary["skipped"] == {"benchmark program (contamination)": 1, "not valid Python": 1}
    again = CliRunner().invoke(app, args)  # a rerun finds everything done and changes nothing
    assert again.exit_code == 0 and [json.loads(x) for x in out.read_text().splitlines()] == written
    other = CliRunner().invoke(app, [*args, "--seed", "1"])  # other settings would mix two datasets
    assert other.exit_code == 2 and "seed: 0 -> 1" in other.output
    assert [json.loads(x) for x in out.read_text().splitlines()] == written


def test_multiline_nodes_keep_their_layout():
    # libcst prints a node without its block's indentation; the splice must not lose it
    source = "class C:\n    def f(self, a, b):\n        if (a <=\n                b):\n            return (a\n                    + b)\n"
    flips = all_bugs(source, "off-by-one")
    assert flips == {source.replace("a <=", "a <")}
    ops = all_bugs(source, "wrong-operator", seeds=150)
    assert source.replace("+ b", "- b") in ops and source.replace("a <=", "a >") in ops
    for buggy in ops:
        assert len(changed_lines(source, buggy)) == 2  # one line changed, indentation intact


def test_bugs_command_renamed_copies_and_context(tmp_path):
    from editlm.cli import app

    source = tmp_path / "code.jsonl"
    program = "def scale(values, factor):\n    out = []\n    for v in values:\n        out.append(v * factor)\n    return out\n"
    source.write_text(json.dumps({"content": program}) + "\n")
    out = tmp_path / "bugs.jsonl"
    args = ["bugs", str(source), "-o", str(out), "--renamings", "3", "--context", "0", "-w", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    afters = {r["after"] for r in written}
    assert program in afters and len(afters) == 4  # the program and three renamed copies
    for row in written:
        assert apply_diff(row["before"], row["diff"]) == row["after"]
        assert not any(line.startswith(" ") for line in row["diff"].splitlines())  # no context lines
    bad = CliRunner().invoke(app, [*args[:-2], "--renamings", "-1", "--overwrite"])
    assert bad.exit_code == 2 and "--renamings" in bad.output
