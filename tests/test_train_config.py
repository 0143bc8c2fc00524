"""Recipes and overrides, and the ``editlm train`` command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from editlm.cli import app
from editlm.train.config import (
    RECIPES_DIR,
    ConfigError,
    PretrainConfig,
    SFTConfig,
    load_config,
)

runner = CliRunner()


TRAIN_RECIPES = sorted([*RECIPES_DIR.glob("pretrain-*.toml"), *RECIPES_DIR.glob("sft-*.toml")])


def test_there_are_pretrain_and_sft_recipes():
    assert {p.stem.split("-")[0] for p in TRAIN_RECIPES} == {"pretrain", "sft"}


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: p.stem)
def test_every_training_recipe_loads(path):
    cls = PretrainConfig if path.stem.startswith("pretrain-") else SFTConfig
    config = load_config(cls, path)
    assert config.seq_len > 0 and config.lr > 0


def test_precedence_recipe_then_set_then_keywords(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'lr = 0.5\nseq_len = 100\nfull_loss = false\n[lora]\nr = 8\ntarget_modules = ["q_proj"]\n'
    )
    config = load_config(SFTConfig, recipe)
    assert (config.lr, config.seq_len, config.lora_r, config.lora_target_modules) == (0.5, 100, 8, ["q_proj"])
    config = load_config(SFTConfig, recipe, sets=["seq_len=64", "full_loss=true", "lora_target_modules=a,b"])
    assert (config.seq_len, config.full_loss, config.lora_target_modules) == (64, True, ["a", "b"])
    config = load_config(SFTConfig, recipe, overrides={"seq_len": 32, "lr": None}, sets=["seq_len=64"])
    assert (config.seq_len, config.lr) == (32, 0.5)
    assert load_config(SFTConfig, sets=["lr=1"]).lr == 1.0


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="set lr"):
        load_config(SFTConfig, sets=["learning_rate=1"])
    with pytest.raises(ConfigError, match="unknown"):
        load_config(SFTConfig, sets=["learning_rat=1"])
    with pytest.raises(ConfigError, match="true or false"):
        load_config(SFTConfig, sets=["torch_compile=maybe"])
    with pytest.raises(ConfigError, match="fixed"):
        load_config(SFTConfig, sets=["remove_unused_columns=true"])
    with pytest.raises(ConfigError, match="int"):
        load_config(SFTConfig, sets=["seq_len=many"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(SFTConfig, sets=["seq_len"])
    with pytest.raises(ConfigError, match="unknown"):
        load_config(PretrainConfig, overrides={"full_loss": True})
    recipe = tmp_path / "r.toml"
    recipe.write_text('seq_len = "long"\n')
    with pytest.raises(ConfigError, match="seq_len"):
        load_config(SFTConfig, recipe)
    with pytest.raises(ConfigError, match="no recipe"):
        load_config(SFTConfig, "no-such-recipe")


def test_cli_trains_a_tokenizer_and_reports_bad_input(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"text": f"def f{i}(x):\n    return x * {i}\n"}) + "\n" for i in range(50))
    )
    result = runner.invoke(
        app, ["train", "tokenizer", str(corpus), "-o", str(tmp_path / "tok"), "--vocab-size", "400"]
    )
    assert result.exit_code == 0, result.output
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert 256 < len(tok) <= 400  # a small corpus runs out of merges before the vocabulary is full
    text = "def f7(x):\n    return x * 7\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["train", "tokenizer", str(empty), "-o", str(tmp_path / "t2")])
    assert result.exit_code == 2 and "empty" in result.output
    result = runner.invoke(
        app, ["train", "sft", "-m", str(empty), "-d", str(corpus), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "tokenizer" in result.output
    result = runner.invoke(app, ["train", "sft", "--set", "nonsense=1"])
    assert result.exit_code == 2 and "nonsense" in result.output


def test_cli_sft_runs_a_recipe_with_overrides(tmp_path):
    import torch

    from editlm.models.tokenizer import stdlib_texts, train_tokenizer

    train_tokenizer(stdlib_texts(limit=20), tmp_path / "tok", vocab_size=1024)
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"# add {i}\n", "completion": f"x + {i}\n"}) + "\n" for i in range(6))
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = ["train", "sft", "-r", "sft-test", "-t", str(tmp_path / "tok"), "-d", str(data), "-o",
                str(tmp_path / "out"), "--max-steps", "3", "--set", "progress=false", "--set", "tensorboard=false",
                "--full-loss"]  # fmt: skip
        result = runner.invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "editlm_train.json").read_text())
    assert summary["config"]["full_loss"] is True and summary["config"]["max_steps"] == 3
    assert summary["config"]["model"] == "test"  # from the recipe
    assert summary["data"]["loss_tokens"] == summary["data"]["tokens"] - 6
    # The same output directory with other settings: refused, unless --overwrite.
    torch.set_num_threads(1)
    try:
        refused = runner.invoke(app, [*args, "--lr", "0.5"])
        assert refused.exit_code == 2 and "other settings" in refused.output and "lr" in refused.output
        again = runner.invoke(app, [*args, "--lr", "0.5", "--overwrite"])
    finally:
        torch.set_num_threads(threads)
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "out" / "editlm_train.json").read_text())["config"]["lr"] == 0.5


def test_any_trainer_setting_passes_through_to_trl_sft_config(tmp_path):
    from transformers import TrainingArguments
    from trl import SFTConfig as TrlSFTConfig

    from editlm.train.run import sft_arguments

    recipe = tmp_path / "r.toml"
    recipe.write_text(
        "seq_len = 64\n[trainer]\nlr_scheduler_kwargs = {min_lr = 1e-6}\nsave_only_model = true\n"
    )
    sets = ["gradient_checkpointing=true", "report_to=wandb", "torch_compile=true", "load_best_model_at_end=true",
            "metric_for_best_model=eval_loss", "deepspeed=ds_zero2.json", "fsdp=full_shard auto_wrap",
            'gradient_checkpointing_kwargs={"use_reentrant": false}', "eval_on_start=true"]  # fmt: skip
    config = load_config(SFTConfig, recipe, sets=sets)
    assert config.seq_len == 64
    assert config.trainer == {
        "lr_scheduler_kwargs": {"min_lr": 1e-6}, "save_only_model": True, "gradient_checkpointing": True,
        "report_to": "wandb", "torch_compile": True, "load_best_model_at_end": True,
        "metric_for_best_model": "eval_loss", "deepspeed": "ds_zero2.json", "fsdp": "full_shard auto_wrap",
        "gradient_checkpointing_kwargs": {"use_reentrant": False}, "eval_on_start": True,
    }  # fmt: skip
    # Built into the real trl.SFTConfig (DeepSpeed, FSDP and W&B need their packages and devices: left out).
    config.trainer = {k: v for k, v in config.trainer.items() if k not in ("deepspeed", "fsdp", "report_to")}
    config.output_dir = str(tmp_path / "out")
    config.eval_steps = config.save_steps = 10
    args = sft_arguments(config, has_eval=True, bf16=False)
    assert isinstance(args, TrlSFTConfig) and isinstance(args, TrainingArguments)
    assert args.activation_checkpointing is True and args.activation_checkpointing_kwargs == {
        "use_reentrant": False
    }
    assert args.torch_compile and args.load_best_model_at_end and args.eval_on_start and args.save_only_model
    assert args.lr_scheduler_kwargs == {"min_lr": 1e-6} and args.max_length == 64
    assert (args.learning_rate, args.per_device_train_batch_size) == (config.lr, config.batch_size)
    # A value TrainingArguments itself rejects is a ConfigError too.
    config.trainer = {"load_best_model_at_end": True}
    config.save_steps = 7
    with pytest.raises(ConfigError, match="trl.SFTConfig"):
        sft_arguments(config, has_eval=True, bf16=False)
    # Plain TrainingArguments with the same settings, for the non-SFT trainers (seq2seq).
    from editlm.train.run import training_arguments

    config.trainer, config.save_steps = {"gradient_checkpointing": True}, 10
    plain = training_arguments(config, has_eval=False, include_num_input_tokens_seen="no")
    assert type(plain) is TrainingArguments and plain.activation_checkpointing is True
    assert (plain.learning_rate, plain.include_num_input_tokens_seen) == (config.lr, "no")
    # Defaults: no activation checkpointing (TRL would turn it on), no bf16 off the GPU.
    default = sft_arguments(load_config(SFTConfig, sets=[f"output_dir={tmp_path / 'o2'}"]), False, bf16=False)
    assert default.activation_checkpointing is False and default.bf16 is False


def test_bf16_degrades_to_fp32_without_a_gpu(monkeypatch):
    import torch

    from editlm.train.run import use_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert use_bf16("auto") is False and use_bf16("true") is False and use_bf16("false") is False
    with pytest.raises(ValueError, match="bf16"):
        use_bf16("yes please")
