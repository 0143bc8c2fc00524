"""Loading and saving local Hugging Face causal LM checkpoints (nothing is ever downloaded)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class NotACausalLMError(ValueError):
    """A path that is not a local Hugging Face causal language model (or tokenizer) directory."""


def _require_dir(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise NotACausalLMError(f"{path}: no such directory (expected a local {what} directory)")
    if not path.is_dir():
        raise NotACausalLMError(f"{path}: not a directory (expected a local {what} directory)")
    return path


def load_config(path: str | os.PathLike):
    """The model config of a local causal LM directory, checked to be a causal LM architecture."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    path = _require_dir(path, "causal LM")
    if not (path / "config.json").is_file():
        raise NotACausalLMError(f"{path}: no config.json, so not a Hugging Face model directory")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise NotACausalLMError(f"{path}: config.json is not a readable model config: {exc}") from exc
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise NotACausalLMError(
            f"{path}: model type {config.model_type!r} is not a causal language model "
            "(transformers has no AutoModelForCausalLM class for it)"
        )
    return config


def checkpoint_dtype(config):
    """The dtype a checkpoint's weights are stored in (its config's ``dtype``; float32 when unset)."""
    import torch

    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) else torch.float32


def load_model(path: str | os.PathLike, dtype=None, device: str | None = None, **kwargs):
    """Load any local Hugging Face causal LM directory; raise NotACausalLMError when it is not one.

    ``dtype`` None keeps transformers' default (the checkpoint's own dtype in transformers 5); training
    passes ``torch.float32`` so that master weights and optimizer state are fp32 whatever the checkpoint."""
    from transformers import AutoModelForCausalLM

    config = load_config(path)
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        model = AutoModelForCausalLM.from_pretrained(path, config=config, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise NotACausalLMError(f"{path}: the weights could not be loaded: {exc}") from exc
    if device is not None:
        model = model.to(device)
    return model


def load_tokenizer(path: str | os.PathLike):
    """Load the tokenizer of a local model or tokenizer directory; raise NotACausalLMError when there is none."""
    from transformers import AutoTokenizer

    path = _require_dir(path, "tokenizer")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise NotACausalLMError(f"{path}: no tokenizer files (tokenizer.json / tokenizer_config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise NotACausalLMError(f"{path}: the tokenizer could not be loaded: {exc}") from exc
    if tokenizer.pad_token is None:
        # Batching needs a pad token; the end-of-text token is the usual stand-in (then unk, then bos: a
        # token the model already has; padded positions are masked). With none of them, training adds
        # the tokens it needs (editlm.models.tokens.ensure_special_tokens).
        stand_in = tokenizer.eos_token or tokenizer.unk_token or tokenizer.bos_token
        if stand_in is not None:
            tokenizer.pad_token = stand_in
    return tokenizer


def save_checkpoint(model, tokenizer, out_dir: str | os.PathLike) -> Path:
    """``save_pretrained`` (safetensors) model and tokenizer into ``out_dir``: written to a temporary
    sibling first and moved in file by file, so a crash never leaves a half-written file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".save-") as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
            from editlm.models.tokenizer import _portable_config

            config = Path(tmp) / "tokenizer_config.json"
            if config.is_file() and "<|diff|>" in tokenizer.get_vocab():
                _portable_config(config)
        for name in os.listdir(tmp):
            os.replace(os.path.join(tmp, name), out_dir / name)
    return out_dir
