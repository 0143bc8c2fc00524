"""CodeFusion end to end: overfit a few pairs, sample them back, save/load, intermediate steps, CLI."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from editlm.models.codefusion.metrics import first_step_confidence, token_accuracy, trajectory
from editlm.models.codefusion.pipeline import CodeFusionPipeline
from editlm.models.codefusion.presets import preset
from editlm.models.codefusion.sampling import ABLATIONS, denoise, edit_distance_curve, sample, sample_steps
from editlm.models.codefusion.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


PAIRS = [
    ("add two numbers", "def add(a, b):\n    return a + b\n"),
    ("greet someone", "def greet(name):\n    print('hello', name)\n"),
    ("square a value", "def square(x):\n    return x * x\n"),
    ("an empty list", "items = []\n"),
]


@pytest.fixture(scope="module")
def trained(small_tokenizer_dir):
    """A tiny model (T = 20) overfit on four pairs, with its training log."""
    from editlm.models.loading import load_tokenizer

    pipe = CodeFusionPipeline.create(
        load_tokenizer(small_tokenizer_dir), seed=0, device="cpu", **preset("tiny")
    )
    config = TrainConfig(pretrain_steps=40, finetune_steps=300, batch_size=8, lr=3e-3, warmup_steps=10)
    history = train(pipe, PAIRS, config, progress=False)
    return pipe, history


def test_overfit_pairs_are_sampled_back_exactly(trained):
    pipe, history = trained
    finetune = [r for r in history if r["phase"] == "finetune"]
    assert finetune[-1]["loss"] < finetune[0]["loss"] / 10
    assert finetune[-1]["ce"] < 0.5
    for utterance, code in PAIRS:
        assert sample(pipe, utterance, k=2, seed=0) == [code, code], utterance
    # The utterance matters: each one gets its own program.
    assert len({sample(pipe, u)[0] for u, _ in PAIRS}) == len(PAIRS)


def test_fewer_sampling_steps_and_unconditional_generation_run(trained):
    pipe, _ = trained
    assert sample(pipe, PAIRS[0][0], steps=5) == [PAIRS[0][1]]
    programs = sample(pipe, None, k=3, seed=1)
    assert len(programs) == 3 and all(isinstance(p, str) for p in programs)
    with pytest.raises(ValueError):
        sample(pipe, "x", steps=pipe.config.diffusion_steps + 1)


def test_clamping_ablation_runs_and_checks_its_name(trained):
    pipe, _ = trained
    for clamp in ("nearest", "decoder"):
        assert sample(pipe, PAIRS[0][0], clamp=clamp) == [PAIRS[0][1]]
    with pytest.raises(ValueError, match="clamp"):
        sample(pipe, PAIRS[0][0], clamp="round")


def test_top_k_uses_k_seeds_and_is_reproducible(trained):
    pipe, _ = trained
    ids_a, _ = denoise(pipe, ["greet someone"] * 3, [5, 6, 7])
    ids_b, _ = denoise(pipe, ["greet someone"], [6])
    assert torch.equal(ids_a[1], ids_b[0])  # a program depends on its seed, not on its batch
    assert sample(pipe, None, k=3, seed=4) == sample(pipe, None, k=3, seed=4)


def test_intermediate_steps_return_one_program_per_step(trained):
    pipe, _ = trained
    record = [1, 5, 10, 20]
    programs = sample_steps(pipe, PAIRS[2][0], record, seed=3)
    assert [step for step, _ in programs] == record
    assert all(isinstance(program, str) for _, program in programs)
    assert programs[-1][1] == sample(pipe, PAIRS[2][0], seed=3)[0] == PAIRS[2][1]
    curve = edit_distance_curve(pipe, PAIRS, record)
    assert [step for step, _ in curve] == record
    assert all(0.0 <= d <= 1.0 for _, d in curve)
    assert curve[-1][1] == 0.0
    with pytest.raises(ValueError, match="record steps"):
        sample_steps(pipe, "x", [0, 21])
    rows = trajectory(pipe, PAIRS, record)
    assert rows[-1]["token_accuracy"] == 1.0 and rows[-1]["exact"] == 1.0
    assert rows[0]["token_accuracy"] <= rows[-1]["token_accuracy"]
    assert rows[-1]["length"] == rows[-1]["reference_length"]
    assert set(rows[-1]["by_length"]) <= {"1-16", "17-32"} and set(rows[-1]["by_length"].values()) == {0.0}


def test_the_papers_ablations_read_out_through_l(trained):
    pipe, _ = trained
    for name, (clamp, readout) in ABLATIONS.items():
        programs = sample(pipe, PAIRS[0][0], k=2, clamp=clamp, readout=readout)
        assert programs == [PAIRS[0][1]] * 2, name  # tied H: grounding reads what D + H read
    with pytest.raises(ValueError, match="readout"):
        sample(pipe, PAIRS[0][0], readout="argmax")


def test_token_accuracy_counts_content_not_length():
    pad = 0
    answer = torch.tensor([5, 6, 7, 0, 0, 0])
    assert token_accuracy(torch.tensor([5, 6, 7, 0, 9, 9]), answer, pad) == 1.0  # after the end: ignored
    assert token_accuracy(torch.tensor([5, 6, 7, 8, 9, 0]), answer, pad) == 0.75  # too long: end missed
    assert token_accuracy(torch.tensor([9, 9, 9, 9, 0, 0]), answer, pad) == 0.0  # right length, wrong text


def test_save_and_load_give_identical_outputs(trained, tmp_path):
    pipe, _ = trained
    pipe.save_pretrained(tmp_path / "cf")
    names = {p.name for p in (tmp_path / "cf").iterdir()}
    assert {"codefusion_config.json", "model.safetensors", "tokenizer.json"} <= names
    loaded = CodeFusionPipeline.from_pretrained(tmp_path / "cf", device="cpu")
    assert loaded.config == pipe.config and len(loaded.tokenizer) == len(pipe.tokenizer)
    for (name, a), b in zip(pipe.model.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for utterance in ("add two numbers", "something unseen"):
        a, sa = denoise(pipe, [utterance] * 2, [11, 12], record=[3])
        b, sb = denoise(loaded, [utterance] * 2, [11, 12], record=[3])
        assert torch.equal(a, b) and torch.equal(sa[3], sb[3])
    with pytest.raises(FileNotFoundError):
        CodeFusionPipeline.from_pretrained(tmp_path / "nothing")


def test_hugging_face_encoder_as_e(small_tokenizer_dir, tmp_path):
    """Any local HF encoder directory (with its tokenizer) can stand in for CodeT5's encoder."""
    from transformers import BertConfig, BertModel

    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(small_tokenizer_dir)
    bert = BertModel(BertConfig(vocab_size=len(tok), hidden_size=24, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=48, max_position_embeddings=64))  # fmt: skip
    bert.save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    pipe = CodeFusionPipeline.create(
        load_tokenizer(small_tokenizer_dir), encoder_dir=tmp_path / "bert", device="cpu", **preset("tiny")
    )
    assert pipe.config.encoder == "hf" and pipe.config.encoder_hidden == 24
    assert torch.equal(
        pipe.model.encoder.model.embeddings.word_embeddings.weight, bert.embeddings.word_embeddings.weight
    )
    # Pre-training and fine-tuning leave a pre-trained E alone by default; freeze_encoder=False trains it.
    weight = pipe.model.encoder.model.embeddings.word_embeddings.weight
    before = weight.detach().clone()
    train(pipe, PAIRS[:2], TrainConfig(pretrain_steps=2, finetune_steps=0, batch_size=2), progress=False)
    assert torch.equal(weight, before) and weight.grad is None and weight.requires_grad
    proj = pipe.model.encoder.proj.weight.detach().clone()
    train(pipe, PAIRS[:2], TrainConfig(finetune_steps=2, batch_size=2), progress=False)
    assert torch.equal(weight, before) and not torch.equal(pipe.model.encoder.proj.weight, proj)
    train(pipe, PAIRS[:2], TrainConfig(finetune_steps=2, batch_size=2, freeze_encoder=False), progress=False)
    assert not torch.equal(weight, before)
    pipe.save_pretrained(tmp_path / "cf")
    loaded = CodeFusionPipeline.from_pretrained(tmp_path / "cf", device="cpu")
    assert torch.equal(denoise(pipe, ["add"], [0])[0], denoise(loaded, ["add"], [0])[0])


