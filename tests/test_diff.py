"""The diff core: round trips, tolerance to model damage, and typed errors on bad input."""

from __future__ import annotations

import random
import re
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from editlm.edits.diff import (
    DiffApplyError,
    DiffError,
    DiffParseError,
    apply_diff,
    apply_diff_report,
    apply_patch,
    make_diff,
    parse_diff,
    parse_patch,
    split_lines,
)
from editlm.edits.extract import extract_diff

# Lines drawn from a small alphabet so that diffs share lines and hunks interleave, plus the
# characters that break naive patchers: diff markers at line start, CR, tabs, backslashes.
LINE = st.text(alphabet="ab -+@\\\t\r#:", max_size=6)
PROGRAM = st.lists(LINE, max_size=25).map("\n".join) | st.lists(LINE, max_size=25).map(
    lambda lines: "".join(line + "\n" for line in lines)
)
CONTEXTS = st.sampled_from([0, 1, 3])


@settings(max_examples=1500, deadline=None)
@given(before=PROGRAM, after=PROGRAM, context=CONTEXTS, headers=st.booleans())
def test_round_trip_random_programs(before: str, after: str, context: int, headers: bool) -> None:
    diff = make_diff(before, after, context, headers=headers)
    if before == after:
        assert diff == ""
        return
    assert apply_diff(before, diff) == after


@settings(max_examples=300, deadline=None)
@given(before=PROGRAM, after=PROGRAM, context=CONTEXTS)
def test_diff_lines_match_difflib_format(before: str, after: str, context: int) -> None:
    """Same hunks and headers as difflib (what LintSeq's reference emits), plus the no-newline marker."""
    import difflib

    ours = make_diff(before, after, context, headers=False)
    theirs = "".join(
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(split_lines(before), split_lines(after), n=context)
    )
    theirs = "".join(split_lines(theirs)[2:]) if theirs else ""
    assert ours.replace("\\ No newline at end of file\n", "") == theirs


def _stdlib_files(count: int, seed: int) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in root.glob("*.py") if 2_000 < p.stat().st_size < 60_000)
    return [p.read_text(encoding="utf-8", errors="replace") for p in random.Random(seed).sample(paths, count)]


STDLIB = _stdlib_files(40, seed=7)


def _random_edit(text: str, rng: random.Random) -> str:
    """Delete, insert, replace and duplicate a few random line ranges."""
    lines = split_lines(text)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(lines) + 1)
        kind = rng.choice(["delete", "insert", "replace", "duplicate"])
        span = rng.randint(1, 5)
        if kind == "delete":
            del lines[at : at + span]
        elif kind == "insert":
            lines[at:at] = [f"    inserted_{rng.random()}\n" for _ in range(span)]
        elif kind == "replace":
            lines[at : at + span] = [f"replaced_{rng.random()}\n"]
        else:
            lines[at:at] = lines[at : at + span]
    return "".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(STDLIB) - 1), seed=st.integers(0, 2**32), context=CONTEXTS)
def test_round_trip_stdlib_files(index: int, seed: int, context: int) -> None:
    before = STDLIB[index]
    after = _random_edit(before, random.Random(seed))
    assume(after != before)
    assert apply_diff(before, make_diff(before, after, context)) == after


def _shift(diff: str, by: int) -> str:
    def move(match: re.Match) -> str:
        a, b, c, d = match.group(1, 2, 3, 4)
        a2 = max(1, int(a) + by)
        c2 = max(1, int(c) + by)
        return f"@@ -{a2}{b or ''} +{c2}{d or ''} @@"

    return re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@", move, diff, flags=re.M)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(STDLIB) - 1), seed=st.integers(0, 2**32), shift=st.integers(-50, 50))
def test_shifted_line_numbers_apply_or_refuse(index: int, seed: int, shift: int) -> None:
    """Model diffs get line numbers wrong: with context the right place is still found, or the
    patcher refuses; it never gives a wrong file when each hunk's lines occur once in the file."""
    rng = random.Random(seed)
    before = STDLIB[index]
    after = _random_edit(before, rng)
    assume(after != before)
    diff = make_diff(before, after, 3)
    shifted = _shift(diff, shift)
    unique = all(_occurrences(before, hunk.old_lines) == 1 for hunk in parse_diff(diff) if hunk.old_lines)
    try:
        result = apply_diff(before, shifted)
    except DiffApplyError:
        assert not unique, "a diff with unique context must be placed"
        return
    if unique:
        assert result == after


