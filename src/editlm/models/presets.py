"""Model presets: Llama-shaped causal LMs built from transformers' own ``LlamaConfig``.

From ``test`` (trains in seconds on a laptop CPU) to the shapes of LintSeq's TinyCodeLM-150M and
-400M (seed 000; the exact shapes are not published in the seed, these match the parameter counts
with a GPT-2-like width/depth). The vocabulary size always comes from the tokenizer.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "test": dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=512),
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                 max_position_embeddings=1024),
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                  max_position_embeddings=1024),
    "tinycodelm-150m": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, max_position_embeddings=1024),
    "tinycodelm-400m": dict(hidden_size=1024, intermediate_size=3584, num_hidden_layers=24,
                            num_attention_heads=16, max_position_embeddings=1024),
}  # fmt: skip


def preset_config(name: str, tokenizer, **overrides: Any):
    """A ``LlamaConfig`` for preset ``name`` sized to ``tokenizer``'s vocabulary and special tokens."""
    from transformers import LlamaConfig

    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}")
    settings = dict(PRESETS[name])
    settings.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        attention_dropout=0.0,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


def init_model(name: str, tokenizer, seed: int = 0, **overrides: Any):
    """A freshly initialised (seeded) causal LM of preset ``name`` for ``tokenizer``."""
    import torch
    from transformers import AutoModelForCausalLM

    config = preset_config(name, tokenizer, **overrides)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


def count_parameters(model) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
