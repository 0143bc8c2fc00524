"""LintSeq's invariants (lint-clean states, insertions only, exact reconstruction, determinism) and
its faithfulness to the reference's diff format."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editlm.data.lintseq.lint import lint_errors
from editlm.data.lintseq.sampler import (
    LintSeqError,
    apply_edit_sequence,
    block_of,
    candidate_lines,
    depth_weights,
    line_indents,
    normalize_program,
    sample_deletion_path,
    sample_edit_sequence,
    sample_random_edit_sequence,
    states_to_edits,
)
from editlm.edits.diff import parse_diff
from editlm.edits.edit_sequence import decode_edit_sequence, format_edit_sequence, parse_edit_sequence

# --------------------------------------------------------------------------- generated programs

NAMES = ["a", "b", "c", "d", "n"]


@st.composite
def _block(draw, defined: tuple, depth: int, in_loop: bool, in_func: bool) -> list[str]:
    """Statements (as lines, indented one level deeper by the caller) that are lint-clean given
    ``defined`` names; returns at least one line."""
    lines: list[str] = []
    known = list(defined)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                [
                    "assign",
                    "assign",
                    "call",
                    "multiline",
                    "if",
                    "for",
                    "def",
                    "comment",
                    "blank",
                    "return",
                    "string",
                    "backslash",
                    "match",
                ]
            )
        )
        name = draw(st.sampled_from(NAMES))
        use = draw(st.sampled_from(known)) if known else "1"
        if kind == "assign":
            lines.append(f"{name} = {use} + 1")
            known.append(name)
        elif kind == "call":
            lines.append(f"print({use})")
        elif kind == "multiline":
            lines += [f"{name} = max(", f"    {use},", "    2,", ")"]
            known.append(name)
        elif kind == "string":  # contents that read as code once the opening line is gone
            lines += [f'{name} = """', "* x", f"print({use})", '"""']
            known.append(name)
        elif kind == "backslash":  # a continuation; the blank line after it is part of it
            lines += [f"{name} = {use} \\", "", "print(1)"]
            known.append(name)
        elif kind == "match" and depth < 3:
            lines += [f"match {use}:", "    case 1:"]
            lines += ["        " + line for line in draw(_block(tuple(known), depth + 2, in_loop, in_func))]
            lines += ["    case _:", "        pass"]
        elif kind == "comment":
            lines.append("# note")
        elif kind == "blank":
            lines.append("")
        elif kind == "return" and in_func:
            lines.append(f"return {use}")
            break
        elif kind == "if" and depth < 3:
            lines.append(f"if {use}:")
            lines += ["    " + line for line in draw(_block(tuple(known), depth + 1, in_loop, in_func))]
            if draw(st.booleans()):
                lines.append("else:")
                lines += ["    " + line for line in draw(_block(tuple(known), depth + 1, in_loop, in_func))]
        elif kind == "for" and depth < 3:
            lines.append(f"for {name} in range(3):")
            body = draw(_block((*known, name), depth + 1, True, in_func))
            if in_loop or draw(st.booleans()):
                body.append("continue")
            lines += ["    " + line for line in body]
        elif kind == "def" and depth < 2:
            fname = draw(st.sampled_from(["f", "g", "h"]))
            if draw(st.booleans()):
                lines += ["@(lambda fn: fn)", "# decorated"]
            lines.append(f"def {fname}(x, y=2):")
            lines.append('    """Docstring."""')
            body = draw(_block((*known, "x", "y"), depth + 1, False, True))
            lines += ["    " + line for line in body]
            known.append(fname)
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        lines.append("pass")
    return lines


programs = _block((), 0, False, False).map(lambda lines: "\n".join(lines) + "\n")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIXED = '''import os
import re

PATTERN = re.compile(r"\\d+")
NAMES = [
    "a",
    "b",
]


def count(path):
    """Count numbers."""
    total = 0
    with open(path) as f:
        for line in f:
            total += len(PATTERN.findall(line))
    return total


class Foo:
    def __init__(self, x):
        self.x = x

    def bar(self):
        if self.x:
            return os.sep
        else:
            return NAMES
'''


def _states(edits: list[str]) -> list[str]:
    program, states = "", []
    for edit in edits:
        program = apply_edit_sequence([edit], program)
        states.append(program)
    return states


def _check_invariants(program: str, edits: list[str]) -> None:
    states = _states(edits)
    assert states[-1] == "".join(line + "\n" for line in normalize_program(program))
    for state in states[:-1]:
        assert lint_errors(state) == [], state
    for edit in edits:
        assert edit and not edit.endswith("\n")  # the reference's format: no trailing newline
        hunks = parse_diff(edit)
        assert hunks and all(op == "+" for hunk in hunks for op, _ in hunk.lines)


# --------------------------------------------------------------------------- invariants


@SETTINGS
@given(program=programs, seed=st.integers(0, 2**32))
def test_invariants_on_generated_programs(program, seed):
    if lint_errors(program):  # the generator aims for clean programs; the invariants assume them
        return
    edits = sample_edit_sequence(program, seed)
    _check_invariants(program, edits)
    assert sample_edit_sequence(program, seed) == edits


@pytest.mark.parametrize("seed", range(8))
def test_invariants_on_a_module_with_classes_and_globals(seed):
    _check_invariants(FIXED, sample_edit_sequence(FIXED, seed))


def test_seeds_give_different_sequences_and_the_same_seed_the_same():
    runs = {tuple(sample_edit_sequence(FIXED, seed)) for seed in range(10)}
    assert len(runs) > 5
    assert sample_edit_sequence(FIXED, 3) == sample_edit_sequence(FIXED, 3)


def test_training_text_round_trips_and_decodes():
    edits = sample_edit_sequence(FIXED, 1)
    text = format_edit_sequence("Count numbers.", edits)
    assert text.startswith("Count numbers.\n<|diff|>@@ -0,0 +")
    assert parse_edit_sequence(text) == ("Count numbers.", edits)
    program, errors = decode_edit_sequence(text.split("\n<|diff|>", 1)[1])
    assert errors == [] and program == FIXED


def test_original_lint_errors_are_deleted_first_and_added_last():
    program = "x = 1\nprint(undefined_name)\nprint(x)\n"
    edits = sample_edit_sequence(program, 0)
    states = _states(edits)
    assert states[-1] == program
    assert all(lint_errors(s) == [] for s in states[:-1])
    assert "undefined_name" in edits[-1]


# --------------------------------------------------------------------------- reference faithfulness


@SETTINGS
@given(program=programs, seed=st.integers(0, 2**16))
def test_diffs_match_the_reference_inflation(program, seed):
    """Given the same deletion path, the reference's ``inflate_edit_path`` writes the same diffs."""
    from pylintseq.utils import inflate_edit_path

    if lint_errors(program):
        return
    lines, states = sample_deletion_path(program, seed, linter=lint_errors)
    text = "\n".join(lines) + "\n"  # the program as the reference would split it (last line "")
    steps = [sorted(set(before) - set(after)) for before, after in zip(states, states[1:], strict=False)]
    _, reference = inflate_edit_path(text, steps)
    ours = states_to_edits(lines, states)
    if any(row.startswith("-") for diff in reference for row in diff.split("\n")):
        return  # difflib paired a repeated line with the wrong copy: we emit insertions instead
    assert ours == reference