def _occurrences(text: str, block: list[str]) -> int:
    lines = split_lines(text)
    return sum(lines[i : i + len(block)] == block for i in range(len(lines) - len(block) + 1))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.integers(0, 10**6), min_size=1, max_size=30, unique=True),
    data=st.data(),
)
def test_shift_on_distinct_lines_always_applies(lines: list[int], data: st.DataObject) -> None:
    before = "".join(f"line {n}\n" for n in lines)
    edited = list(lines)
    at = data.draw(st.integers(0, len(edited) - 1))
    edited[at] = -1
    if data.draw(st.booleans()):
        del edited[data.draw(st.integers(0, len(edited) - 1))]
    after = "".join(f"line {n}\n" for n in edited)
    assume(after != before)
    shift = data.draw(st.integers(-50, 50))
    context = data.draw(st.sampled_from([1, 3]))
    assert apply_diff(before, _shift(make_diff(before, after, context), shift)) == after


def _damage(diff: str, rng: random.Random) -> str:
    """The damage models do: wrong or missing counts, no file headers, whitespace drift, CRLF."""
    out = []
    for row in split_lines(diff):
        if row.startswith(("--- ", "+++ ")) and rng.random() < 0.7:
            continue
        if row.startswith("@@"):
            choice = rng.random()
            if choice < 0.3:
                row = re.sub(r",\d+", lambda m: f",{int(m.group(0)[1:]) + rng.randint(-2, 3)}", row)
            elif choice < 0.5:
                row = "@@ @@\n"
            elif choice < 0.6:
                row = re.sub(r",\d+", "", row)
        elif row.startswith(" ") and rng.random() < 0.2:
            row = row.rstrip("\n") + "  \n"
        out.append(row)
    text = "".join(out)
    if rng.random() < 0.1:
        text = text.replace("\n", "\r\n")
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(STDLIB) - 1), seed=st.integers(0, 2**32))
def test_model_damage_applies_or_refuses(index: int, seed: int) -> None:
    rng = random.Random(seed)
    before = STDLIB[index]
    after = _random_edit(before, rng)
    assume(after != before)
    diff = make_diff(before, after, 3)
    unique = all(_occurrences(before, h.old_lines) == 1 for h in parse_diff(diff) if h.old_lines)
    assume(unique)
    damaged = _damage(diff, rng)
    try:
        result = apply_diff(before, damaged)
    except DiffError:
        return  # refusing is allowed; a wrong answer is not
    # Whitespace drift in context is forgiven, and context comes from the file, so the result is exact.
    assert result == after or result.replace("\r\n", "\n") == after


@settings(max_examples=1000, deadline=None)
@given(before=PROGRAM, after=PROGRAM, data=st.data())
def test_random_corruption_raises_diff_error_only(before: str, after: str, data: st.DataObject) -> None:
    diff = make_diff(before, after, data.draw(CONTEXTS))
    assume(diff)
    chars = list(diff)
    for _ in range(data.draw(st.integers(1, 5))):
        pos = data.draw(st.integers(0, len(chars) - 1))
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        char = data.draw(st.sampled_from(list("@-+ \n\\,0123456789abx\x00")))
        if op == "delete":
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, char)
        else:
            chars[pos] = char
        if not chars:
            break
    try:
        apply_diff(before, "".join(chars))
    except DiffError:
        pass


