"""LintSeq on real code nobody here wrote: programs from the installed packages' source.

Whole files and single definitions of 5 to 2,000+ lines from site-packages (many styles: strings
spanning lines, decorators, brackets, backslashes, ``match``), checked for the method's promises:
every intermediate state compiles and is pyflakes-clean, the edits rebuild the program exactly,
they only insert, the same seed gives the same sequence and the time limit is kept.
"""

import ast
import itertools
import warnings

import pyflakes.checker
import pytest

from editlm.data.lintseq import sampler
from editlm.data.lintseq.lint import ERROR_MESSAGES
from editlm.data.lintseq.real_code import bucket_name, real_programs
from editlm.data.lintseq.sampler import (
    LintSeqError,
    apply_edit_sequence,
    normalize_program,
    sample_deletion_path,
    sample_edit_sequence,
)
from editlm.data.lintseq.units import line_units, unit_spans
from editlm.edits.diff import parse_diff


@pytest.fixture(scope="module")
def real_rows():
    rows = real_programs(36, seed=19, max_lines=800)
    assert len({bucket_name(r["lines"]) for r in rows}) == 3  # 1-50, 51-200, 201-800
    assert {r["kind"] for r in rows} == {"file", "function"}
    return rows


def state_problems(state: str) -> list[str]:
    """Independent of editlm's linter: ``compile`` on the text and stock pyflakes' errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(state, "<state>", "exec", dont_inherit=True)
            tree = ast.parse(state)
    except SyntaxError as exc:
        return [f"compile: {exc}"]
    checker = pyflakes.checker.Checker(tree, filename="<state>")
    return [str(m) for m in checker.messages if isinstance(m, ERROR_MESSAGES)]


def check_sequence(program: str, edits: list[str]) -> None:
    state = ""
    for number, edit in enumerate(edits, 1):
        hunks = parse_diff(edit)
        assert hunks and all(op == "+" for hunk in hunks for op, _ in hunk.lines), edit
        state = apply_edit_sequence([edit], state)
        if number < len(edits):
            assert state_problems(state) == [], (number, state)
    assert state == "".join(line + "\n" for line in normalize_program(program))


def test_every_state_is_clean_and_the_program_rebuilt_on_real_code(real_rows):
    for row in real_rows:
        edits = sample_edit_sequence(row["program"], seed=row["lines"])
        check_sequence(row["program"], edits)


def test_same_seed_same_sequence_on_real_code(real_rows):
    for row in real_rows[::6]:
        assert sample_edit_sequence(row["program"], 3) == sample_edit_sequence(row["program"], 3)


def test_states_are_unions_of_whole_units_on_real_code(real_rows):
    """No line of a string, bracket, continuation or decorator run is ever kept or deleted alone."""
    for row in real_rows[1::3]:
        lines, states = sample_deletion_path(row["program"], 1, linter=sampler.make_linter())
        spans = unit_spans(line_units(lines))
        for kept in states:
            kept = set(kept)
            for span in spans:
                assert all(i in kept for i in span) or not any(i in kept for i in span), span


# The issue's two minimal cases and the other places a line-based sampler goes wrong.
TRICKY = {
    "backslash before a blank line": "x = 1\ny = 2 \\\n\nz = 3\n",
    "string contents that read as code": 'x = """\n"""\ny = """\n* x\n"""\n',
    "decorators with their def": (
        "import functools\n\n\n@functools.lru_cache(\n    maxsize=None,\n)\n# cached\n"
        "@staticmethod\ndef f(a,\n      b):\n    return a\n\n\nprint(f)\n"
    ),
    "brackets over lines": "values = [\n    1,\n    2,\n]\ntotal = sum(\n    values\n)\nprint(total)\n",
    "match blocks": (
        "def f(command):\n    match command.split():\n        case [name]:\n            return name\n"
        "        case [name, *rest]:\n            return rest\n        case _:\n            return None\n"
    ),
    "docstring at column 0": 'def f():\n    """Doc.\n\nreturn 1\n"""\n    return 2\n',
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_structures_a_line_sampler_breaks(name):
    program = TRICKY[name]
    for seed in range(25):
        check_sequence(program, sample_edit_sequence(program, seed))


def test_the_issues_first_case_keeps_the_blank_line_with_its_backslash():
    units = line_units(["x = 1", "y = 2 \\", "", "z = 3"])
    assert units == [0, 1, 1, 2]


def test_time_limit_is_kept_on_a_cpu_clock(monkeypatch, real_rows):
    """With a clock that advances one second per reading, a 3-second limit allows a few rounds,
    then the program is a ``timeout`` skip and no lint call runs after the deadline."""
    ticks = itertools.count()
    monkeypatch.setattr(sampler, "cpu_clock", lambda: float(next(ticks)))
    calls: list[int] = []
    real_lint = sampler.make_linter()

    def counting(text):
        calls.append(len(calls))
        return real_lint(text)

    monkeypatch.setattr(sampler, "make_linter", lambda *a, **k: counting)
    program = max((r["program"] for r in real_rows), key=len)
    with pytest.raises(LintSeqError) as caught:
        sample_edit_sequence(program, 0, time_limit=3.0)
    assert caught.value.reason == "timeout"
    assert 0 < len(calls) <= 3


def test_a_large_real_file_finishes_or_times_out_cleanly():
    rows = real_programs(5, seed=3, min_lines=2001, max_lines=6000)
    assert rows and rows[0]["lines"] > 2000
    try:
        edits = sample_edit_sequence(rows[0]["program"], 0, time_limit=2.0)
    except LintSeqError as exc:
        assert exc.reason == "timeout"
    else:
        check_sequence(rows[0]["program"], edits)