def _app() -> typer.Typer:
    from editlm.models.codefusion.cli import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_train_then_sample(small_tokenizer_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"nl": u, "code": c}) + "\n" for u, c in PAIRS[:2]))
    out = tmp_path / "model"
    runner = CliRunner()
    args = ["codefusion", "train", "--data", str(data), "--utterance-field", "nl", "--tokenizer", str(small_tokenizer_dir),
            "-o", str(out), "--size", "tiny", "--pretrain-steps", "2", "--finetune-steps", "3",
            "--batch-size", "2", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()
    assert [json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()] == [
        "pretrain",
        "pretrain",
        "finetune",
        "finetune",
    ]
    result = runner.invoke(
        _app(),
        [
            "codefusion",
            "sample",
            str(out),
            "add two numbers",
            "-k",
            "2",
            "--steps",
            "4",
            "--json",
            "--show-steps",
            "1,4",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert len(payload["programs"]) == 2 and [s["step"] for s in payload["steps"]] == [1, 4]
    result = runner.invoke(_app(), ["codefusion", "curve", str(out), "--data", str(data), "--utterance-field", "nl",
                                    "--record", "1,2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.output.splitlines()] == ["step", "1", "2"]
    result = runner.invoke(_app(), ["codefusion", "curve", str(out), "--data", str(data), "--utterance-field", "nl",
                                    "--record", "2", "--json", "--ablation", "clamping"])  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert {"edit_distance", "token_accuracy", "length", "reference_length", "by_length"} <= set(row)
    assert json.loads((out / "codefusion_config.json").read_text())["self_condition"] is False

    other = tmp_path / "other"
    assert args[8] == "-o"
    result = runner.invoke(
        _app(), [*args[:9], str(other), *args[10:], "--self-condition", "--objective", "interpolate"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((other / "codefusion_config.json").read_text())
    assert (saved["self_condition"], saved["objective"]) == (True, "interpolate")
    result = runner.invoke(
        _app(), ["codefusion", "sample", str(other), "add two numbers", "--steps", "3", "--json"]
    )
    assert result.exit_code == 0 and len(json.loads(result.output)["programs"]) == 1, result.output


def test_cli_reports_missing_fields_and_empty_corpus(small_tokenizer_dir, tmp_path):
    runner = CliRunner()
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"utterance": "x"}\n')
    base = [
        "codefusion",
        "train",
        "--tokenizer",
        str(small_tokenizer_dir),
        "-o",
        str(tmp_path / "m"),
        "--size",
        "tiny",
    ]
    result = runner.invoke(_app(), [*base, "--data", str(data)])
    assert result.exit_code != 0 and "missing fields" in result.output
    data.write_text("")
    result = runner.invoke(_app(), [*base, "--data", str(data)])
    assert result.exit_code != 0 and "no rows" in result.output
    result = runner.invoke(_app(), base)
    assert result.exit_code != 0 and "no training pairs" in result.output
    data.write_text(json.dumps({"utterance": "x", "code": "y = 1\n"}) + "\n")
    for bad, message in (
        (["--objective", "eps"], "unknown objective"),
        (["--heads", "3"], "multiple of heads"),
    ):
        result = runner.invoke(_app(), [*base, "--data", str(data), *bad])
        assert result.exit_code == 2 and message in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_recipe_sets_options_and_the_command_line_wins(small_tokenizer_dir, tmp_path):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "codefusion-tiny.toml"
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"utterance": u, "code": c}) + "\n" for u, c in PAIRS[:2]))
    out = tmp_path / "model"
    args = ["codefusion", "train", "--recipe", str(recipe), "--data", str(data), "--tokenizer", str(small_tokenizer_dir),
            "-o", str(out), "--pretrain-steps", "0", "--finetune-steps", "1", "--length", "24", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "codefusion_config.json").read_text())
    assert config["diffusion_steps"] == 20 and config["hidden"] == 32  # from the recipe
    assert config["target_length"] == 24  # from the command line
    assert {json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()} == {
        "finetune"
    }


def test_cli_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, editlm.models.codefusion.cli; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_cli_sample_rejects_a_directory_that_is_not_a_checkpoint(tmp_path):
    result = CliRunner().invoke(_app(), ["codefusion", "sample", str(tmp_path), "x"])
    assert result.exit_code != 0 and "not a CodeFusion checkpoint" in result.output


def test_self_conditioning_reads_the_last_estimate_and_overfits_pairs(small_tokenizer_dir, tmp_path):
    """With ``self_condition`` N reads its previous x0_hat: zeros at the first sampling step, then
    exactly what it returned the step before; the option trains, samples back what it learnt, and is
    saved with the checkpoint. Without it, N never sees one."""
    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(small_tokenizer_dir)
    pipe = CodeFusionPipeline.create(tok, seed=0, device="cpu", **preset("tiny"), self_condition=True)
    memory, mask = pipe.memory(["add two numbers"])
    x_t = torch.randn(1, pipe.config.target_length, pipe.config.embed_dim)
    t = torch.tensor([3])
    with torch.no_grad():
        alone = pipe.model.denoise(x_t, t, memory, mask)
        assert torch.equal(alone, pipe.model.denoise(x_t, t, memory, mask, torch.zeros_like(x_t)))
        assert not torch.allclose(alone, pipe.model.denoise(x_t, t, memory, mask, torch.ones_like(x_t)))

    seen, returned = [], []
    real = pipe.model.denoise

    def spy(x, step, m, mm, previous=None):
        seen.append(previous)
        returned.append(real(x, step, m, mm, previous))
        return returned[-1]

    pipe.model.denoise = spy
    denoise(pipe, ["add two numbers"], [0], steps=5)
    del pipe.model.denoise
    assert seen[0] is None and len(seen) == 5
    assert all(torch.equal(prev, out) for prev, out in zip(seen[1:], returned[:-1], strict=True))

    config = TrainConfig(pretrain_steps=40, finetune_steps=300, batch_size=8, lr=3e-3, warmup_steps=10)
    train(pipe, PAIRS, config, progress=False)
    for utterance, code in PAIRS:
        assert sample(pipe, utterance, k=2, seed=0) == [code, code], utterance
    pipe.save_pretrained(tmp_path / "sc")
    again = CodeFusionPipeline.from_pretrained(tmp_path / "sc", device="cpu")
    assert again.config.self_condition
    assert sample(again, PAIRS[0][0], k=2, seed=3) == sample(pipe, PAIRS[0][0], k=2, seed=3)

    plain = CodeFusionPipeline.create(tok, seed=0, device="cpu", **preset("tiny"))
    assert plain.model.denoiser.in_proj.in_features == plain.config.embed_dim  # reads x_t alone
    assert pipe.model.denoiser.in_proj.in_features == 2 * pipe.config.embed_dim


def test_first_step_confidence_is_the_curves_first_step(trained):
    """Its argmax accuracy is the trajectory's step-1 token accuracy (same seeds, same x_T); a drawn
    token is never likelier to be right than the most likely one, and an overfit model is sure."""
    pipe, _ = trained
    first = first_step_confidence(pipe, PAIRS, seed=4)
    curve = trajectory(pipe, PAIRS, [1], steps=5, seed=4)
    assert first["argmax_accuracy"] == pytest.approx(curve[0]["token_accuracy"])
    assert 0 <= first["sampled_accuracy"] <= first["confidence"] <= 1
    assert first["argmax_accuracy"] > 0.9 and first["sampled_accuracy"] > 0.5
    with pytest.raises(ValueError):
        first_step_confidence(pipe, [])