@pytest.mark.parametrize(
    ("diff", "error"),
    [
        ("just some prose\n", DiffParseError),
        ("--- a\n+++ b\n", DiffParseError),
        ("@@ -1,1 +1,1 @@\n-nothing like this\n+x\n", DiffApplyError),
        ("@@ -1 +1 @@\n def g():\n", DiffApplyError),  # a no-op hunk is still checked
        ("@@ -1,2 +1,3 @@\n def f():\n+    x = 0\n", DiffParseError),  # cut off
        ("@@ -99,0 +100 @@\n+appended\n", DiffApplyError),  # never appended at the end
        ("@@ @@\n+floating insertion\n", DiffApplyError),  # never inserted at the top
        ("@@ -1,1 +1,1 @@\n-def f():\ngarbage line without prefix\n+x\n", DiffParseError),
        ("Binary files a/x and b/x differ\n", DiffParseError),
        ("@@ -1,1 +1,1 @@\n\x00\x01\x02", DiffParseError),
        (b"\xff\xfe\x00@@", DiffParseError),
        ("--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b\n--- c\n+++ d\n@@ -1 +1 @@\n-a\n+b\n", DiffParseError),
        (
            "@@ -1,2 +1,2 @@\n-    return 1\n+    return 2\n@@ -1,1 +1,1 @@\n-def f():\n+def g():\n",
            DiffApplyError,
        ),
    ],
)
def test_bad_diffs_raise_typed_errors(diff, error) -> None:
    source = "def f():\n    return 1\n"
    with pytest.raises(error) as info:
        apply_diff(source, diff)
    assert str(info.value)


def test_error_names_hunk_and_line() -> None:
    source = "a\nb\nc\n"
    diff = "@@ -1 +1 @@\n-a\n+A\n@@ -3 +3 @@\n-zzz\n+Z\n"
    with pytest.raises(DiffApplyError, match=r"hunk 2 \(@@ -3,1 \+3,1 @@\).*'zzz'"):
        apply_diff(source, diff)
    with pytest.raises(DiffParseError, match=r"hunk 1, line 3"):
        apply_diff(source, "@@ -1 +1 @@\n-a\nnot a diff line\n+b\n")


def test_ambiguous_hunk_without_line_numbers_refuses() -> None:
    source = "x = 1\ny = 2\nx = 1\ny = 2\n"
    with pytest.raises(DiffApplyError, match="occur 2 times"):
        apply_diff(source, "@@ @@\n x = 1\n-y = 2\n+y = 3\n")


def test_equidistant_candidates_refuse() -> None:
    source = "x\nfill\nfill\ny\nfill\nfill\nx\n"
    # stated at line 4 ('y'), but the hunk's line 'x' is at 1 and 7: equally far, so no guess.
    with pytest.raises(DiffApplyError, match="equally"):
        apply_diff(source, "@@ -4 +4 @@\n-x\n+X\n")


def test_nearest_candidate_wins_for_shifted_numbers() -> None:
    source = "".join(f"{'dup' if i % 10 == 0 else i}\n" for i in range(40))
    # 'dup' at lines 1, 11, 21, 31; the hunk says line 23: line 21 is nearest.
    result = apply_diff(source, "@@ -23 +23 @@\n-dup\n+DUP\n")
    assert split_lines(result)[20] == "DUP\n"
    assert result.count("dup") == 3


def test_deletions_are_real_deletions() -> None:
    """The LintSeq reference decoder inserts '-' lines as text; here they delete."""
    assert apply_diff("a\nb\nc\n", "@@ -2 +1,0 @@\n-b\n") == "a\nc\n"


def test_whitespace_drift_and_crlf_keep_file_style() -> None:
    source = "def f():\r\n    x = 1\r\n    return x\r\n"
    diff = "@@ -1,3 +1,3 @@\n def f():\n-    x = 1  \n+    x = 2\n     return x\n"
    assert apply_diff(source, diff) == "def f():\r\n    x = 2\r\n    return x\r\n"


def test_missing_no_newline_marker_is_forgiven() -> None:
    source = "a\nb"
    assert apply_diff(source, "@@ -1,2 +1,2 @@\n a\n-b\n+c\n") == "a\nc\n"


def test_git_preamble_and_section_headers() -> None:
    diff = (
        "diff --git a/x.py b/x.py\nindex 83db48f..bf269f4 100644\n--- a/x.py\n+++ b/x.py\n"
        "@@ -1,2 +1,2 @@ def f():\n def f():\n-    return 1\n+    return 2\n"
    )
    hunks = parse_diff(diff)
    assert hunks[0].section == "def f():"
    assert apply_diff("def f():\n    return 1\n", diff) == "def f():\n    return 2\n"


def test_no_newline_at_end_round_trip() -> None:
    for before, after in [("a", "b"), ("a\n", "a"), ("a", "a\n"), ("", "x"), ("x", "")]:
        diff = make_diff(before, after)
        assert apply_diff(before, diff) == after
    assert "\\ No newline at end of file" in make_diff("a", "b")


