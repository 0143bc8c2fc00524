"""Sample formats: each builder and parser round-trip, and refuse what cannot round-trip."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.edits.diff import make_diff
from editlm.edits.diff_model import ADDFILE, DiffSample, FormatError, extract_diff, parse_diff_sample
from editlm.edits.edit_sequence import (
    DIFF_SEPARATOR,
    decode_edit_sequence,
    edit_sequence_prompt,
    format_edit_sequence,
    parse_edit_sequence,
)
from editlm.edits.fim import parse_fim, split_fim

# Text that looks like the formats' own tags, to make parsers earn their keep.
TEXT = st.lists(st.sampled_from(list("ab \n<>") + ["<NME> ", "<BEF> ", "<MSG>", "<DFF>", "\n<MSG> "])).map(
    "".join
)
NAME = st.text(alphabet="abc./_-", min_size=1, max_size=12)
MESSAGE = st.text(alphabet="abc \n<>DFMSG", max_size=30)


@settings(max_examples=1000)
@given(name=NAME, before=st.none() | TEXT, message=MESSAGE, diff=st.text(alphabet="@-+ \nab<>", max_size=40))
def test_diff_model_round_trip(name, before, message, diff) -> None:
    try:
        sample = DiffSample(name, before, message, diff)
    except FormatError:
        return  # the builder refuses text it could not read back
    text = sample.text()
    assert parse_diff_sample(text) == sample
    assert text.startswith(sample.prompt())
    assert text[sample.loss_start :].startswith("<DFF>")


def test_diff_model_layout_and_addfile() -> None:
    sample = DiffSample("hello.py", None, "Add hello", "@@ -0,0 +1 @@\n+print('hi')\n")
    assert (
        sample.text() == "<NME> hello.py\n<BEF> ADDFILE\n<MSG> Add hello\n<DFF> @@ -0,0 +1 @@\n+print('hi')\n"
    )
    assert sample.prompt() == "<NME> hello.py\n<BEF> ADDFILE\n<MSG> Add hello\n<DFF>"
    assert sample.prompt("@@ -1,3 +1,9 @@").endswith("<DFF> @@ -1,3 +1,9 @@\n")
    with pytest.raises(FormatError):
        DiffSample("x.py", ADDFILE, "m", "d")
    with pytest.raises(FormatError):
        DiffSample("x.py", "a", "line\n<DFF> injected", "d")
    with pytest.raises(FormatError):
        parse_diff_sample("no tags at all")


def test_extract_diff_stops_at_next_sample_or_end_token() -> None:
    completion = " @@ -1 +1 @@\n-a\n+b\n<NME> other.py\n<BEF> junk"
    assert extract_diff(completion) == "@@ -1 +1 @@\n-a\n+b\n"
    assert extract_diff(" @@ -1 +1 @@\n-a\n+b\n<|endoftext|>more") == "@@ -1 +1 @@\n-a\n+b\n"
    assert extract_diff("@@ -1 +1 @@\n-a\n+b\n") == "@@ -1 +1 @@\n-a\n+b\n"


PROGRAM_LINES = st.lists(
    st.sampled_from(["x = 1", "def f():", "    return x", "", "# c", "print(f())"]), max_size=8
)


@settings(max_examples=500)
@given(instruction=st.text(alphabet="abc \n<|>", max_size=30), states=st.lists(PROGRAM_LINES, max_size=5))
def test_edit_sequence_round_trip_and_decode(instruction, states) -> None:
    programs = [""] + ["".join(line + "\n" for line in s) for s in states]
    diffs = [make_diff(a, b, 0, headers=False) for a, b in zip(programs, programs[1:], strict=False)]
    diffs = [d for d in diffs if d]
    if DIFF_SEPARATOR in instruction:
        with pytest.raises(FormatError):
            format_edit_sequence(instruction, diffs)
        return
    text = format_edit_sequence(instruction, diffs)
    if diffs:
        assert parse_edit_sequence(text) == (instruction, diffs)
    prompt = edit_sequence_prompt(instruction)
    assert text.startswith(prompt)
    program, errors = decode_edit_sequence(text[len(prompt) :])
    assert errors == []
    assert program == programs[-1] if diffs else program == ""


def test_decode_reports_bad_edits_and_keeps_going() -> None:
    good1 = make_diff("", "a = 1\n", 0, headers=False)
    good2 = make_diff("a = 1\n", "a = 1\nb = a\n", 0, headers=False)
    completion = "\n<|diff|>".join([good1, "@@ -5,1 +5,1 @@\n-nothing\n+x\n", good2])
    program, errors = decode_edit_sequence(completion)
    assert program == "a = 1\nb = a\n"
    assert len(errors) == 1 and errors[0].startswith("edit 2:")


@settings(max_examples=500)
@given(document=st.text(alphabet="ab\n <>_fim", max_size=60), seed=st.integers(0, 1000))
def test_fim_round_trip(document, seed) -> None:
    try:
        sample = split_fim(document, random.Random(seed))
    except FormatError:
        assert any(t in document for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
        return
    assert sample.document == document
    assert parse_fim(sample.text("psm"), "psm") == sample
    spm = sample.text("spm")
    parsed = parse_fim(spm, "spm")
    assert parsed.text("spm") == spm and parsed.document == document
    assert sample.text("spm").endswith(sample.prefix + sample.middle)
    with pytest.raises(FormatError):
        parse_fim(document.replace("<", ""), "psm")
