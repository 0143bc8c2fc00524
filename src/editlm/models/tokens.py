"""Token rules shared by training and generation: the special tokens a prompt starts with, the end and pad
tokens a tokenizer must have, and the context length of a model.

One rule for BOS everywhere: a text is encoded as ``special_prefix(tokenizer) + tokenize(text)``, where the
prefix is what the tokenizer's own post-processor puts before a text (``<s>`` for CodeLlama and
DeepSeek-Coder, nothing for GPT-2, StarCoder, Qwen2, CodeGen, Pythia, Phi). Training rows and sampled
prompts therefore start the same way, and the post-processor's end tokens (some Llama tokenizers append
``</s>``) never end up in the middle of a prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)

_PROBE = "x = 1"
# Config attributes that hold a model's number of positions, by family.
_CONTEXT_ATTRIBUTES = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
ADDED_EOS = "<|endoftext|>"
ADDED_PAD = "<|pad|>"


class SpecialTokenError(ValueError):
    """A tokenizer lacks a token that training or generation needs (end of text, padding)."""


class ContextLengthError(ValueError):
    """A sequence longer than the model's context (its number of position embeddings)."""


def _around(tokenizer) -> tuple[list[int], list[int]]:
    plain = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(_PROBE, add_special_tokens=True)["input_ids"]
    for at in range(len(full) - len(plain) + 1):
        if full[at : at + len(plain)] == plain:
            return list(full[:at]), list(full[at + len(plain) :])
    return [], []  # a post-processor that rewrites the text itself: add nothing


def special_prefix(tokenizer) -> list[int]:
    """The token ids the tokenizer's post-processor puts before any text (``[bos]`` or ``[]``)."""
    cached = getattr(tokenizer, "_editlm_prefix", None)
    if cached is None:
        cached = _around(tokenizer)[0]
        try:
            tokenizer._editlm_prefix = cached
        except AttributeError:  # pragma: no cover - slotted tokenizer classes
            pass
    return list(cached)


def encode_prompts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Prompt ids exactly as training encodes a row's start: the special prefix, then the text's tokens
    (no end-of-text or other suffix)."""
    prefix = special_prefix(tokenizer)
    return [prefix + list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def prompt_batch(tokenizer, texts: Sequence[str]):
    """A left-padded ``input_ids``/``attention_mask`` batch (torch tensors) of :func:`encode_prompts`."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        return tokenizer.pad(
            {"input_ids": encode_prompts(tokenizer, texts)}, padding=True, return_tensors="pt"
        )
    finally:
        tokenizer.padding_side = side


def ensure_special_tokens(tokenizer, add: bool = True) -> list[str]:
    """Give ``tokenizer`` an end-of-text and a pad token, in place; returns what was done, one line each.

    Every sample ends with EOS (so a model learns to stop), and batches need a pad id. A missing pad
    becomes the EOS token (the usual stand-in; pad positions carry no loss). A missing EOS is added as a
    new special token ``<|endoftext|>`` when ``add`` (the caller must resize the model's embeddings), or
    is a :class:`SpecialTokenError` otherwise."""
    notes: list[str] = []
    if tokenizer.eos_token_id is None:
        if not add:
            raise SpecialTokenError(
                "the tokenizer has no end-of-text (EOS) token: samples could not end and generation could not "
                "stop; set tokenizer.eos_token in its tokenizer_config.json, or let training add one"
            )
        tokenizer.add_special_tokens({"eos_token": ADDED_EOS})
        notes.append(f"the tokenizer had no EOS token: added {ADDED_EOS!r} (id {tokenizer.eos_token_id})")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        notes.append(f"the tokenizer had no pad token: padding with its EOS token {tokenizer.eos_token!r}")
    for note in notes:
        log.warning(note)
    return notes


def context_length(config) -> int | None:
    """The number of positions a model config can embed, or None when it declares none."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in _CONTEXT_ATTRIBUTES:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_context(config, length: int, what: str = "seq_len") -> None:
    """Raise :class:`ContextLengthError` when ``length`` tokens do not fit the model's context."""
    limit = context_length(config)
    if limit is not None and length > limit:
        raise ContextLengthError(
            f"{what}={length} is longer than the model's context of {limit} positions "
            f"({getattr(config, 'model_type', 'model')}); set {what} to at most {limit}"
        )
