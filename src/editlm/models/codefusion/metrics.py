"""Metrics along the denoising trajectory that tell content from length.

A falling edit distance can come from the program getting *longer* (an empty output is at distance 1
from anything, a program of about the right length at less, whatever it says). So beside the mean
normalised edit distance, every recorded step reports:

- ``token_accuracy``: the share of the answer's token positions (its tokens and the pad that ends it)
  where the program read after that step has the same token: content, position by position;
- ``length``: mean length in characters of the programs read (``reference_length``: of the answers);
- ``by_length``: the mean normalised edit distance per bucket of answer length (in tokens), so that
  buckets of short and long programs are not mixed;
- ``exact``: the share of programs equal to the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from editlm.models.codefusion.pipeline import CodeFusionPipeline

BUCKETS = ((1, 16), (17, 32), (33, 64), (65, 10**9))


def bucket_name(tokens: int) -> str:
    for low, high in BUCKETS:
        if low <= tokens <= high:
            return f"{low}-{high}" if high < 10**9 else f"{low}+"
    return "0"


def token_accuracy(predicted: torch.Tensor, answer: torch.Tensor, pad: int) -> float:
    """Share of the answer's positions (its tokens and the first pad, if within the length) that match."""
    length = int((answer != pad).sum())
    upto = min(length + 1, answer.shape[0])
    return float((predicted[:upto] == answer[:upto]).float().mean()) if upto else 1.0


def trajectory(
    pipe: CodeFusionPipeline,
    pairs: Sequence[tuple[str, str]],
    record: Sequence[int],
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    clamp: str | None = None,
    readout: str = "decoder",
) -> list[dict]:
    """One dict per recorded step: step, edit_distance, token_accuracy, length, reference_length,
    exact, by_length ({bucket: mean edit distance}). Row j of ``pairs`` uses seed ``seed + j``."""
    from rapidfuzz.distance import Levenshtein

    from editlm.models.codefusion.sampling import denoise

    if not pairs:
        raise ValueError("no (utterance, code) pairs to measure")
    pad = pipe.config.pad_token_id
    answers = pipe.encode_code([code for _, code in pairs])
    lengths = [int((row != pad).sum()) for row in answers]
    sums = {s: {"edit_distance": 0.0, "token_accuracy": 0.0, "length": 0.0, "exact": 0.0} for s in record}
    buckets: dict[int, dict[str, list[float]]] = {s: {} for s in record}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seeds = [seed + start + j for j in range(len(chunk))]
        _, snapshots = denoise(pipe, [u for u, _ in chunk], seeds, steps, record, clamp, readout)
        for step in record:
            for j, (row, (_, code)) in enumerate(zip(snapshots[step], chunk, strict=True)):
                program = pipe.decode_ids(row)
                distance = Levenshtein.normalized_distance(program, code)
                total = sums[step]
                total["edit_distance"] += distance
                total["token_accuracy"] += token_accuracy(row, answers[start + j], pad)
                total["length"] += len(program)
                total["exact"] += program == code
                buckets[step].setdefault(bucket_name(lengths[start + j]), []).append(distance)
    reference = sum(len(code) for _, code in pairs) / len(pairs)
    return [
        {
            "step": step,
            **{k: v / len(pairs) for k, v in sums[step].items()},
            "reference_length": reference,
            "by_length": {name: sum(v) / len(v) for name, v in sorted(buckets[step].items())},
        }
        for step in record
    ]


def first_step_confidence(pipe: CodeFusionPipeline, pairs: Sequence[tuple[str, str]], seed: int = 0) -> dict:
    """How sure the model is of its first program, read (D + H) off N's estimate from pure noise x_T,
    on the answer's positions (its tokens and the pad that ends it), with seed ``seed + j`` for row j:

    - ``argmax_accuracy``: the share of positions whose most likely token is the answer's (the first
      step's token accuracy);
    - ``confidence``: the mean probability of the most likely token (above ``argmax_accuracy``: the
      model is surer than it is right);
    - ``sampled_accuracy``: the mean probability of the answer's token, i.e. the expected accuracy of a
      token drawn at each position from that distribution. A sampler that draws a program from the
      model, rather than taking its most likely tokens, cannot be expected to do better than a draw
      from what the model believes at the start, unless later steps make it surer.
    """
    from editlm.models.codefusion.sampling import _randn

    if not pairs:
        raise ValueError("no (utterance, code) pairs to measure")
    model, config = pipe.model, pipe.config
    pad = config.pad_token_id
    answers = pipe.encode_code([code for _, code in pairs])
    totals = {"argmax_accuracy": 0.0, "confidence": 0.0, "sampled_accuracy": 0.0}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            memory, mask = pipe.memory([u for u, _ in pairs])
            generators = [torch.Generator().manual_seed(seed + j) for j in range(len(pairs))]
            x_T = _randn(generators, (config.target_length, config.embed_dim), model.device)  # as denoise
            t = torch.full((len(pairs),), config.diffusion_steps - 1, dtype=torch.long, device=model.device)
            probs = model.decode(model.denoise(x_T, t, memory, mask), memory, mask)[1].softmax(-1).cpu()
    finally:
        model.train(was_training)
    for j, answer in enumerate(answers):
        upto = min(int((answer != pad).sum()) + 1, config.target_length)
        p, ref = probs[j, :upto], answer[:upto]
        totals["argmax_accuracy"] += float((p.argmax(-1) == ref).float().mean())
        totals["confidence"] += float(p.max(-1).values.mean())
        totals["sampled_accuracy"] += float(p[torch.arange(upto), ref].mean())
    return {k: v / len(pairs) for k, v in totals.items()}
