"""DivoT5's released data form: @@ segments as difflib prints them, the task mix, tokens, sentinels."""

from __future__ import annotations

import difflib
import json
import random
import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from editlm.data.transforms import divot5
from editlm.data.transforms.directional import DirectionalJob, directional_rows
from editlm.edits.diff import split_lines

SENTINEL_RE = re.compile(r"<extra_id_(\d+)>")
lines = st.lists(
    st.sampled_from(["a\n", "b\n", "c\n", "x = 1\n", "    return y\n", "\n", "d\n", "e\n", "f\n", "g\n"]),
    max_size=30,
)
BEFORE = "".join(f"line{i} = {i}\n" for i in range(80))
AFTER = (
    BEFORE.replace("line3 = 3", "line3 = 33")
    .replace("line30 = 30\n", "")
    .replace("line20 = 20\n", "line20 = 20\nextra = 1\n")
)


def _unified_hunks(before: str, after: str) -> list[tuple[str, str]]:
    """(old side, new side) of each hunk that difflib.unified_diff prints, read from its text."""
    out, old, new = [], None, None
    for line in list(difflib.unified_diff(split_lines(before), split_lines(after), n=3))[2:]:
        if line.startswith("@@"):
            if old is not None:
                out.append(("".join(old), "".join(new)))
            old, new = [], []
        elif line.startswith("\\"):
            continue
        else:
            if line[0] in " -":
                old.append(line[1:])
            if line[0] in " +":
                new.append(line[1:])
    if old is not None:
        out.append(("".join(old), "".join(new)))
    return out


@settings(max_examples=200, deadline=None)
@given(before=lines, after=lines)
def test_segments_are_the_hunks_unified_diff_prints(before, after):
    before, after = "".join(before), "".join(after)
    parts = divot5.segments(before, after)
    # reference bug 1 (a '-' line of a one-hunk edit counted twice, and kept in the target) would fail this
    assert [(s.old, s.new) for s in parts] == _unified_hunks(before, after)
    if parts:
        assert divot5.version(parts, 0) != divot5.version(parts, len(parts))


def test_snippet_versions_hold_the_changed_hunks_only():
    parts = divot5.segments(BEFORE, AFTER)
    assert len(parts) == 3
    old, new = divot5.version(parts, 0), divot5.version(parts, 3)
    assert "line3 = 3\n" in old and "line3 = 33\n" in new and "line12 = 12" not in old
    assert len(split_lines(old)) < len(split_lines(BEFORE)) / 2
    middle = divot5.version(parts, 1)
    assert "line3 = 33" in middle and "extra = 1" not in middle and "line30 = 30" in middle


def test_rows_carry_task_tokens_and_the_released_mix():
    counts: Counter = Counter()
    rows_per_task: Counter = Counter()
    for seed in range(1500):
        examples = divot5.divot5_examples(BEFORE, AFTER, "Change three things", random.Random(seed))
        noised = [e for e in examples if e.task != "dif"]
        assert len(noised) == 1
        counts[noised[0].task] += 1
        rows_per_task.update(e.task for e in examples)
        for e in examples:
            assert e.input.startswith(f"<{e.task}> <msg> ")
            assert " <python> " in e.input
            assert e.target == "<updated_code> " + divot5.version(divot5.segments(BEFORE, AFTER), 3)
    total = sum(counts.values())
    for task, share in zip(divot5.NOISE_TASKS, divot5.MIX, strict=True):
        assert abs(counts[task] / total - share) < 0.04, counts
    assert rows_per_task["dif"] > total  # more <dif> rows than noised ones, as released


