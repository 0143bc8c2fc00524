"""The authors' training text and loss mask, token by token, and decoding of cut or fenced output.

REFERENCE.md section 1 and the authors' fine-tuning script: the edit path is ``"\\n<|diff|>"`` joined
over ``[""] + edits + ["", ""]``, appended to the instruction, then the tokenizer's end-of-text; the
loss is masked on as many tokens as the instruction alone tokenizes to. The construction below is
written from that description, independently of editlm's formatter.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.data.lintseq.sampler import sample_edit_sequence
from editlm.edits.diff import make_diff
from editlm.edits.edit_sequence import (
    CLOSING,
    decode_edits,
    edit_sequence_prompt,
    fenced_code,
    format_edit_sequence,
    parse_edit_sequence,
    training_split,
    unwrap_fenced,
)

IGNORE = -100
PROGRAM = (
    "import math\n\n\ndef area(r):\n    if r < 0:\n        raise ValueError(r)\n    return math.pi * r * r\n\n\n"
    "print(area(2))\n"
)


def authors_example(tokenizer, instruction: str, edits: list[str]) -> tuple[list[int], list[int]]:
    path = "".join("\n<|diff|>" + e for e in edits) + "\n<|diff|>" + "\n<|diff|>"
    if not instruction.endswith((" ", "\n", "\t")) and not path.startswith((" ", "\n", "\t")):
        path = "\n" + path
    ids = tokenizer(instruction + path + tokenizer.eos_token)["input_ids"]
    masked = len(tokenizer(instruction)["input_ids"])
    return ids, [IGNORE] * masked + ids[masked:]


@pytest.fixture(scope="module")
def tokenizer(small_tokenizer_dir):
    from editlm.models.loading import load_tokenizer

    return load_tokenizer(small_tokenizer_dir)


@pytest.mark.parametrize("instruction", ["Compute the area of a circle.", "Write area(r)", "Area:\tr"])
def test_training_tokens_and_loss_mask_equal_the_authors(tokenizer, instruction):
    from editlm.train.data import encode_sft

    assert tokenizer.convert_tokens_to_ids("<|diff|>") != tokenizer.unk_token_id
    for seed in range(4):
        edits = sample_edit_sequence(PROGRAM, seed)
        prompt, completion = training_split(instruction, edits)
        ((ids, labels),) = encode_sft(tokenizer, [{"prompt": prompt, "completion": completion}], seq_len=4096)
        want_ids, want_labels = authors_example(tokenizer, instruction, edits)
        assert ids == want_ids
        assert labels == want_labels
        # the first separator is learned, and the sequence closes with two empty edits, then eos
        first = labels.index(next(label for label in labels if label != IGNORE))
        assert tokenizer.decode(ids[first:]).startswith("\n<|diff|>")
        assert tokenizer.decode(ids).endswith(CLOSING + tokenizer.eos_token)


def test_text_is_the_reference_join_and_parses_back():
    edits = ["@@ -0,0 +1 @@\n+x = 1", "@@ -1,0 +2 @@\n+print(x)"]
    text = format_edit_sequence("Print one.", edits)
    assert (
        text
        == "Print one.\n<|diff|>@@ -0,0 +1 @@\n+x = 1\n<|diff|>@@ -1,0 +2 @@\n+print(x)\n<|diff|>\n<|diff|>"
    )
    assert parse_edit_sequence(text) == ("Print one.", edits)
    assert parse_edit_sequence(format_edit_sequence("Print one.", edits, closing=False)) == (
        "Print one.",
        edits,
    )
    assert format_edit_sequence("Nothing.", []) == "Nothing.\n<|diff|>\n<|diff|>"
    assert parse_edit_sequence("Nothing.\n<|diff|>\n<|diff|>") == ("Nothing.", [])
    prompt, completion = training_split("Print one.", edits)
    assert prompt == "Print one." and prompt + completion == text


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 10_000))
def test_a_cut_completion_decodes_its_finished_edits_and_refuses_the_cut_one(seed, cut):
    """A completion cut by max_new_tokens anywhere: every finished edit applies, the cut one is
    refused as truncated, and the program is a prefix state of the sequence, never a wrong one."""
    edits = sample_edit_sequence(PROGRAM, seed)
    full = format_edit_sequence("Area.", edits)[len(edit_sequence_prompt("Area.")) :]
    cut = cut % len(full)
    decoded = decode_edits(full[:cut], require_end=True)
    states = [""]
    for n in range(1, len(edits) + 1):
        states.append(decode_edits(format_edit_sequence("", edits[:n])[len("\n<|diff|>") :]).program)
    assert decoded.program in states
    assert len(decoded.errors) <= 1
    if decoded.errors:
        assert decoded.truncated and decoded.errors[0].split(": ")[1] == "truncated"
    assert decode_edits(full).program == PROGRAM and not decode_edits(full).errors


def test_a_hunk_cut_mid_count_is_refused_even_without_require_end():
    good = make_diff("", "a = 1\n", 0, headers=False)
    decoded = decode_edits(good + "\n<|diff|>@@ -1,0 +2,3 @@\n+b = 2\n+c = 3")
    assert decoded.program == "a = 1\n" and decoded.truncated
    assert decoded.errors[0].startswith("edit 2: truncated: ")


def test_fenced_responses_are_unwrapped_as_the_authors_evaluation_does():
    assert (
        unwrap_fenced("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "\ndef f():\n    return 1\n"
    )
    assert unwrap_fenced("def f():\n    return 1\n") == "def f():\n    return 1\n"
    edit = "@@ -0,0 +1,4 @@\n+```python\n+x = 1\n+```\n+prose"
    assert decode_edits(edit + CLOSING).program == "\nx = 1\n"
    assert decode_edits(edit + CLOSING, unwrap=False).program == "```python\nx = 1\n```\nprose\n"
    # the generator's input cleaning joins every python block
    assert fenced_code("a\n```python\nx = 1\n```\nb\n```python\ny = 2\n```") == "x = 1\n\n\ny = 2"
    assert fenced_code("x = 1\n") == "x = 1\n"
