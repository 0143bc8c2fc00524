"""Training: pretraining and loss-masked fine-tuning (transformers Trainer, packed rows, TOML recipes)."""

from editlm.train.config import ConfigError, PretrainConfig, SFTConfig, load_config, make_config
from editlm.train.data import DataError
from editlm.train.run import pretrain, sft

__all__ = [
    "ConfigError",
    "DataError",
    "PretrainConfig",
    "SFTConfig",
    "load_config",
    "make_config",
    "pretrain",
    "sft",
]
