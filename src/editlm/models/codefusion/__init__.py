"""CodeFusion (Singh et al. 2023): a diffusion model that denoises a whole program at once, conditioned
on an encoded natural-language utterance. See ``model.py`` for the architecture, ``train.py`` for the
pre-training tasks and ``sampling.py`` for inference.

Names are imported lazily, so that ``editlm --help`` (which imports ``.cli``) does not load torch.
"""

from __future__ import annotations

from editlm._lazy import lazy_exports

_EXPORTS = {
    "CodeFusion": ".model",
    "CodeFusionConfig": ".config",
    "CodeFusionPipeline": ".pipeline",
    "ConfigError": ".config",
    "CorpusError": ".tasks",
    "NoiseSchedule": ".schedule",
    "TrainConfig": ".train",
    "denoise": ".sampling",
    "edit_distance_curve": ".sampling",
    "mask_code": ".tasks",
    "name_spans": ".tasks",
    "read_pairs": ".tasks",
    "sample": ".sampling",
    "sample_steps": ".sampling",
    "sqrt_betas": ".schedule",
    "stdlib_pairs": ".tasks",
    "train": ".train",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