def test_lintseq_style_diffs_have_no_headers_and_no_context() -> None:
    diff = make_diff("", "def f():\n    pass\n", context=0, headers=False)
    assert diff == "@@ -0,0 +1,2 @@\n+def f():\n+    pass\n"


# --------------------------------------------------------------------------- the reading contract
# (issue 11: a cut hunk raises, text after a counted hunk is kept aside, model wrappers are stripped)

FILE = "def f(x):\n    a = 1\n    b = 2\n    return a + b\n"


def test_truncated_final_hunk_raises_naming_the_hunk() -> None:
    diff = "@@ -1,4 +1,5 @@\n def f(x):\n-    a = 1\n-    b = 2\n"
    with pytest.raises(DiffParseError, match=r"hunk 1 \(@@ -1,4 \+1,5 @@\) is cut off"):
        apply_diff(FILE, diff)
    two = "@@ -1 +1 @@\n-def f(x):\n+def g(x):\n@@ -3,2 +3,2 @@\n-    b = 2\n"
    with pytest.raises(DiffParseError, match=r"hunk 2 .* cut off"):
        apply_diff(FILE, two)


def test_every_cut_inside_the_last_hunk_raises() -> None:
    for seed, context in [(3, 0), (3, 3), (5, 0), (5, 3)]:
        before = STDLIB[seed]
        after = _random_edit(before, random.Random(seed))
        diff = make_diff(before, after, context)
        body = diff.index("\n", diff.rindex("\n@@") + 1) + 1
        refused = 0
        for cut in range(body, len(diff)):
            try:
                result = apply_diff(before, diff[:cut], require_newline=True)
            except DiffError:
                refused += 1
                continue
            assert result == after, f"cut at {cut} of {len(diff)}"  # only the final newline was cut
        assert apply_diff(before, diff, require_newline=True) == after


def test_lintseq_edits_end_without_a_newline() -> None:
    """LintSeq's reference joins rows with "\n", so its edits end in a bare '+' row: accepted by
    default, refused with require_newline (the one cut that the counts cannot see)."""
    edit = "@@ -0,0 +1,2 @@\n+a = 1\n+b = 2"
    assert apply_diff("", edit) == "a = 1\nb = 2\n"
    with pytest.raises(DiffParseError, match="no line ending"):
        apply_diff("", edit, require_newline=True)
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff("", edit[: edit.rindex("\n")])


def test_text_after_a_counted_hunk_is_kept_aside() -> None:
    good = "@@ -1,2 +1,2 @@\n def f(x):\n-    a = 1\n+    a = 3\n"
    expected = FILE.replace("a = 1", "a = 3")
    for junk in ("- Fixed the bug\n", " and kept this\n", "\nHope this helps!\n", "\n+ also\n"):
        report = apply_diff_report(FILE, good + junk)
        assert report.text == expected
        assert report.trailing.strip() == junk.strip()
    # a '+' row right after the counted body: more of the hunk, or prose? Never inserted.
    with pytest.raises(DiffApplyError, match="'\\+' line follows its counted body"):
        apply_diff(FILE, good + "+ I also cleaned up\n")
    assert parse_diff(good + "+ prose\n")[0].trailing == ("+ prose",)


def test_counted_hunk_followed_by_lines_that_continue_it_refuses() -> None:
    too_small = "@@ -1,2 +1,2 @@\n def f(x):\n-    a = 1\n+    a = 3\n-    b = 2\n+    b = 4\n"
    with pytest.raises(DiffApplyError, match="continue it in the file"):
        apply_diff(FILE, too_small)


def test_counted_body_of_context_only_followed_by_changes_refuses() -> None:
    # counts (1, 1) met by one context row, the hunk's change after them: no diff tool writes a hunk
    # that changes nothing, so its end is not settled and the '+' row is not prose (found by fuzzing:
    # the insertion was dropped and the file came out unchanged there)
    short = "@@ -2,1 +2,1 @@\n     a = 1\n+    c = 0\n \n"
    with pytest.raises(DiffApplyError, match="'\\+' line follows its counted body"):
        apply_diff(FILE, short)
    with pytest.raises(DiffApplyError):
        apply_diff(FILE, "@@ -2,1 +2,1 @@\n     a = 1\n+    c = 0\n")


