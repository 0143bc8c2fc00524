"""DivoT5 directional data: intermediate versions go from the old code to the new one; noise is honest."""

from __future__ import annotations

import json
import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from editlm.data.transforms.directional import (
    DirectionalJob,
    NoiseRates,
    delete_tokens,
    directional_examples,
    directional_rows,
    hunks,
    insert_sentinels,
    intermediate,
    intermediate_steps,
    intermediate_versions,
    span_mask,
)
from editlm.edits.diff import apply_diff, make_diff, split_lines
from editlm.edits.diff_model import parse_diff_sample

SENTINEL_RE = re.compile(r"<extra_id_\d+>")
lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "x = 1\n", "    return y\n", "\n"]), max_size=12)

BEFORE = "def f(a, b):\n    x = a + b\n    return x\n\n\ndef g():\n    pass\n"
AFTER = "def f(a, b, c=0):\n    x = a + b\n    return x * c\n\n\ndef g():\n    return 1\n"


@settings(max_examples=200, deadline=None)
@given(before=lines, after=lines)
def test_intermediate_versions_start_old_end_new_one_hunk_at_a_time(before, after):
    before, after = "".join(before), "".join(after)
    versions = intermediate_versions(before, after)
    n = len(hunks(before, after))
    assert len(versions) == n + 1
    assert versions[0] == before and versions[-1] == after
    # each step applies exactly one more hunk, at its place shifted by the hunks before it (checked
    # by construction: re-diffing neighbours with difflib can split one change where lines repeat)
    old, new = split_lines(before), split_lines(after)
    shift = 0
    for (i1, i2, j1, j2), older, newer in zip(hunks(before, after), versions[:-1], versions[1:], strict=True):
        at = i1 + shift
        older_lines = split_lines(older)
        assert older_lines[at : at + i2 - i1] == old[i1:i2]
        assert split_lines(newer) == older_lines[:at] + new[j1:j2] + older_lines[at + i2 - i1 :]
        assert older != newer
        assert apply_diff(older, make_diff(older, newer)) == newer
        shift += (j2 - j1) - (i2 - i1)


def test_intermediate_versions_of_a_real_edit():
    assert len(hunks(BEFORE, AFTER)) == 3
    assert intermediate(BEFORE, AFTER, 1) == BEFORE.replace("def f(a, b):", "def f(a, b, c=0):")
    assert intermediate(BEFORE, AFTER, 2) == AFTER.replace("return 1", "pass")


def test_steps_are_zero_and_up_to_max_random_inner_ones():
    rng = random.Random(0)
    assert intermediate_steps(1, rng) == [0]
    steps = intermediate_steps(10, rng, max_steps=3)
    assert steps[0] == 0 and len(steps) == 4 and all(1 <= t <= 9 for t in steps[1:])
    assert len(set(steps)) == 4 and steps == sorted(steps)


def test_examples_all_target_the_new_code_and_intermediates_carry_diffs():
    examples = directional_examples(BEFORE, AFTER, "Scale by c", random.Random(1))
    assert {e.task for e in examples} == {"intermediate", "mask-unchanged", "delete", "insert", "mask"}
    assert all(e.target == AFTER for e in examples)
    inter = [e for e in examples if e.task == "intermediate"]
    assert [e.step for e in inter] == [0, 1, 2] and inter[0].code == BEFORE
    rows, reason = directional_rows(
        "k", BEFORE, AFTER, "Scale by c", "f.py", DirectionalJob(seed=1, form="whole-file")
    )
    assert reason is None
    for row in rows:
        if row["task"] == "intermediate":
            sample = parse_diff_sample(row["text"])
            assert apply_diff(sample.before, sample.diff) == AFTER
        else:
            assert row["text"] is None


def test_mask_unchanged_never_touches_changed_lines():
    for seed in range(20):
        masked, _ = span_mask(BEFORE, 0.9, random.Random(seed), maskable=_unchanged(BEFORE, AFTER))
        for changed in ("def f(a, b):", "    return x\n", "    pass"):
            assert changed in masked
        assert SENTINEL_RE.search(masked)


def _unchanged(before, after):
    from editlm.data.transforms.directional import unchanged_pieces

    return unchanged_pieces(before, after)


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(st.sampled_from("ab1 (),\n_x="), max_size=80), rate=st.floats(0.05, 1), seed=st.integers()
)
def test_span_mask_masks_about_the_rate_and_keeps_the_rest_in_order(text, rate, seed):
    masked, count = span_mask(text, rate, random.Random(seed))
    kept = SENTINEL_RE.split(masked)
    # the unmasked pieces appear in the original, in order
    at = 0
    for piece in kept:
        found = text.find(piece.strip(), at) if piece.strip() else at
        assert found >= 0
        at = found
    assert count == len(SENTINEL_RE.findall(masked))
    tokens = re.findall(r"[A-Za-z_]\w*|\d+|\S", text)
    if tokens:
        assert count >= 1
        left = re.findall(r"[A-Za-z_]\w*|\d+|\S", SENTINEL_RE.sub(" ", masked))
        assert len(tokens) - len(left) == max(1, round(len(tokens) * rate))


def test_deletion_and_insertion():
    rng = random.Random(0)
    deleted = delete_tokens(BEFORE, 0.3, rng)
    tokens = re.findall(r"[A-Za-z_]\w*|\d+|\S", BEFORE)
    left = re.findall(r"[A-Za-z_]\w*|\d+|\S", deleted)
    assert len(left) == len(tokens) - round(len(tokens) * 0.3)
    inserted = insert_sentinels(BEFORE, 0.2, rng)
    assert SENTINEL_RE.sub("", inserted) == BEFORE  # only sentinels were added
    assert len(SENTINEL_RE.findall(inserted)) == round(len(tokens) * 0.2)


def test_no_change_and_bad_rows_are_skipped():
    job = DirectionalJob()
    assert directional_rows(1, "x\n", "x\n", "m", "f.py", job) == ([], "no change")
    assert directional_rows(1, "x\n", None, "m", "f.py", job, diff="@@ -5 +5 @@\n-q\n+r\n")[1] == (
        "diff does not apply"
    )
    assert directional_rows(1, "x\n", "y\n", None, "f.py", job)[1] == "missing field"
    assert directional_examples("a\n", "b\n", "m", random.Random(0), rates=NoiseRates(), tasks=("mask",))


def test_directional_command_reads_diffs(tmp_path):
    from editlm.cli import app

    rows = [
        {"before": BEFORE, "diff": make_diff(BEFORE, AFTER, headers=False), "message": "Scale by c"},
        {"before": "x\n", "diff": "", "message": "nothing"},
    ]
    source = tmp_path / "commits.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "d.parquet"
    result = CliRunner().invoke(
        app, ["directional", str(source), "-o", str(out), "--diff-column", "diff", "-w", "1", "--tasks",
              "intermediate,mask", "--form", "whole-file"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pylist()
    assert {r["task"] for r in table} == {"intermediate", "mask"}
    assert all(r["target"] == AFTER for r in table)
    summary = json.loads((tmp_path / "d.parquet.summary.json").read_text())
    assert summary["skipped"] == {"no change": 1}
