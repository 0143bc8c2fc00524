"""End-to-end training on CPU: memorising diffs, exact resume, pretraining, LoRA, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from editlm.edits.diff import make_diff
from editlm.edits.diff_model import DiffSample, extract_diff
from editlm.models.loading import load_model, load_tokenizer, save_checkpoint
from editlm.models.presets import init_model
from editlm.models.tokenizer import stdlib_texts
from editlm.train.config import PretrainConfig, SFTConfig, make_config
from editlm.train.run import pretrain, sft

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def diff_samples(n: int) -> list[DiffSample]:
    out = []
    for i in range(n):
        before = f"def f{i}(x):\n    return x + {i}\n"
        after = f"def f{i}(x):\n    y = x * {i + 2}\n    return y + {i}\n"
        out.append(
            DiffSample(f"m{i}.py", before, f"Scale by {i + 2}", make_diff(before, after, headers=False))
        )
    return out


def write_sft_data(path, samples):
    with open(path, "w") as fh:
        for s in samples:
            fh.write(
                json.dumps({"prompt": s.prompt(), "completion": s.completion(), "loss_start": s.loss_start})
            )
            fh.write("\n")
    return path


def sft_config(tmp_path, code_tokenizer_dir, data, **kw):
    values = dict(
        output_dir=str(tmp_path / "out"), model="test", tokenizer=str(code_tokenizer_dir), data=str(data), seq_len=256,
        batch_size=8, lr=3e-3, warmup_steps=10, logging_steps=10, save_steps=1000, progress=False,
        tensorboard=False,
    )  # fmt: skip
    values.update(kw)
    return make_config(SFTConfig, values)


def greedy(model, tok, prompt: str, max_new_tokens: int = 80) -> str:
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(
        **ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_tiny_model_memorises_eight_diffs(tmp_path, code_tokenizer_dir):
    samples = diff_samples(8)
    data = write_sft_data(tmp_path / "d.jsonl", samples)
    out = sft(sft_config(tmp_path, code_tokenizer_dir, data, max_steps=200))
    model, tok = load_model(out).eval(), load_tokenizer(out)
    got = [extract_diff(greedy(model, tok, s.prompt())) for s in samples]
    assert got == [s.diff for s in samples]
    summary = json.loads((out / "editlm_train.json").read_text())
    assert summary["data"]["used"] == 8 and summary["kind"] == "sft"
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert losses[-1] < losses[0] / 10


class Interrupt(TrainerCallback):
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


def _weights(path):
    return {k: v.clone() for k, v in load_model(path).state_dict().items()}


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, code_tokenizer_dir, packing):
    data = write_sft_data(tmp_path / "d.jsonl", diff_samples(12))
    # Packed: 12 samples make 6 rows of 2, so the 12 steps span 4 epochs and resume mid-epoch.
    common = dict(max_steps=12, save_steps=5, batch_size=2, packing=packing, lr=1e-3, warmup_steps=3)
    straight = sft(sft_config(tmp_path, code_tokenizer_dir, data, output_dir=str(tmp_path / "a"), **common))
    config = sft_config(tmp_path, code_tokenizer_dir, data, output_dir=str(tmp_path / "b"), **common)
    with pytest.raises(KeyboardInterrupt):
        sft(config, callbacks=[Interrupt(7)])
    assert (tmp_path / "b" / "checkpoint-5").is_dir() and not (tmp_path / "b" / "model.safetensors").exists()
    resumed = sft(config)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    init = init_model("test", load_tokenizer(code_tokenizer_dir), seed=0).state_dict()
    assert not torch.allclose(init["model.embed_tokens.weight"], a["model.embed_tokens.weight"])


def test_pretrain_on_a_code_corpus(tmp_path, code_tokenizer_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, text in enumerate(stdlib_texts(limit=6)):
        (corpus / f"f{i}.py").write_text(text)
    config = make_config(
        PretrainConfig,
        dict(
            output_dir=str(tmp_path / "pt"), model="test", tokenizer=str(code_tokenizer_dir), data=str(corpus), seq_len=128,
            batch_size=4, max_steps=30, eval_steps=15, logging_steps=5, save_steps=15, eval_fraction=0.2,
            progress=False, tensorboard=True, warmup_steps=5,
        ),
    )  # fmt: skip
    out = pretrain(config)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tok)
    assert (out / "model.safetensors").is_file()
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_loss" in r for r in logs)
    losses = [r["loss"] for r in logs if "loss" in r]
    assert losses[-1] < losses[0]
    assert list((out / "runs").rglob("events.out.tfevents.*"))


def test_lora_fine_tuning_saves_a_merged_plain_model(tmp_path, code_tokenizer_dir):
    tok = load_tokenizer(code_tokenizer_dir)
    base = save_checkpoint(init_model("test", tok, seed=1), tok, tmp_path / "base")
    data = write_sft_data(tmp_path / "d.jsonl", diff_samples(4))
    out = sft(sft_config(tmp_path, "", data, model=str(base), tokenizer="", max_steps=5, lora_r=4, lr=1e-2))
    assert not (out / "adapter_config.json").exists()
    before, after = _weights(base), _weights(out)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.allclose(before[k], after[k])]
    assert changed and all("proj" in k for k in changed)


def test_empty_corpus_and_missing_fields_fail_clearly(tmp_path, code_tokenizer_dir):
    from editlm.train.data import DataError

    (tmp_path / "empty").mkdir()
    config = make_config(
        PretrainConfig,
        dict(output_dir=str(tmp_path / "x"), tokenizer=str(code_tokenizer_dir), data=str(tmp_path / "empty")),
    )
    with pytest.raises(DataError, match="empty"):
        pretrain(config)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    with pytest.raises(DataError, match="prompt"):
        sft(sft_config(tmp_path, code_tokenizer_dir, bad))