def test_diff_cut_inside_its_last_minus_row_matches_only_exactly() -> None:
    # "-    b = 2" cut to "-      ": tolerant matching took it for the blank line above (found by
    # fuzzing git's diffs); only the file's very line may match a row the diff may have been cut in
    spaced = "def f(x):\n    a = 1\n\n    b = 2\n    return a + b\n"
    for require_newline in (True, False):
        with pytest.raises(DiffError):
            apply_diff(spaced, "@@ -4 +3,0 @@\n-      ", require_newline=require_newline)
        whole = apply_diff(spaced, "@@ -4 +3,0 @@\n-    b = 2", require_newline=require_newline)
        assert whole == spaced.replace("    b = 2\n", "")
    # with its line ending the row is whole: tolerant matching stays (trailing blanks ignored)
    assert apply_diff(spaced, "@@ -4 +3,0 @@\n-    b = 2  \n") == spaced.replace("    b = 2\n", "")


def test_dropped_zero_count_is_read_by_both_starts() -> None:
    # "@@ -2 +3 @@" with one '+' line: an insertion after line 2 (the new line is line 3).
    assert split_lines(apply_diff(FILE, "@@ -2 +3 @@\n+    c = 0\n"))[2] == "    c = 0\n"
    assert apply_diff(FILE, "@@ -2 +1 @@\n-    a = 1\n") == FILE.replace("    a = 1\n", "")
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(FILE, "@@ -2 +2 @@\n-    a = 1\n")  # a one-line change cut after its '-' line


def test_none_and_non_text_raise_diff_error() -> None:
    for bad in (None, 3, ["@@"]):
        with pytest.raises(DiffError):
            apply_diff(FILE, bad)


def test_identity() -> None:
    for text in ("", "x", "a\nb\n", FILE, STDLIB[1]):
        assert make_diff(text, text) == ""
        assert apply_diff(text, make_diff(text, text)) == text
        assert apply_diff(text, "  \n") == text


def test_no_op_hunks_and_hunkless_diffs_are_valid() -> None:
    assert apply_diff(FILE, "@@ -1 +1 @@\n def f(x):\n") == FILE
    rename = "diff --git a/x.py b/y.py\nsimilarity index 100%\nrename from x.py\nrename to y.py\n"
    assert apply_diff(FILE, rename) == FILE
    mode = "diff --git a/x.py b/x.py\nold mode 100644\nnew mode 100755\n"
    assert apply_diff(FILE, mode) == FILE
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(FILE, "diff --git a/x.py b/x.py\n")
    assert apply_diff(FILE, "@@ -0,2 +0,2 @@\n def f(x):\n-    a = 1\n+    a = 0\n") == FILE.replace(
        "a = 1", "a = 0"
    )


CHANGE = "--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n def f(x):\n-    a = 1\n+    a = 7\n     b = 2\n"
CHANGED = FILE.replace("a = 1", "a = 7")


@pytest.mark.parametrize(
    "wrapped",
    [
        f"```diff\n{CHANGE}```\n",
        f"Here is the fix:\n\n```diff\n{CHANGE}```\n\nThis sets a to 7. Let me know!\n",
        f"~~~patch\n{CHANGE}~~~",
        f"I changed one line.\n{CHANGE}\nThat is all.\n",
        f"diff --git a/f.py b/f.py\nindex 83db48f..bf269f4 100644\n{CHANGE}",
        "Index: f.py\n" + "=" * 67 + "\n--- f.py\t(revision 12)\n+++ f.py\t(working copy)\n" + CHANGE[22:],
        "diff -r 9a8b7c6d5e4f f.py\n--- a/f.py\tThu Jan 01 00:00:00 1970 +0000\n+++ b/f.py\tThu Jan 01 00:00:00 1970 +0000\n"
        + CHANGE[22:],
        "diff -u f.py.orig f.py\n--- f.py.orig\t2024-05-01 10:00:00.000000000 +0200\n+++ f.py\t2024-05-01 10:01:00.000000000 +0200\n"
        + CHANGE[22:],
        "Index: f.py\n"
        + "=" * 67
        + "\nRCS file: /cvs/f.py,v\nretrieving revision 1.1\ndiff -u -r1.1 f.py\n"
        + CHANGE,
        "# HG changeset patch\n# User someone\n# Parent  0123\nfix\n\ndiff -r 0123 -r 4567 f.py\n" + CHANGE,
        "From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] fix\n\n---\n f.py | 2 +-\n\n"
        f"diff --git a/f.py b/f.py\n{CHANGE}-- \n2.43.0\n",
        CHANGE.replace("\n", "\r\n"),
    ],
)
def test_model_wrappers_and_tool_headers_are_read(wrapped: str) -> None:
    assert apply_diff(FILE, wrapped) == CHANGED
    assert extract_diff(extract_diff(wrapped)) == extract_diff(wrapped)


