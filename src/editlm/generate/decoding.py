"""The decoding rules every engine shares: where a sample ends, what its logprob means, how a seeded
sample is drawn, and how drafts are taken from a prediction.

What a :class:`~editlm.generate.engines.Completion` says, in every engine:

- ``text``: the generated text, cut before the end token and before the earliest stop sequence;
- ``tokens``: how many tokens were generated, the end token or the token that completed the stop
  sequence included (that is where decoding stopped);
- ``logprob``: the sum over those tokens of the *raw* model log-probability, ``log_softmax(logits)``
  at temperature 1 with no top-p truncation, whatever the sampling settings were (so MBR-exec ties
  break the same way on every engine);
- ``finish``: ``"stop"`` (end token or stop sequence) or ``"length"`` (``max_new_tokens`` reached).

Seeded sampling (transformers engine): a token is drawn by inverse CDF from softmax(logits / T)
over the top-p nucleus, with a uniform that is a pure function of (seed, prompt, sample index,
step). So a sample depends on nothing else: not on the other prompts of a batch, the batch size, a
resume, or speculation (a draft token is accepted exactly when it is the token the plain decoder
would have drawn, so outputs are identical, not only equally distributed; this is the speculative
acceptance rule with a shared random stream, and its output is distributed as plain sampling).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_MASK63 = (1 << 63) - 1
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def sample_key(seed: int, prompt: str, index: int) -> int:
    """A 63-bit key naming sample ``index`` of ``prompt`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x00{index}\x00".encode() + prompt.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MASK63


def prompt_seed(seed: int, prompt: str) -> int:
    """A 31-bit seed for engines whose random generator is per call (CTranslate2)."""
    return sample_key(seed, prompt, -1) & 0x7FFFFFFF


def _splitmix64(z: int) -> int:
    z = (z + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def uniforms(keys: Sequence[int], steps: Sequence[int]) -> list[float]:
    """One uniform in (0, 1) per row, a pure function of (keys[r], steps[r]) (53 bits of SplitMix64)."""
    return [
        ((_splitmix64((key ^ ((step + 1) * _GOLDEN)) & _MASK63) >> 11) + 0.5) * 2.0**-53
        for key, step in zip(keys, steps, strict=True)
    ]


def choose_tokens(logits, temperature: float, top_p: float, keys: Sequence[int], steps: Sequence[int]):
    """The next token of each row of raw ``logits`` (rows, vocab): argmax for greedy, else an
    inverse-CDF draw from softmax(logits / temperature) restricted to the top-p nucleus, with the
    row's uniform from :func:`uniforms`.

    Written by hand because a sample must depend only on its own key: torch's samplers draw from one
    generator for the whole batch. One uniform per row (not one per vocabulary entry, as Gumbel-max
    needs) keeps the cost of keyed sampling at a cumsum and a binary search per row."""
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    probs = (logits.double() / temperature).softmax(-1)
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True, stable=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        probs = probs.masked_fill((probs.cumsum(-1) - probs) >= top_p, 0.0)
    cdf = probs.cumsum(-1)
    u = torch.tensor(uniforms(keys, steps), dtype=cdf.dtype, device=cdf.device)[:, None]
    index = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=cdf.shape[-1] - 1)
    return (order.gather(-1, index) if top_p < 1.0 else index)[:, 0]


def stop_hit(tokenizer, ids: Sequence[int], stops: Sequence[str]) -> bool:
    """Whether the text of ``ids`` contains a stop sequence that the last token completed. Decodes
    only a tail long enough to hold the longest stop (a token is at least one byte)."""
    if not stops or not ids:
        return False
    window = max(len(s.encode()) for s in stops) + 1
    tail = tokenizer.decode(list(ids[-window:]), skip_special_tokens=False)
    return any(s and s in tail for s in stops)


def finish(
    tokenizer,
    ids: Sequence[int],
    logprobs: Sequence[float] | None,
    end_ids: Sequence[int],
    stops: Sequence[str],
    max_new_tokens: int,
) -> tuple[str, int, float | None, str]:
    """``(text, tokens, logprob, finish)`` of generated ``ids`` under the rules above: decoding ends
    at the first end token or the first token that completes a stop sequence."""
    from editlm.generate.engines import cut_at_stop

    end, reason = len(ids), None
    ends = set(end_ids)
    for k, token in enumerate(ids):
        if token in ends:
            end, reason = k + 1, "eos"
            break
        if stops and stop_hit(tokenizer, ids[: k + 1], stops):
            end, reason = k + 1, "stop"
            break
    body = ids[: end - 1] if reason == "eos" else ids[:end]
    text, _ = cut_at_stop(tokenizer.decode(list(body), skip_special_tokens=False), tuple(stops))
    logprob = None if logprobs is None else float(sum(logprobs[:end]))
    if reason is None:
        return text, end, logprob, "length" if end >= max_new_tokens else "stop"
    return text, end, logprob, "stop"


class Drafter:
    """Prompt-lookup drafts from a prediction: the tokens that followed the longest recent n-gram
    (3, 2 then 1 tokens) where it last occurred in the prediction, preferring the continuation of
    the previous match so that a long copied region is proposed in order. Where the prediction has
    no match, the context itself (prompt and output so far) is searched the same way, as
    transformers' prompt lookup does: output that repeats itself or the prompt is drafted too."""

    def __init__(self, prediction_ids: Sequence[int], max_ngram: int = 3):
        self.pred = list(prediction_ids)
        self.max_ngram = max_ngram
        self.index: dict[tuple[int, ...], list[int]] = {}
        for g in range(1, max_ngram + 1):
            for end in range(g, len(self.pred)):
                self.index.setdefault(tuple(self.pred[end - g : end]), []).append(end)
        self.cursor = -1  # index in the prediction of the token expected after the last accepted draft
        self.start: int | None = -1  # where the last draft began in the prediction (None: in the context)

    def draft(self, context: Sequence[int], k: int) -> list[int]:
        if k <= 0 or not self.pred:
            return []
        if 0 <= self.cursor < len(self.pred) and context and self.pred[self.cursor] == context[-1]:
            start = self.cursor + 1
        else:
            start = None
            for g in range(min(self.max_ngram, len(context)), 0, -1):
                ends = self.index.get(tuple(context[-g:]))
                if ends:
                    after = [e for e in ends if e > self.cursor]
                    start = after[0] if after else ends[0]
                    break
            if start is None:
                self.start = None
                return self._from_context(context, k)
        self.start = start
        return self.pred[start : start + k]

    def _from_context(self, context: Sequence[int], k: int) -> list[int]:
        context = list(context)
        for g in range(min(self.max_ngram, len(context) - 1), 0, -1):
            tail = context[-g:]
            for start in range(len(context) - g - 1, -1, -1):  # the latest earlier occurrence
                if context[start : start + g] == tail:
                    return context[start + g : start + g + k]
        return []

    def advance(self, accepted: int) -> None:
        """``accepted`` tokens of the last draft were taken."""
        if self.start is not None:
            self.cursor = self.start + accepted
