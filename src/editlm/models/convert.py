"""Conversion of checkpoints to CTranslate2 (fast CPU/GPU inference, int8), and the conversion cache.

The cache lives outside the model directory (``$EDITLM_CACHE``, else ``$XDG_CACHE_HOME/editlm``, else
``~/.cache/editlm``), one directory per (hash of the weights, config and tokenizer, quantization):
a retrained checkpoint in the same directory gets a new conversion, and read-only checkpoints work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from editlm.models.loading import load_config

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


class ConversionUnsupported(RuntimeError):
    """CTranslate2 cannot convert this model family; ``family`` names it."""

    def __init__(self, message: str, family: str):
        super().__init__(message)
        self.family = family


def cache_dir() -> Path:
    root = os.environ.get("EDITLM_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "editlm"


def checkpoint_digest(model_dir: str | os.PathLike) -> str:
    """SHA-256 over the names and bytes of the checkpoint's weights, config and tokenizer files."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        digest.update(path.name.encode() + b"\x00")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def ctranslate2_model(
    model_dir: str | os.PathLike, quantization: str = "int8", cache_dir: str | os.PathLike | None = None
) -> Path:
    """The CTranslate2 conversion of ``model_dir``, converted on first use and cached by hash."""
    root = Path(cache_dir) if cache_dir else globals()["cache_dir"]() / "ctranslate2"
    target = root / f"{checkpoint_digest(model_dir)[:32]}-{quantization}"
    if (target / "model.bin").is_file():
        return target
    return to_ctranslate2(model_dir, target, quantization)


def _patch_loaders() -> None:
    """CTranslate2's GPT-NeoX loader reads ``config.rotary_pct`` and ``model.embed_out``, which
    transformers 5 moved into ``config.rope_parameters`` and renamed ``lm_head``, and ignores
    ``rope_theta``; give the loader the old names and the rotary base."""
    from ctranslate2.converters import transformers as ct2t

    base = ct2t._MODEL_LOADERS.get("GPTNeoXConfig")
    if base is None or getattr(base, "_editlm_patched", False):
        return

    class NeoXLoader(type(base)):
        _editlm_patched = True

        def get_model_spec(self, model):
            config = model.config
            rope = getattr(config, "rope_parameters", None) or {}
            if not hasattr(config, "rotary_pct"):
                config.rotary_pct = rope.get(
                    "partial_rotary_factor", getattr(config, "partial_rotary_factor", 1.0)
                )
            if not hasattr(model, "embed_out") and hasattr(model, "lm_head"):
                model.embed_out = model.lm_head  # renamed in transformers 5
            theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
            spec = super().get_model_spec(model)
            import numpy as np

            for layer in spec.decoder.layer:
                if hasattr(layer.self_attention, "rotary_base"):
                    layer.self_attention.rotary_base = np.float32(theta)
            return spec

    ct2t._MODEL_LOADERS["GPTNeoXConfig"] = NeoXLoader()


def _fill_special_tokens(config: Path) -> None:
    """Some loaders (GPT-2) write ``"unk_token": null`` for a tokenizer without an unknown token,
    and CTranslate2 then refuses to load the model; the end token stands in (it is never produced
    as unknown: byte-level BPE has no unknown token)."""
    import json

    if not config.is_file():
        return
    settings = json.loads(config.read_text())
    for name in ("bos_token", "unk_token"):
        if name in settings and settings[name] is None:
            settings[name] = settings.get("eos_token") or ""
    config.write_text(json.dumps(settings, indent=2))


def to_ctranslate2(
    model_dir: str | os.PathLike, out_dir: str | os.PathLike, quantization: str = "int8"
) -> Path:
    """Convert a local causal LM checkpoint to a CTranslate2 model directory (tokenizer files copied
    along); :class:`ConversionUnsupported` names a family CTranslate2 cannot convert."""
    from ctranslate2.converters import TransformersConverter

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    family = load_config(model_dir).model_type  # a clear error for a directory that is not a causal LM
    _patch_loaders()
    copy = [name for name in TOKENIZER_FILES if (model_dir / name).is_file()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        try:
            TransformersConverter(str(model_dir), copy_files=copy).convert(
                str(tmp), quantization=quantization, force=True
            )
        except (ValueError, AttributeError, KeyError, NotImplementedError, TypeError) as exc:
            raise ConversionUnsupported(
                f"CTranslate2 cannot convert {family!r} models ({type(exc).__name__}: {str(exc)[:200]})",
                family,
            ) from exc
        _fill_special_tokens(tmp / "config.json")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