def test_cut_inside_a_fence_still_raises() -> None:
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(FILE, "Sure:\n```diff\n" + CHANGE[: CHANGE.rindex("+")])


def test_diff_model_extract_goes_through_the_one_extractor() -> None:
    from editlm.edits.diff_model import extract_diff as sample_extract

    assert apply_diff(FILE, sample_extract(f" ```diff\n{CHANGE}```\nDone.<|endoftext|>junk")) == CHANGED


# --------------------------------------------------------------------------- placement


def _numbered(n: int, repeat: dict[int, str] | None = None) -> str:
    repeat = repeat or {}
    return "".join(f"{repeat.get(i, f'line {i}')}\n" for i in range(1, n + 1))


def test_learned_offset_applies_to_the_exact_check() -> None:
    # 'dup' at lines 15 and 25; the file has 10 extra lines at the top that the diff does not know.
    source = _numbered(40, {15: "dup", 25: "dup"})
    diff = "@@ -2 +2 @@\n-line 12\n+LINE 12\n@@ -15 +15 @@\n-dup\n+DUP\n"
    report = apply_diff_report(source, diff)
    lines = split_lines(report.text)
    assert lines[11] == "LINE 12\n" and lines[24] == "DUP\n" and lines[14] == "dup\n"
    assert [p.how for p in report.placements] == ["shifted", "shifted"]
    assert [p.offset for p in report.placements] == [10, 10]
    assert "shifted by +10 lines, at line 12" in str(report.placements[0])


@pytest.mark.parametrize(
    "diff",
    [
        "@@ -30 +30 @@\n-line 30\n+X\n@@ -11 +11 @@\n-line 10\n+Y\n",  # out of order, not exact
        "@@ -10 +10 @@\n-line 10\n+Y\n@@ -10 +10 @@\n-line 10\n+Z\n",  # the same lines twice
        "@@ -10,0 +11 @@\n+new\n@@ -10,0 +12 @@\n+new\n",  # a pure insertion twice
        "@@ -9,3 +9,3 @@\n line 9\n-line 10\n+Y\n line 11\n@@ -11,2 +11,2 @@\n line 11\n-line 12\n+Z\n",  # overlap
    ],
)
def test_out_of_order_duplicated_or_overlapping_hunks_raise(diff: str) -> None:
    with pytest.raises(DiffApplyError, match="out of order or repeated"):
        apply_diff(_numbered(40), diff)


def test_repeats_apply_once_and_exact_hunks_in_any_order() -> None:
    source = _numbered(40)
    after = source.replace("line 7\n", "seven\n").replace("line 30\n", "thirty\n")
    assert apply_diff(source, make_diff(source, after) * 2) == after  # with file headers
    diff = make_diff(source, after, headers=False)
    report = apply_diff_report(source, diff + diff)  # the whole diff twice, word for word
    assert report.text == after
    assert [p.how for p in report.placements] == ["exact", "exact", "duplicate", "duplicate"]
    assert "a repeat of hunk 1, skipped" in str(report.placements[2])
    first, second = diff[diff.index("@@") :].split("\n@@")
    swapped = "@@" + second + "\n" + first + "\n"
    report = apply_diff_report(source, swapped)
    assert report.text == after
    assert [p.note for p in report.placements] == ["reordered", "reordered"]
    assert report.placements[0].line > report.placements[1].line  # in diff order, applied in line order


