"""Training: pre-training on code alone (unconditional generation and CPD, alternating), then
fine-tuning every part on (utterance, code) pairs. A plain PyTorch loop: L_t is not a causal-LM loss,
so the transformers Trainer would add nothing but indirection."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from editlm.models.codefusion.pipeline import CodeFusionPipeline
from editlm.models.codefusion.tasks import DEFAULT_MASK_RATE, CorpusError, mask_code


@dataclass
class TrainConfig:
    """Optimisation settings; the paper's AdamW learning rate is 5e-4 (unverified)."""

    pretrain_steps: int = 0
    finetune_steps: int = 1000
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    mask_rate: float = DEFAULT_MASK_RATE
    seed: int = 0
    # Pre-training trains N, D, L (and H, which the cross-entropy term needs); E stays frozen when it is
    # a pre-trained encoder, as in the paper. A from-scratch E is trained by the CPD task (None = auto).
    pretrain_encoder: bool | None = None
    # Before everything: this many masked-LM steps for the small from-scratch E alone, on the code and
    # the utterances (15% of tokens masked), so that E starts from a code encoder, not from noise.
    encoder_steps: int = 0
    encoder_mask_rate: float = 0.15
    # Keep E frozen while fine-tuning (None: frozen when it is a pre-trained Hugging Face encoder).
    freeze_encoder: bool | None = None
    log_every: int = 10


