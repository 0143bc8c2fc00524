"""editlm train seq2seq: a T5 trains on editlm directional's DivoT5 rows, end to end."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from editlm.data.transforms import divot5

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(tmp_path, n=40):
    from editlm.cli import app

    edits = []
    for i in range(n):
        rng = random.Random(i)
        before = "".join(f"v{j} = f({j})\n" for j in range(rng.randint(5, 20)))
        k = rng.randrange(before.count("\n"))
        after = before.replace(f"v{k} = f({k})", f"v{k} = g({k})")
        edits.append({"before": before, "after": after, "message": f"use g for v{k}"})
    source = tmp_path / "edits.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in edits))
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(
        app, ["directional", str(source), "-o", str(out), "-w", "1", "--no-decontaminate"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_t5_trains_on_directional_rows_and_keeps_task_tokens_whole(tmp_path, small_tokenizer_dir):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from editlm.cli import app

    rows = _rows(tmp_path)
    out = tmp_path / "t5"
    result = CliRunner().invoke(
        app, ["train", "seq2seq", "-m", "t5-test", "-t", str(small_tokenizer_dir), "-d", str(rows), "-o", str(out),
              "--max-steps", "60", "--batch-size", "8", "--lr", "3e-3", "--set", "progress=false",
              "--set", "tensorboard=false", "--set", "save_steps=1000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    losses = [
        json.loads(line)["loss"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert losses[-1] < 0.6 * losses[0]
    tok = AutoTokenizer.from_pretrained(out)
    for token in ("<ksm>", "<dif>", "<updated_code>", "<python>", "<extra_id_99>", "<msg>"):
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id and len(tok.tokenize(token)) == 1
    model = AutoModelForSeq2SeqLM.from_pretrained(out)
    ids = tok("<dif> <msg> use g <python> v1 = f(1)\n", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert tok.decode(generated[0], skip_special_tokens=False).count("<updated_code>") >= 1

    # a local seq2seq checkpoint (here the one just trained; a CodeT5 directory alike) trains further
    again = tmp_path / "t5-again"
    result = CliRunner().invoke(
        app, ["train", "seq2seq", "-m", str(out), "-d", str(rows), "-o", str(again), "--max-steps", "2",
              "--set", "progress=false", "--set", "tensorboard=false"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_bad_models_and_rows_are_refused(tmp_path, small_tokenizer_dir, tiny_model):
    from editlm.cli import app

    rows = _rows(tmp_path, n=3)
    for model in ("t5-huge", str(tiny_model)):
        result = CliRunner().invoke(
            app, ["train", "seq2seq", "-m", model, "-t", str(small_tokenizer_dir), "-d", str(rows), "-o",
                  str(tmp_path / "x"), "--max-steps", "1"],
        )  # fmt: skip
        assert result.exit_code == 2
        assert "seq2seq" in result.output or "encoder-decoder" in result.output
    assert divot5.TARGET_PREFIX == "<updated_code>"
