"""Models: tokenizers, model presets and loading of local Hugging Face checkpoints.

Importing this package is light: torch, transformers and tokenizers load inside the functions.
"""

from editlm.models.loading import NotACausalLMError, load_config, load_model, load_tokenizer, save_checkpoint
from editlm.models.presets import PRESETS, init_model, preset_config
from editlm.models.tokenizer import SPECIAL_TOKENS, EmptyCorpusError, stdlib_texts, train_tokenizer

__all__ = [
    "PRESETS",
    "SPECIAL_TOKENS",
    "EmptyCorpusError",
    "NotACausalLMError",
    "init_model",
    "load_config",
    "load_model",
    "load_tokenizer",
    "preset_config",
    "save_checkpoint",
    "stdlib_texts",
    "train_tokenizer",
]
