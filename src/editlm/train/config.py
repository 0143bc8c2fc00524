"""Training settings: one dataclass per job, loaded from a TOML recipe and overridden by keyword,
``--set key=value`` or explicit CLI options (in that order of precedence, last wins)."""

from __future__ import annotations

import dataclasses
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
    # "auto": bf16 where the GPU supports it, fp32 on CPU.
    bf16: str = "auto"
    logging_steps: int = 10
    eval_steps: int = 200
    save_steps: int = 200
    save_total_limit: int = 2
    # Resume from the last checkpoint in output_dir when there is one.
    resume: bool = True
    progress: bool = True
    tensorboard: bool = True
    # PEFT LoRA (rank 0: off); the final checkpoint is merged into a plain model.
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    dataloader_workers: int = 0


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
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        values[key.strip().replace("-", "_")] = _parse_value(cls, key.strip().replace("-", "_"), raw)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_config(cls, values)


def make_config(cls: type[C], values: dict[str, Any]) -> C:
    """Build ``cls`` from ``values``, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    checked = {k: _check(k, v, hints[k]) for k, v in values.items()}
    return cls(**checked)


def _flatten(table: dict[str, Any]) -> dict[str, Any]:
    """Recipes may group settings in tables (``[lora] r = 8`` -> ``lora_r``)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in _flatten(value).items()})
        else:
            flat[key] = value
    return flat


def _check(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
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