def _batches(count: int, batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Index batches from an endless stream of shuffled epochs."""
    order: list[int] = []
    while True:
        batch = []
        while len(batch) < batch_size:
            if not order:
                order = list(range(count))
                rng.shuffle(order)
            batch.append(order.pop())
        yield batch


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def train(
    pipe: CodeFusionPipeline,
    pairs: Sequence[tuple[str, str]],
    config: TrainConfig,
    pretrain_codes: Sequence[str] | None = None,
    progress: bool = True,
    on_log: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Pre-train (when ``pretrain_steps``) on ``pretrain_codes`` (default: the pairs' code), then fine-tune
    on ``pairs``. Returns the logged losses: dicts of phase, step, loss, eps, decoder, ce."""
    codes = list(pretrain_codes) if pretrain_codes is not None else [code for _, code in pairs]
    if config.finetune_steps and not pairs:
        raise CorpusError("no (utterance, code) pairs to fine-tune on")
    if config.pretrain_steps and not codes:
        raise CorpusError("no code to pre-train on")
    if config.batch_size < 1:
        raise ValueError(f"batch size must be positive, not {config.batch_size}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    total = config.encoder_steps + config.pretrain_steps + config.finetune_steps
    with _Bar(progress, total) as bar:
        if config.encoder_steps:
            if pipe.config.encoder == "hf":
                raise ValueError(
                    "encoder_steps pre-trains the small encoder; a Hugging Face E is pre-trained"
                )
            texts = [c for c in codes] + [u for u, _ in pairs if u.strip()]
            ids, mask = pipe.encode_source(texts, pipe.config.encoder_length)
            mask_id = pipe.encoder_tokenizer.convert_tokens_to_ids(pipe.mask_token)
            encoder = pipe.model.encoder

            def encoder_step(step: int, batch: list[int]) -> dict[str, torch.Tensor]:
                x, keep = ids[batch].to(pipe.device), mask[batch].to(pipe.device)
                chosen = (
                    torch.rand(x.shape, generator=generator).to(x.device) < config.encoder_mask_rate
                ) & keep
                chosen[:, 0] |= ~chosen.any(-1)  # every row predicts at least one token
                logits = encoder.mlm_logits(encoder(x.masked_fill(chosen, mask_id), keep))
                loss = torch.nn.functional.cross_entropy(logits[chosen], x[chosen])
                return {"loss": loss, "ce": loss}

            _run_phase(
                "encoder", config.encoder_steps, len(texts), encoder_step, list(encoder.parameters()), pipe,
                config, rng, bar, history, on_log,
            )  # fmt: skip
        if config.pretrain_steps:
            train_encoder = (
                pipe.config.encoder != "hf" if config.pretrain_encoder is None else config.pretrain_encoder
            )
            frozen = [] if train_encoder else _encoder_weights(pipe)
            frozen_ids = {id(p) for p in frozen}
            params = [p for p in pipe.model.parameters() if id(p) not in frozen_ids]
            code_ids = pipe.encode_code(codes)

            def pretrain_step(step: int, batch: list[int]) -> dict[str, torch.Tensor]:
                ids = code_ids[batch].to(pipe.device)
                if step % 2 == 0:  # (a) unconditional generation: E(s) is Gaussian noise
                    return pipe.model.loss(
                        ids, pipe.model.noise_memory(len(batch), generator), None, generator
                    )
                masked = [mask_code(codes[i], pipe.mask_token, config.mask_rate, rng)[0] for i in batch]
                # (b) CPD: E(s) = E(masked code), read in full (not cut at the utterance length)
                memory, mask = pipe.memory(masked, pipe.config.encoder_length)
                return pipe.model.loss(ids, memory, mask, generator)

            for p in frozen:  # no gradient is computed for E at all, rather than computed and unused
                p.requires_grad_(False)
            try:
                _run_phase(
                    "pretrain", config.pretrain_steps, len(codes), pretrain_step, params, pipe, config, rng, bar,
                    history, on_log,
                )  # fmt: skip
            finally:
                for p in frozen:
                    p.requires_grad_(True)
        if config.finetune_steps:
            code_ids = pipe.encode_code([code for _, code in pairs])
            utterances = [utterance for utterance, _ in pairs]

            freeze = pipe.config.encoder == "hf" if config.freeze_encoder is None else config.freeze_encoder
            frozen = _encoder_weights(pipe) if freeze else []

            def finetune_step(step: int, batch: list[int]) -> dict[str, torch.Tensor]:
                memory, mask = pipe.memory([utterances[i] for i in batch])
                return pipe.model.loss(code_ids[batch].to(pipe.device), memory, mask, generator)

            frozen_ids = {id(p) for p in frozen}
            params = [p for p in pipe.model.parameters() if id(p) not in frozen_ids]
            for p in frozen:
                p.requires_grad_(False)
            try:
                _run_phase(
                    "finetune", config.finetune_steps, len(pairs), finetune_step, params, pipe, config, rng, bar,
                    history, on_log,
                )  # fmt: skip
            finally:
                for p in frozen:
                    p.requires_grad_(True)
    pipe.model.eval()
    return history


def _encoder_weights(pipe: CodeFusionPipeline) -> list[torch.nn.Parameter]:
    """E's weights that a frozen E keeps: a Hugging Face encoder's own (its new projection to the model
    width still trains), or the whole small encoder."""
    encoder = pipe.model.encoder
    return list(getattr(encoder, "model", encoder).parameters())


def _run_phase(phase, steps, count, step_fn, params, pipe, config, rng, bar, history, on_log) -> None:
    """``steps`` optimiser steps of AdamW on ``params`` with losses from ``step_fn(step, batch)``."""
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    warmup = min(config.warmup_steps, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, steps, warmup))
    pipe.model.train()
    batches = _batches(count, config.batch_size, rng)
    for step in range(steps):
        losses = step_fn(step, next(batches))
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        if step % config.log_every == 0 or step == steps - 1:
            record = {"phase": phase, "step": step + 1, **{k: float(v.detach()) for k, v in losses.items()}}
            history.append(record)
            if on_log is not None:
                on_log(record)
            bar.describe(f"{phase} loss {record['loss']:.3f} (ce {record.get('ce', 0.0):.3f})")
        bar.advance()


class _Bar:
    """A rich progress bar over all optimiser steps, or nothing when ``enabled`` is false."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            )
            self.progress.start()
            self.task = self.progress.add_task("codefusion", total=self.total)
        return self

    def describe(self, text: str) -> None:
        if self.enabled:
            self.progress.update(self.task, description=text)

    def advance(self) -> None:
        if self.enabled:
            self.progress.advance(self.task)

    def __exit__(self, *_) -> None:
        if self.enabled:
            self.progress.stop()
