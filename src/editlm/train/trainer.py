"""The transformers Trainer, with logits computed only where the loss is taken.

With the prompt masked, most positions of an SFT batch carry no loss; the LM head and its softmax over
the whole vocabulary are a large share of a small model's work, so running them only on the loss
positions trains faster with exactly the same loss and gradients. Anything unusual (multi-process
wrappers, final-logit soft-capping, models not in the list) takes the stock path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Trainer

from editlm.train.data import IGNORE

# Architectures whose logits are exactly ``lm_head(last_hidden_state)``.
PLAIN_HEAD_MODELS = frozenset(
    {
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "starcoder2",
        "gpt2",
        "gpt_bigcode",
        "gpt_neox",
        "olmo",
        "olmo2",
        "phi3",
    }
)


def sparse_head_parts(model):
    """(decoder, lm_head) when logits are a plain projection of the decoder's last hidden state, else None."""
    if hasattr(model, "get_base_model"):  # PEFT: LoRA layers live inside the base model's modules
        model = model.get_base_model()
    config = getattr(model, "config", None)
    if config is None or config.model_type not in PLAIN_HEAD_MODELS:
        return None
    if any(
        getattr(config, name, None) for name in ("final_logit_softcapping", "logit_scale", "logits_scaling")
    ):
        return None
    decoder = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings()
    if not isinstance(decoder, torch.nn.Module) or head is None:
        return None
    return decoder, head


def masked_lm_loss(decoder, head, inputs: dict, num_items: int | torch.Tensor | None = None) -> torch.Tensor:
    """Next-token cross-entropy summed over positions whose label is not -100, divided by ``num_items``
    (default: their count); the LM head runs on those positions only."""
    labels = inputs["labels"]
    rest = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = decoder(**rest).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    total = F.cross_entropy(logits, targets[keep], reduction="sum")
    denominator = num_items if num_items is not None else keep.sum().clamp(min=1)
    return total / denominator


class MaskedLMTrainer(Trainer):
    """``Trainer`` whose training loss computes logits only on labelled positions (same value)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        parts = None
        single = self.accelerator.num_processes == 1 and self.accelerator.unwrap_model(model) is model
        if single and not return_outputs and "labels" in inputs:
            parts = sparse_head_parts(model)
        if parts is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not self.model_accepts_loss_kwargs:
            num_items_in_batch = None  # the stock path would average per batch too
        return masked_lm_loss(*parts, inputs, num_items_in_batch)


SEGMENT_ATTENTION = "editlm_segments"


def segment_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Causal attention within each packed sample only, in training.

    A packed row holds several samples; the stock path attends over the whole row under a block-diagonal
    mask, paying for every cross-sample pair it then throws away (most of the row on a small model).
    Here each sample is its own causal ``scaled_dot_product_attention`` call, found from where the
    ``position_ids`` restart. Outside training (eval, generation) it is exactly the stock SDPA path.
    Written by hand because variable-length attention in the libraries (flash-attn) needs a GPU.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    if not module.training or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    batch, heads, length, _ = query.shape
    if position_ids.shape[0] != batch:
        position_ids = position_ids.expand(batch, -1)
    restarts = (torch.diff(position_ids, dim=-1) != 1).cpu()
    gqa = key.shape[1] != heads
    rows = []
    for b in range(batch):
        cuts = [0, *(torch.nonzero(restarts[b]).flatten() + 1).tolist(), length]
        pieces = [
            F.scaled_dot_product_attention(
                query[b : b + 1, :, s:e],
                key[b : b + 1, :, s:e],
                value[b : b + 1, :, s:e],
                is_causal=True,
                scale=scaling,
                dropout_p=dropout,
                enable_gqa=gqa,
            )  # fmt: skip
            for s, e in zip(cuts, cuts[1:], strict=False)
        ]
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows, dim=0).transpose(1, 2).contiguous(), None


def use_segment_attention(model) -> bool:
    """Switch a plain-head model to :func:`segment_attention` for training; False where it does not apply."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(target.config, "model_type", None) not in PLAIN_HEAD_MODELS or target.config.model_type in (
        "gpt2", "gpt_bigcode", "gpt_neox",  # their attention takes no position_ids
    ):  # fmt: skip
        return False
    AttentionInterface.register(SEGMENT_ATTENTION, segment_attention)
    AttentionMaskInterface.register(SEGMENT_ATTENTION, sdpa_mask)
    try:
        target.set_attn_implementation(SEGMENT_ATTENTION)
    except (ValueError, ImportError, AttributeError):
        return False
    return True
