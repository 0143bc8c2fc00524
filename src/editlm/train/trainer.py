"""The trainer: TRL's ``SFTTrainer``, plus editlm's per-sample attention for packed rows.

TRL does the rest of what editlm used to hand-write: best-fit packing (``pack_dataset``), the
padding-free collator (position ids that restart per sample, ``cu_seq_lens``), completion-only labels,
token-level loss averaging over gradient accumulation, and a fused LM head that projects only the
positions whose label is not -100 (the same saving as editlm's old "logits on loss positions" path).

What editlm keeps: :func:`segment_attention`. Under TRL's padding-free batches, transformers' SDPA path
attends over the whole flattened batch under a block-diagonal mask, paying for every cross-sample pair
it then throws away; here each sample is its own causal SDPA call, and the (tokens x tokens) mask is
never built. ``benchmarks/train_speed.py --quick`` (tiny preset, seq_len 1024, batch 8, CPU, load 2.4):
5,679 useful tokens/s and 1,627 MiB peak against 1,753 tokens/s and 2,645 MiB for TRL's packed
padding-free path on stock SDPA (3.2x wall, 2.8x CPU time; only 1.27x on a machine at load 28).
Written by hand because variable-length attention in the libraries (flash-attn) needs a GPU; with
``attn_implementation="flash_attention_2"`` on a GPU the library's kernel is used instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from trl import SFTTrainer

SEGMENT_ATTENTION = "editlm_segments"

# Families whose attention goes through transformers' attention interface with (batch, heads, length,
# dim) tensors, and whose training with segment attention is tested in tests/test_train_families.py.
SEGMENT_FAMILIES = frozenset(
    {
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "starcoder2",
        "gpt2",
        "gpt_bigcode",
        "gpt_neox",
        "codegen",
        "phi",
        "phi3",
        "olmo",
        "olmo2",
    }
)


class EditlmTrainer(SFTTrainer):
    """TRL's ``SFTTrainer`` on editlm's already tokenized, loss-masked (and packed) rows."""


def _window_mask(length: int, window: int, device) -> torch.Tensor:
    """Causal attention limited to the last ``window`` positions (transformers' convention: query i sees
    key j when ``i - window < j <= i``)."""
    i = torch.arange(length, device=device)
    offset = i[:, None] - i[None, :]
    return (offset >= 0) & (offset < window)


def _cuts(query: torch.Tensor, kwargs: dict) -> list[list[int]]:
    """Per batch row, the sample boundaries: from TRL's ``cu_seq_lens_q`` (padding-free batch of one row)
    or from where the position ids restart."""
    batch, _, length, _ = query.shape
    cu = kwargs.get("cu_seq_lens_q")
    if cu is not None and batch == 1 and int(cu[-1]) == length:
        return [[int(c) for c in cu.tolist()]]
    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        return [[0, length] for _ in range(batch)]
    if position_ids.shape[0] != batch:
        position_ids = position_ids.expand(batch, -1)
    restarts = (torch.diff(position_ids, dim=-1) != 1).cpu()
    return [[0, *(torch.nonzero(restarts[b]).flatten() + 1).tolist(), length] for b in range(batch)]


def segment_attention(
    module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None, **kwargs
):
    """Causal attention within each packed sample only (and within the layer's sliding window, if any).

    Used where there is no padding mask (padding-free or packed batches: the mask function below gives
    None there); anything else (padded batches, generation with a cache) is the stock SDPA path."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    window = sliding_window or None
    gqa = key.shape[1] != query.shape[1]
    dropout = dropout if module.training else 0.0
    rows = []
    for b, cuts in enumerate(_cuts(query, kwargs)):
        pieces = []
        for s, e in zip(cuts, cuts[1:], strict=False):
            if e <= s:
                continue
            banded = window is not None and e - s > window
            pieces.append(
                F.scaled_dot_product_attention(
                    query[b : b + 1, :, s:e], key[b : b + 1, :, s:e], value[b : b + 1, :, s:e],
                    attn_mask=_window_mask(e - s, window, query.device) if banded else None,
                    is_causal=not banded, scale=scaling, dropout_p=dropout, enable_gqa=gqa,
                )
            )  # fmt: skip
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows, dim=0).transpose(1, 2).contiguous(), None


def segment_mask(*args, attention_mask=None, **kwargs):
    """The mask for :func:`segment_attention`: none when there is no padding mask (the attention finds the
    samples itself, so the (tokens x tokens) block-diagonal mask is never built), else SDPA's mask."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def use_segment_attention(model) -> bool:
    """Switch a model of a supported family to :func:`segment_attention`; False where it does not apply."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(target.config, "model_type", None) not in SEGMENT_FAMILIES:
        return False
    AttentionInterface.register(SEGMENT_ATTENTION, segment_attention)
    AttentionMaskInterface.register(SEGMENT_ATTENTION, segment_mask)
    try:
        target.set_attn_implementation(SEGMENT_ATTENTION)
    except (ValueError, ImportError, AttributeError):
        return False
    return True