def test_nearest_match_needs_a_clear_margin() -> None:
    source = _numbered(40, {10: "dup", 19: "dup"})
    # stated at 14: 'dup' at 10 is 4 away, at 19 is 5 away: no clear winner.
    with pytest.raises(DiffApplyError, match="about equally well") as info:
        apply_diff(source, "@@ -14 +14 @@\n-dup\n+DUP\n")
    assert info.value.hunk == 1 and info.value.closest == (10, 10)
    # stated at 11: 1 away against 8 away: clear.
    assert split_lines(apply_diff(source, "@@ -11 +11 @@\n-dup\n+DUP\n"))[9] == "DUP\n"


def test_plus_lines_keep_their_line_endings() -> None:
    # A commit converting CRLF to LF, with whitespace drift in its context (tolerant placement).
    source = "a\r\nb\r\nc\r\n"
    diff = "@@ -1,3 +1,3 @@\n a  \r\n-b\r\n+b\n c\r\n"
    report = apply_diff_report(source, diff)
    assert report.text == "a\r\nb\nc\r\n"
    assert report.placements[0].how == "whitespace"
    # An LF copy of a diff for a CRLF file: the diff lost its endings, so the file's are kept.
    assert apply_diff(source, "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n") == "a\r\nB\r\nc\r\n"


def test_dev_null_creates_only_new_files() -> None:
    diff = "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n"
    assert apply_diff("", diff) == "x = 1\ny = 2\n"
    with pytest.raises(DiffApplyError, match="/dev/null"):
        apply_diff(FILE, diff)
    deleted = "--- a/f.py\n+++ /dev/null\n@@ -1,4 +0,0 @@\n" + "".join("-" + r for r in split_lines(FILE))
    assert apply_diff(FILE, deleted) == ""


def test_failure_names_the_closest_region() -> None:
    diff = "@@ -1,4 +1,4 @@\n def f(x):\n     a = 1\n-    b = 3\n+    b = 4\n     return a + b\n"
    with pytest.raises(DiffApplyError, match=r"closest: lines 1-4 \(3 of 4 lines alike\)") as info:
        apply_diff(FILE, diff)
    assert info.value.closest == (1, 4)


def test_pure_insertion_is_reported_as_unverified() -> None:
    report = apply_diff_report(FILE, "@@ -4,0 +5 @@\n+# end\n")
    assert report.text == FILE + "# end\n"
    assert report.placements[0].how == "line-number"
    assert "cannot be checked" in str(report.placements[0])
    # after a hunk found 10 lines away, an insertion's own line number is not trusted
    source = "\n" * 10 + FILE
    with pytest.raises(DiffApplyError, match="cannot be trusted"):
        apply_diff(source, "@@ -1,2 +1,2 @@\n def f(x):\n-    a = 1\n+    a = 2\n@@ -4,0 +5 @@\n+# end\n")


# --------------------------------------------------------------------------- multi-file patches

MULTI = (
    "diff --git a/pkg/a.py b/pkg/a.py\nindex 1111111..2222222 100644\n--- a/pkg/a.py\n+++ b/pkg/a.py\n"
    "@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    "diff --git a/pkg/b.py b/pkg/b.py\nindex 3333333..4444444 100644\n--- a/pkg/b.py\n+++ b/pkg/b.py\n"
    "@@ -1 +1 @@\n-a = 1\n+b = 1\n"
    "diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n"
    "index 5555555..6666666 100644\n--- a/old.py\n+++ b/new.py\n@@ -1,2 +1,2 @@\n keep\n-x\n+y\n"
    "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\nindex 7777777..0000000\n--- a/gone.py\n"
    "+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    "diff --git a/added.py b/added.py\nnew file mode 100644\nindex 0000000..8888888\n--- /dev/null\n"
    "+++ b/added.py\n@@ -0,0 +1 @@\n+hello\n"
    "diff --git a/tool.sh b/tool.sh\nold mode 100644\nnew mode 100755\n"
    "diff --git a/empty.txt b/empty.txt\nnew file mode 100644\nindex 0000000..e69de29\n"
    "diff --git a/pkg/c.py b/pkg/c.py\nindex 1111111..2222222 100644\n--- a/pkg/c.py\n+++ b/pkg/c.py\n"
    "@@ -1 +1 @@\n-c = 1\n+c = 2\n"
)
FILES = {
    "pkg/a.py": "a = 1\n",
    "pkg/b.py": "a = 1\n",
    "pkg/c.py": "c = 1\n",
    "old.py": "keep\nx\n",
    "gone.py": "bye\n",
    "tool.sh": "ls\n",
}


