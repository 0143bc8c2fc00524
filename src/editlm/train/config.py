"""Training settings: one dataclass per job, loaded from a TOML recipe and overridden by keyword,
``--set key=value`` or explicit CLI options (in that order of precedence, last wins).

editlm's own settings are the dataclass fields below. Every other setting of the trainer, that is any
field of ``trl.SFTConfig`` (which extends transformers' ``TrainingArguments``), is accepted by its own
name and passed through: ``--set gradient_checkpointing=true``, ``--set report_to=wandb``,
``--set deepspeed=ds_config.json``, ``--set fsdp="full_shard auto_wrap"``, ``--set torch_compile=true``,
``--set load_best_model_at_end=true``, or a ``[trainer]`` table in a recipe. They land in ``trainer``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"


class ConfigError(ValueError):
    """A recipe or override that names an unknown setting or gives it a value of the wrong type."""


@dataclass
class TrainConfig:
    """Settings shared by pretraining and fine-tuning."""

    output_dir: str = "runs/model"
    # A preset name (editlm.models.presets.PRESETS) for a fresh model, or a local checkpoint directory.
    model: str = "tiny"
    # Tokenizer directory; empty: the model directory's own tokenizer.
    tokenizer: str = ""
    data: str = ""
    eval_data: str = ""
    # Fraction of the training data held out for the eval loss when no eval_data is given.
    eval_fraction: float = 0.0
    seq_len: int = 512
    packing: bool = True
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    epochs: float = 1.0
    # > 0 overrides epochs.
    max_steps: int = -1
    # Wall-clock budget in seconds (0: none): the learning rate decays to zero at it and training stops
    # there with a checkpoint (editlm.train.callbacks.MaxTime).
    max_time: float = 0.0
    seed: int = 0
    # Compute precision: "auto" (bf16 autocast where the GPU supports it), "true" or "false". Master
    # weights and optimizer state are float32 either way; without bf16 hardware (CPU) "true" trains in
    # fp32 and says so.
    bf16: str = "auto"
    # The dtype of the saved model: "auto" (the checkpoint's own, float32 for presets), "float32",
    # "bfloat16" or "float16".
    torch_dtype: str = "auto"
    # transformers' attention implementation ("sdpa", "eager", "flash_attention_2", ...); empty: editlm's
    # per-sample attention for packed rows where the family supports it, else "sdpa".
    attn_implementation: str = ""
    logging_steps: int = 10
    eval_steps: int = 200
    save_steps: int = 200
    save_total_limit: int = 2
    # Resume from the last checkpoint in output_dir when there is one (only a run with the same settings
    # and data: anything else is an error unless overwrite).
    resume: bool = True
    # Start afresh in an output_dir that holds another run (its checkpoints are deleted).
    overwrite: bool = False
    progress: bool = True
    tensorboard: bool = True
    # PEFT LoRA (rank 0: off); the final checkpoint is merged into a plain model. "all-linear" is PEFT's
    # every linear layer but the output head, which fits every family (GPT-2's Conv1D included).
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    dataloader_workers: int = 0
    # Further trl.SFTConfig / TrainingArguments settings by their own names (see the module docstring).
    trainer: dict[str, Any] = field(default_factory=dict)


@dataclass
class PretrainConfig(TrainConfig):
    """Causal LM pretraining on a code corpus (directory of files, JSONL/Parquet text column, or text file)."""

    text_field: str = "text"
    # Files taken from a corpus directory.
    glob: str = "*.py"
    # Read at most this many documents (0: all), e.g. a quick run on part of the standard library.
    max_documents: int = 0
    eval_fraction: float = 0.02


@dataclass
class SFTConfig(TrainConfig):
    """Fine-tuning on prompt/completion rows with the loss on the completion only (unless full_loss)."""

    prompt_field: str = "prompt"
    completion_field: str = "completion"
    # Loss on every token (the seed's ablation); default: completion only.
    full_loss: bool = False
    # If set, the loss starts at the last occurrence of this marker in the prompt (diff models: "<DFF>",
    # whose tag carries loss). A row's own integer "loss_start" column (character offset) wins over both.
    loss_from_marker: str = ""
    # A sample longer than seq_len: "skip" (counted and reported) or "truncate" (cut at seq_len tokens).
    overlong: str = "skip"
    lr: float = 3e-4
    warmup_steps: int = 20


C = TypeVar("C", bound=TrainConfig)


def find_recipe(recipe: str | Path) -> Path:
    """A recipe path, or a name under ``recipes/`` (``sft-diff`` -> ``recipes/sft-diff.toml``)."""
    path = Path(recipe)
    if path.is_file():
        return path
    for candidate in (Path("recipes") / f"{recipe}.toml", RECIPES_DIR / f"{recipe}.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no recipe {str(recipe)!r} (not a file, nor recipes/{recipe}.toml)")


def load_config(
    cls: type[C],
    recipe: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> C:
    """``cls`` defaults, then the recipe's keys, then ``--set key=value`` strings, then ``overrides``."""
    values: dict[str, Any] = {}
    if recipe is not None:
        with open(find_recipe(recipe), "rb") as fh:
            values.update(_flatten(tomllib.load(fh)))
    own = {f.name for f in dataclasses.fields(cls)}
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key = key.strip().replace("-", "_")
        if key in own:
            values[key] = _parse_value(cls, key, raw)
        else:
            values.setdefault("trainer", {})
            values["trainer"] = {**values["trainer"], key: _parse_trainer_value(key, raw)}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_config(cls, values)