def test_ksm_masks_kept_code_tokens_and_never_changed_ones():
    # reference bug 2: the released <ksm> gives back the code unmasked; here code tokens are masked
    masked_code = 0
    for seed in range(40):
        examples = divot5.divot5_examples(BEFORE, AFTER, "x", random.Random(seed), tasks=("ksm",))
        (row,) = examples
        code = row.code
        masked_code += bool(SENTINEL_RE.search(code))
        for changed in ("line3 = 3\n", "line30 = 30\n"):  # tokens the edit removes or changes stay
            assert changed.split()[0] in code
        assert "line3" in code and "line30" in code
    assert masked_code == 40


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(["<extra_id_", "<", "\\", "1", ">", "x", " "]), max_size=40))
def test_escape_is_reversible_and_leaves_no_sentinel(parts):
    text = "".join(parts)
    escaped = divot5.escape(text)
    assert divot5.unescape(escaped) == text
    assert "<extra_id_" not in escaped


def test_literal_sentinels_in_code_are_escaped_and_ours_are_numbered_from_zero():
    before = 'TOKENS = ["<extra_id_0>", "<extra_id_7>"]\n' + BEFORE
    after = 'TOKENS = ["<extra_id_0>", "<extra_id_8>"]\n' + AFTER
    parts = divot5.segments(divot5.escape(before), divot5.escape(after))
    assert 'TOKENS = ["<\\extra_id_0>", "<\\extra_id_7>"]' in divot5.version(parts, 0)
    for seed in range(30):
        for row in divot5.divot5_examples(before, after, "m", random.Random(seed)):
            numbers = [int(n) for n in SENTINEL_RE.findall(row.input)]
            assert numbers == list(range(len(numbers)))  # every sentinel in an input is one of ours
            assert "<extra_id_" not in row.target
            assert divot5.unescape(row.target) == "<updated_code> " + divot5.unescape(
                divot5.version(parts, len(parts))
            )


def test_sentinels_stop_at_99():
    before = "".join(f"v{i} = w{i} + u{i}\n" for i in range(400))
    after = before + "end = 1\n"
    parts = divot5.segments(before, after, context=1000)
    assert len(parts) == 1
    for task in ("etg", "ade"):
        (row,) = divot5.divot5_examples(before, after, "m", random.Random(0), tasks=(task,), context=1000)
        numbers = [int(n) for n in SENTINEL_RE.findall(row.input)]
        assert numbers == list(range(100))


def test_divot5_is_the_default_form_and_whole_file_an_option(tmp_path):
    rows, reason = directional_rows("k", BEFORE, AFTER, "msg", "f.py", DirectionalJob())
    assert reason is None
    assert {r["task"] for r in rows} <= set(divot5.TASKS) and rows[0]["task"] == "dif"
    whole, _ = directional_rows("k", BEFORE, AFTER, "msg", "f.py", DirectionalJob(form="whole-file"))
    assert {r["task"] for r in whole} == {"intermediate", "mask-unchanged", "delete", "insert", "mask"}

    from editlm.cli import app

    source = tmp_path / "edits.jsonl"
    source.write_text(json.dumps({"before": BEFORE, "after": AFTER, "message": "m"}) + "\n")
    out = tmp_path / "d.jsonl"
    result = CliRunner().invoke(app, ["directional", str(source), "-o", str(out), "-w", "1"])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["target"].startswith("<updated_code> ") for r in written)
    assert all(r["input"].startswith(f"<{r['task']}> ") for r in written)
    bad = CliRunner().invoke(app, ["directional", str(source), "-o", str(out), "--tasks", "mask"])
    assert bad.exit_code != 0


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(st.sampled_from("ab1 (),\n_x="), max_size=80), rate=st.floats(0.05, 0.9), seed=st.integers()
)
def test_span_masking_keeps_the_rest_in_place(text, rate, seed):
    numbering = divot5._Numbering()
    masked = divot5.mask_spans(text, rate, random.Random(seed), numbering)
    pattern = "".join(
        "(.+?)" if part.startswith("<extra_id_") else re.escape(part)
        for part in re.split(r"(<extra_id_\d+>)", masked)
    )
    assert re.fullmatch(pattern, text, flags=re.S), (text, masked)  # each sentinel stands for some text
    assert [int(n) for n in SENTINEL_RE.findall(masked)] == list(range(numbering.next))