def test_apply_patch_over_a_file_set() -> None:
    result = apply_patch(FILES, MULTI)
    assert result == {
        "pkg/a.py": "a = 2\n",
        "pkg/b.py": "b = 1\n",
        "old.py": None,
        "new.py": "keep\ny\n",
        "gone.py": None,
        "added.py": "hello\n",
        "tool.sh": "ls\n",
        "empty.txt": "",
        "pkg/c.py": "c = 2\n",
    }
    assert FILES["pkg/a.py"] == "a = 1\n"  # the input is not changed


def test_apply_diff_refuses_a_multi_file_diff_by_name() -> None:
    with pytest.raises(DiffParseError, match=r"touches 8 files \(pkg/a.py, pkg/b.py, new.py"):
        apply_diff("a = 1\n", MULTI)
    # svn's Index: and git's diff --git are file boundaries even without ---/+++ pairs in between
    svn = "Index: a\n====\n--- a\n+++ a\n@@ -1 +1 @@\n-a = 1\n+a = 2\nIndex: b\n====\n@@ -1 +1 @@\n-a = 1\n+a = 3\n"
    assert len(parse_patch(svn)) == 2
    with pytest.raises(DiffParseError, match="touches 2 files"):
        apply_diff("a = 1\n", svn)


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({**FILES, "added.py": "exists\n"}, "already exists"),
        ({k: v for k, v in FILES.items() if k != "pkg/b.py"}, "not in the file set"),
        ({**FILES, "gone.py": "bye\nmore\n"}, "leave text"),
    ],
)
def test_apply_patch_refuses_what_does_not_fit(files, error) -> None:
    with pytest.raises(DiffApplyError, match=error):
        apply_patch(files, MULTI)


def test_apply_patch_refuses_a_file_touched_twice() -> None:
    part = MULTI[: MULTI.index("diff --git a/pkg/b.py")]
    assert apply_patch(FILES, part + part)["pkg/a.py"] == "a = 2\n"  # repeated word for word: once
    with pytest.raises(DiffApplyError, match="twice"):
        apply_patch(FILES, part + part.replace("+a = 2", "+a = 3"))


def test_a_cut_inside_trailing_context_is_accepted_only_when_symmetry_settles_it() -> None:
    source = _numbered(30)
    after = source.replace("line 15\n", "fifteen\n")
    diff = make_diff(source, after)  # context 3 on both sides, lines 12-18
    for cut in (" line 18\n", " line 17\n line 18\n", " line 18\n"[:5]):
        report = apply_diff_report(source, diff[: len(diff) - len(cut)] if cut.endswith("\n") else diff[:-5])
        assert report.text == after
        assert "cut off" in report.placements[0].note
    # at the end of the file the trailing context is clipped: the cut rows could have been changes
    tail = _numbered(16)
    diff = make_diff(tail, tail.replace("line 15\n", "fifteen\n"))
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(tail, diff[: -len(" line 16\n")])
    # a cut through a context row is checked against the start of the file's line
    with pytest.raises(DiffParseError, match="does not start like"):
        apply_diff(source, make_diff(source, after)[:-4] + "X")


def test_counts_too_large_for_a_whole_symmetric_body_are_a_miscount() -> None:
    source = _numbered(30)
    after = source.replace("line 15\n", "fifteen\n")
    diff = make_diff(source, after, headers=False)  # @@ -12,7 +12,7 @@, 3 context lines each side
    report = apply_diff_report(source, diff.replace("@@ -12,7 +12,7 @@", "@@ -12,9 +12,8 @@"))
    assert report.text == after and "claimed 2 old and 1 new" in report.placements[0].note
    # too large by more than the context: a cut could have hidden a change
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(source, diff.replace("@@ -12,7 +12,7 @@", "@@ -12,11 +12,11 @@"))
    # at the end of the file the claimed rows could be an addition that was cut
    tail = _numbered(18)
    short = make_diff(tail, tail.replace("line 15\n", "fifteen\n"), headers=False)
    with pytest.raises(DiffParseError, match="cut off"):
        apply_diff(tail, short.replace("@@ -12,7 +12,7 @@", "@@ -12,7 +12,8 @@"))