def make_config(cls: type[C], values: dict[str, Any]) -> C:
    """Build ``cls`` from ``values``, checking names and types; names of trainer settings go to ``trainer``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = dict(values)
    trainer = dict(values.pop("trainer", None) or {})
    for key in [k for k in values if k not in fields]:
        trainer[key] = values.pop(key)
    for key, value in trainer.items():
        _check_trainer_setting(cls, key, value)
    hints = typing.get_type_hints(cls)
    checked = {k: _check(k, v, hints[k]) for k, v in values.items()}
    return cls(**checked, trainer=trainer)


# TrainingArguments names that editlm sets from its own settings: the editlm name to use instead.
EDITLM_NAMES = {
    "learning_rate": "lr",
    "per_device_train_batch_size": "batch_size",
    "per_device_eval_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "num_train_epochs": "epochs",
    "lr_scheduler_type": "scheduler",
    "dataloader_num_workers": "dataloader_workers",
    "max_length": "seq_len",
    "max_seq_length": "seq_len",
    "data_seed": "seed",
    "packing_strategy": "packing",
    "completion_only_loss": "full_loss",
}
# Settings editlm's data path depends on: not to be changed from outside.
FIXED = frozenset({"remove_unused_columns", "dataset_kwargs", "dataset_text_field", "assistant_only_loss"})


@functools.cache
def trainer_fields() -> dict[str, dataclasses.Field]:
    """The fields of ``trl.SFTConfig`` (all of ``TrainingArguments`` and TRL's SFT settings)."""
    from trl import SFTConfig as TrlSFTConfig

    return {f.name: f for f in dataclasses.fields(TrlSFTConfig) if f.init}


def _check_trainer_setting(cls: type, key: str, value: Any) -> None:
    if key in EDITLM_NAMES:
        raise ConfigError(
            f"{key} is set by editlm's {EDITLM_NAMES[key]!r} setting: set {EDITLM_NAMES[key]} instead"
        )
    if key in FIXED:
        raise ConfigError(f"{key} is fixed by editlm's data pipeline and cannot be set")
    fields = trainer_fields()
    if key not in fields:
        raise ConfigError(
            f"unknown {cls.__name__} setting: {key} (neither an editlm setting nor a field of trl.SFTConfig / "
            "transformers.TrainingArguments)"
        )
    hint = fields[key].type
    hint = typing.get_type_hints(_trainer_class()).get(key, hint)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{key} must be int, got {value!r}")
    if hint is float and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ConfigError(f"{key} must be float, got {value!r}")


@functools.cache
def _trainer_class():
    from trl import SFTConfig as TrlSFTConfig

    return TrlSFTConfig


def _parse_trainer_value(key: str, raw: str) -> Any:
    """A ``--set`` value of a trainer setting: JSON where it parses (true, 3, 0.5, ["wandb"], {...}),
    else the string itself (``report_to=wandb``, ``deepspeed=ds.json``)."""
    raw = raw.strip()
    if key in trainer_fields():
        hint = typing.get_type_hints(_trainer_class()).get(key)
        if hint is bool and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value


def _flatten(table: dict[str, Any]) -> dict[str, Any]:
    """Recipes may group settings in tables (``[lora] r = 8`` -> ``lora_r``); a ``[trainer]`` table holds
    trainer settings by their own names."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if key == "trainer" and isinstance(value, dict):
            flat["trainer"] = dict(value)
        elif isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in _flatten(value).items()})
        else:
            flat[key] = value
    return flat


def _check(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table, got {value!r}")
        return value
    if origin in (list, typing.List):  # noqa: UP006
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise ConfigError(f"{name} must be {hint.__name__}, got {value!r}")
    return value


def _parse_value(cls: type, name: str, raw: str) -> Any:
    """A ``--set`` value as the setting's type (``true``/``false``, numbers, comma lists, strings)."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        raise ConfigError(f"unknown {cls.__name__} setting: {name}")
    hint, raw = hints[name], raw.strip()
    try:
        if hint is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {hint.__name__}, got {raw!r}") from None
    return raw


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