def test_insertions_even_where_difflib_would_delete():
    # prev = [x, a, b, a] inside next = [a, b, a, x, a, b, c, a]: difflib's greedy longest match pairs
    # prev's "a b a" with next's first copy and deletes x; we know which lines were inserted.
    lines = ["a", "b", "a", "x", "a", "b", "c", "a"]
    edits = states_to_edits(lines, [tuple(range(8)), (3, 4, 5, 7)])
    assert len(edits) == 2
    assert apply_edit_sequence(edits) == "".join(line + "\n" for line in lines)
    assert all(row[0] in "@+" for edit in edits for row in edit.split("\n"))


def test_candidate_lines_follow_the_reference():
    lines = [
        "import os",
        "",
        "# comment",
        "NAMES = [",
        '    "a",',
        "]",
        "Y = 1",
        "def f():",
        "    # c",
        "    pass",
    ]
    assert candidate_lines(lines) == [0, 3, 6, 7, 9]


def test_blocks_and_depth_weights():
    lines = ["def f():", "    x = (", "        10", "    )", "", "    return x", "y = 2"]
    indents = line_indents(lines)
    assert indents == [0, 4, 8, 8, 8, 4, 0]  # ")" and "" belong to the block above
    assert block_of(0, indents) == [1, 2, 3, 4, 5]
    assert block_of(1, indents) == [2, 3, 4]
    assert block_of(6, indents) == []
    assert depth_weights(indents) == [1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0]


def test_normalize_program_drops_blank_ends_and_crlf():
    assert normalize_program("\n\n  \nx = 1\r\ny = 2\n\n  \n") == ["x = 1", "y = 2"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("program", "reason"),
    [
        ("def f(:\n", "syntax_error"),
        ("\n  \n", "empty"),
        ("# only a comment\n", "syntax_error"),
        (None, "not_text"),
    ],
)
def test_bad_programs_raise_typed_errors(program, reason):
    if program == "# only a comment\n":
        # A comment-only program is valid Python with nothing to pick: one edit writes it.
        assert sample_edit_sequence(program) == ["@@ -0,0 +1 @@\n+# only a comment"]
        return
    with pytest.raises(LintSeqError) as caught:
        sample_edit_sequence(program)
    assert caught.value.reason == reason


def test_time_limit_is_enforced():
    with pytest.raises(LintSeqError) as caught:
        sample_edit_sequence(FIXED * 3, time_limit=0.0)
    assert caught.value.reason == "timeout"


# --------------------------------------------------------------------------- random baseline


def test_random_baseline_inserts_only_and_skips_the_linter():
    program = "x = 1\ny = x + 1\nprint(y)\n"
    dirty = 0
    for seed in range(20):
        edits = sample_random_edit_sequence(program, seed)
        states = _states(edits)
        assert states[-1] == program
        assert all(op == "+" for e in edits for h in parse_diff(e) for op, _ in h.lines)
        dirty += any(lint_errors(s) for s in states)
    assert dirty > 0  # without the linter some intermediate states use undefined names


def test_a_repetitive_file_gives_the_reference_edits_quickly():
    """difflib as the reference runs it (autojunk on): each edit is the reference's ``get_diff`` of
    the same two states wherever that diff is insertion-only, on a file whose lines repeat hundreds
    of times (autojunk off made this take minutes and made some edits differ)."""
    from pylintseq.utils import get_diff

    block = ["def f{n}(x):", "    if x:", "        return x", "    return None", ""]
    lines = [line.format(n=n) for n in range(120) for line in block]
    program = "\n".join(lines).strip() + "\n"
    lines, states = sample_deletion_path(program, 5, linter=lint_errors)
    texts = ["\n".join(lines[i] for i in kept) for kept in reversed(states)]
    reference = [get_diff(a, b) for a, b in zip([""] + texts, texts, strict=False)]
    reference = [d for d in reference if d]
    ours = states_to_edits(lines, states)
    assert len(ours) == len(reference)
    same = [
        o == r for o, r in zip(ours, reference, strict=True) if not any(x[0] == "-" for x in r.split("\n"))
    ]
    assert len(same) > len(ours) // 2 and all(same)
    assert apply_edit_sequence(ours) == program
