"""Inference: x_T ~ N(0, I), T reverse steps through N alone, then D and H once; cut at the first pad.

Every row of a batch draws its noise from its own ``torch.Generator`` seeded by that row's seed (on the
CPU, then moved), so a program depends only on (checkpoint, utterance, steps, seed): not on the batch it
is in nor on the device. Top-k is k different seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from editlm.models.codefusion.pipeline import CodeFusionPipeline

CLAMPS = (None, "nearest", "decoder")
READOUTS = ("decoder", "grounding")
# The paper's ablation (its Table 5): CodeFusion itself, D and H replaced by grounding (round the final
# x_0 to the nearest row of L, as GENIE and Diffusion-LM read out), and by clamping (Diffusion-LM's
# clamping trick: x0_hat snapped to the nearest row of L at every step, then grounding).
ABLATIONS = {
    "codefusion": (None, "decoder"),
    "grounding": (None, "grounding"),
    "clamping": ("nearest", "grounding"),
}


def _randn(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)


@torch.no_grad()
def denoise(
    pipe: CodeFusionPipeline,
    utterances: Sequence[str] | None,
    seeds: Sequence[int],
    steps: int | None = None,
    record: Sequence[int] = (),
    clamp: str | None = None,
    readout: str = "decoder",
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Token ids (batch, target_length) of the final programs, and of the programs that D and H read off
    x0_hat after each step number in ``record`` (1..steps; ``steps`` itself is the final program).

    ``utterances``: one per seed, or None for unconditional generation (E(s) is then Gaussian noise,
    drawn anew at every step as in pre-training). ``clamp``: None (the paper: N alone until the end),
    "nearest" (Diffusion-LM's clamping of x0_hat to the nearest row of L) or "decoder" (to the L row of
    the token D and H read). ``readout``: "decoder" (D then H, the paper) or "grounding" (the nearest
    row of L, no D or H); :data:`ABLATIONS` names the paper's three combinations.
    """
    if clamp not in CLAMPS:
        raise ValueError(f"clamp must be one of {CLAMPS}, not {clamp!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, not {readout!r}")
    model, config = pipe.model, pipe.config
    schedule = model.schedule.respace(steps or config.diffusion_steps)
    total = len(schedule.timesteps)
    bad = [s for s in record if not 1 <= s <= total]
    if bad:
        raise ValueError(f"record steps must be in 1..{total}, not {bad}")
    if utterances is not None and len(utterances) != len(seeds):
        raise ValueError(f"{len(utterances)} utterances for {len(seeds)} seeds")
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    device, batch = model.device, len(seeds)
    was_training = model.training
    model.eval()
    try:
        memory, mask = pipe.memory(list(utterances)) if utterances is not None else (None, None)
        x = _randn(generators, (config.target_length, config.embed_dim), device)
        snapshots: dict[int, torch.Tensor] = {}
        x0_hat = None  # the last estimate, which a self-conditioned N reads
        for done, i in enumerate(reversed(range(total)), start=1):
            step_memory = memory
            if utterances is None:
                step_memory = _randn(generators, (config.source_length, config.hidden), device)
            t = torch.full((batch,), schedule.timesteps[i], dtype=torch.long, device=device)
            x0_hat = model.denoise(x, t, step_memory, mask, x0_hat)
            if clamp == "nearest":  # Diffusion-LM's clamping trick: snap to the nearest token embedding
                x0_hat = model.embed(model.round(x0_hat))
            elif clamp == "decoder":  # snap to the embedding of the token that D and H read
                x0_hat = model.embed(model.decode(x0_hat, step_memory, mask)[1].argmax(-1))
            if done in record:
                snapshots[done] = _read(model, x0_hat, step_memory, mask, readout).cpu()
            noise = _randn(generators, (config.target_length, config.embed_dim), device) if i > 0 else None
            x = schedule.p_sample(x, i, x0_hat, noise)
        if utterances is None:
            step_memory = _randn(generators, (config.source_length, config.hidden), device)
        final = _read(model, x, step_memory, mask, readout).cpu()
    finally:
        model.train(was_training)
    return final, snapshots


def _read(model, x0: torch.Tensor, memory, mask, readout: str) -> torch.Tensor:
    if readout == "grounding":
        return model.round(x0)
    return model.decode(x0, memory, mask)[1].argmax(-1)


def sample(
    pipe: CodeFusionPipeline,
    utterance: str | None,
    k: int = 1,
    steps: int | None = None,
    seed: int = 0,
    clamp: str | None = None,
    readout: str = "decoder",
) -> list[str]:
    """Top-k programs for ``utterance`` (None: unconditional), from seeds seed, seed + 1, ..., seed + k - 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    seeds = list(range(seed, seed + k))
    ids, _ = denoise(
        pipe, None if utterance is None else [utterance] * k, seeds, steps, clamp=clamp, readout=readout
    )
    return [pipe.decode_ids(row) for row in ids]


def sample_steps(
    pipe: CodeFusionPipeline,
    utterance: str | None,
    record: Sequence[int],
    steps: int | None = None,
    seed: int = 0,
    clamp: str | None = None,
    readout: str = "decoder",
) -> list[tuple[int, str]]:
    """(step, program) for each requested step: what D and H make of x0_hat after that many steps."""
    _, snapshots = denoise(
        pipe, None if utterance is None else [utterance], [seed], steps, record, clamp, readout
    )
    return [(step, pipe.decode_ids(snapshots[step][0])) for step in record]


def edit_distance_curve(
    pipe: CodeFusionPipeline,
    pairs: Sequence[tuple[str, str]],
    record: Sequence[int],
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    clamp: str | None = None,
    readout: str = "decoder",
) -> list[tuple[int, float]]:
    """Mean normalised Levenshtein distance between the program after each recorded step and the answer
    (the paper's "gradual improvement" curve); :func:`.metrics.trajectory` gives the finer picture."""
    from editlm.models.codefusion.metrics import trajectory

    rows = trajectory(pipe, pairs, record, steps, seed, batch_size, clamp, readout)
    return [(row["step"], row["edit_distance"]) for row in rows]
