"""CodeFusion (Singh et al. 2023): a diffusion model that denoises a whole program at once, conditioned
on an encoded natural-language utterance. See ``model.py`` for the architecture, ``train.py`` for the
pre-training tasks and ``sampling.py`` for inference.

Names are imported lazily, so that ``editlm --help`` (which imports ``.cli``) does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CodeFusion": "model",
    "CodeFusionConfig": "config",
    "CodeFusionPipeline": "pipeline",
    "ConfigError": "config",
    "CorpusError": "tasks",
    "NoiseSchedule": "schedule",
    "TrainConfig": "train",
    "denoise": "sampling",
    "edit_distance_curve": "sampling",
    "mask_code": "tasks",
    "name_spans": "tasks",
    "read_pairs": "tasks",
    "sample": "sampling",
    "sample_steps": "sampling",
    "sqrt_betas": "schedule",
    "stdlib_pairs": "tasks",
    "train": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
