"""Conversion of checkpoints to CTranslate2 (fast CPU/GPU inference, int8) with its own converter."""

from __future__ import annotations

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


def to_ctranslate2(
    model_dir: str | os.PathLike, out_dir: str | os.PathLike, quantization: str = "int8"
) -> Path:
    """Convert a local causal LM checkpoint to a CTranslate2 model directory (tokenizer files copied along)."""
    from ctranslate2.converters import TransformersConverter

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    load_config(model_dir)  # a clear error for a directory that is not a causal LM
    copy = [name for name in TOKENIZER_FILES if (model_dir / name).is_file()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        TransformersConverter(str(model_dir), copy_files=copy).convert(
            str(tmp), quantization=quantization, force=True
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
