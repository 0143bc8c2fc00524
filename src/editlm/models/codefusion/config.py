"""The CodeFusion hyperparameters, saved as ``codefusion_config.json`` beside the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

MODEL_TYPE = "codefusion"
OBJECTIVES = ("x0", "paper", "interpolate")


class ConfigError(ValueError):
    """A config that cannot describe a CodeFusion model."""


@dataclass
class CodeFusionConfig:
    """Sizes of E, N, D, H and L, and the diffusion process.

    The paper's model (~75M parameters) is ``hidden=512``, ``denoiser_layers=10``, ``decoder_layers=6``,
    ``target_length=128``, ``diffusion_steps=1200`` with a pre-trained CodeT5 encoder; the defaults here are
    those sizes with a small from-scratch encoder (``encoder_layers``), since CodeT5 cannot be downloaded.
    """

    vocab_size: int
    pad_token_id: int
    hidden: int = 512
    embed_dim: int = 512  # width of L(y), x_t, x0_hat and D's output (the space noise is added in)
    heads: int = 8
    encoder_layers: int = 6  # the small encoder E; unused when ``encoder`` names a HF encoder
    denoiser_layers: int = 10
    decoder_layers: int = 6
    target_length: int = 128  # n: programs are padded (or cut) to exactly this many tokens
    source_length: int = 128  # utterances are cut to this many tokens
    diffusion_steps: int = 1200
    schedule: str = "sqrt"
    dropout: float = 0.1
    encoder_vocab_size: int | None = None  # the small encoder's vocabulary (None: vocab_size)
    encoder_pad_token_id: int | None = None
    encoder: str | None = None  # "hf" when E is a Hugging Face encoder saved under ``encoder/``
    encoder_hidden: int | None = None  # that encoder's output width (projected to ``hidden``)
    # What N is trained on. "x0": ||x0_hat - L(y)||^2 with the same weight at every t, as GENIE (whose loss
    # CodeFusion adapts) trains it. "paper": ||eps_hat - eps||^2 as the paper writes L_t; with N predicting
    # x_0 this is the x_0 error weighted by SNR(t) (47 at t = 0, 4e-7 at t = T for the sqrt schedule), so
    # nearly all the weight falls on the first steps and the high-noise steps that sampling starts from go
    # untrained.
    # "interpolate": CDCD's score interpolation (Dieleman et al. 2022; not in the CodeFusion paper): N
    # predicts a distribution over tokens per position (through H), trained by cross-entropy, and x0_hat
    # is the expected row of L under it, so that it always lies among the embeddings.
    objective: str = "x0"
    # H's weights are L's table (logits = scale * D_s . L_v + b_v): D_s near L(v) reads as v, the
    # decoder term and the cross-entropy pull the same way, and grounding (rounding to the nearest L
    # row) and D + H agree. False: H is its own linear layer (the untied original).
    tie_head: bool = True
    # Every row of L is scaled to unit RMS (norm sqrt(embed_dim)), as far from its neighbours as the
    # unit-variance noise added to it, and it cannot shrink to make the x_0 error trivial.
    normalize_embeddings: bool = True
    # Self-conditioning (Chen et al. 2022, "Analog Bits"; used by CDCD and Plaid, not by the CodeFusion
    # paper): N also reads its own previous x0_hat (zeros at the first step; in training, half the
    # programs get N's no-grad prediction from the same x_t), so each step refines the last estimate
    # instead of starting again from x_t alone.
    self_condition: bool = False

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        for name in (
            "vocab_size",
            "hidden",
            "embed_dim",
            "target_length",
            "source_length",
            "diffusion_steps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id {self.pad_token_id} is outside the vocabulary ({self.vocab_size})"
            )
        if self.schedule != "sqrt":
            raise ConfigError(f"unknown noise schedule {self.schedule!r} (only 'sqrt' is implemented)")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {self.objective!r}; known: {', '.join(OBJECTIVES)}")
        if self.encoder not in (None, "hf"):
            raise ConfigError(f"unknown encoder kind {self.encoder!r}")

    @property
    def encoder_length(self) -> int:
        """The longest input E reads: utterances are cut at ``source_length``, but CPD's masked program
        is as long as a program (``target_length``), and must not be cut at the utterance length."""
        return max(self.source_length, self.target_length)

    def to_dict(self) -> dict:
        return {"model_type": MODEL_TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> CodeFusionConfig:
        if values.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ConfigError(f"model_type is {values.get('model_type')!r}, not {MODEL_TYPE!r}")
        known = {f.name for f in fields(cls)}
        if "objective" not in values:  # written before these settings existed: the original model
            values = {**values, "objective": "paper", "tie_head": False, "normalize_embeddings": False}
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CodeFusionConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{path}: not a CodeFusion config: {exc}") from exc
