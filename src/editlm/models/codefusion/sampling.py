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
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Token ids (batch, target_length) of the final programs, and of the programs that D and H read off
    x0_hat after each step number in ``record`` (1..steps; ``steps`` itself is the final program).

    ``utterances``: one per seed, or None for unconditional generation (E(s) is then Gaussian noise,
    drawn anew at every step as in pre-training). ``clamp``: None (the paper: N alone until the end),
    "nearest" (Diffusion-LM's clamping of x0_hat to the nearest row of L) or "decoder" (to the L row of
    the token D and H read), for the paper's ablation of D against clamping.
    """
    if clamp not in CLAMPS:
        raise ValueError(f"clamp must be one of {CLAMPS}, not {clamp!r}")
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
        for done, i in enumerate(reversed(range(total)), start=1):
            step_memory = memory
            if utterances is None:
                step_memory = _randn(generators, (config.source_length, config.hidden), device)
            t = torch.full((batch,), schedule.timesteps[i], dtype=torch.long, device=device)
            x0_hat = model.denoise(x, t, step_memory, mask)
            if clamp == "nearest":  # Diffusion-LM's clamping trick: snap to the nearest token embedding
                weight = model.embedding.weight
                x0_hat = weight[torch.cdist(x0_hat, weight[None].expand(batch, -1, -1)).argmin(-1)]
            elif clamp == "decoder":  # snap to the embedding of the token that D and H read
                x0_hat = model.embedding(model.decode(x0_hat, step_memory, mask)[1].argmax(-1))
            if done in record:
                snapshots[done] = model.decode(x0_hat, step_memory, mask)[1].argmax(-1).cpu()
            noise = _randn(generators, (config.target_length, config.embed_dim), device) if i > 0 else None
            x = schedule.p_sample(x, i, x0_hat, noise)
        if utterances is None:
            step_memory = _randn(generators, (config.source_length, config.hidden), device)
        final = model.decode(x, step_memory, mask)[1].argmax(-1).cpu()
    finally:
        model.train(was_training)
    return final, snapshots


def sample(
    pipe: CodeFusionPipeline,
    utterance: str | None,
    k: int = 1,
    steps: int | None = None,
    seed: int = 0,
    clamp: str | None = None,
) -> list[str]:
    """Top-k programs for ``utterance`` (None: unconditional), from seeds seed, seed + 1, ..., seed + k - 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    seeds = list(range(seed, seed + k))
    ids, _ = denoise(pipe, None if utterance is None else [utterance] * k, seeds, steps, clamp=clamp)
    return [pipe.decode_ids(row) for row in ids]


def sample_steps(
    pipe: CodeFusionPipeline,
    utterance: str | None,
    record: Sequence[int],
    steps: int | None = None,
    seed: int = 0,
    clamp: str | None = None,
) -> list[tuple[int, str]]:
    """(step, program) for each requested step: what D and H make of x0_hat after that many steps."""
    _, snapshots = denoise(pipe, None if utterance is None else [utterance], [seed], steps, record, clamp)
    return [(step, pipe.decode_ids(snapshots[step][0])) for step in record]


def edit_distance_curve(
    pipe: CodeFusionPipeline,
    pairs: Sequence[tuple[str, str]],
    record: Sequence[int],
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    clamp: str | None = None,
) -> list[tuple[int, float]]:
    """Mean normalised Levenshtein distance between the program after each recorded step and the answer
    (the paper's "gradual improvement" curve: it should fall as denoising proceeds)."""
    from rapidfuzz.distance import Levenshtein

    if not pairs:
        raise ValueError("no (utterance, code) pairs to measure")
    totals = dict.fromkeys(record, 0.0)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seeds = [seed + start + j for j in range(len(chunk))]
        _, snapshots = denoise(pipe, [u for u, _ in chunk], seeds, steps, record, clamp)
        for step in record:
            for row, (_, code) in zip(snapshots[step], chunk, strict=True):
                totals[step] += Levenshtein.normalized_distance(pipe.decode_ids(row), code)
    return [(step, totals[step] / len(pairs)) for step in record]
