"""The CodeFusion network: encoder E, denoiser N, decoder D, head H and code embedding L.

    utterance s --E--> E(s) ------------------------------+---------------------+
                                                          | cross-attention     | cross-attention
    code y --L--> x_0 --(+ noise at t)--> x_t --N(x_t, t)--> x0_hat --D--> D_s --H--> p(y | D_s)

N runs T times at inference (:mod:`.sampling`); D and H run once at the end.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from editlm.models.codefusion.config import CodeFusionConfig
from editlm.models.codefusion.layers import Stack, timestep_embedding
from editlm.models.codefusion.schedule import NoiseSchedule

CONFIG_NAME = "codefusion_config.json"  # not config.json: HF tools would read it as theirs
WEIGHTS_NAME = "model.safetensors"
ENCODER_DIR = "encoder"  # a Hugging Face encoder's config (and tokenizer) when E is one


class SmallEncoder(nn.Module):
    """E trained from scratch: token embeddings and bidirectional self-attention over the utterance."""

    def __init__(self, config: CodeFusionConfig):
        super().__init__()
        vocab = config.encoder_vocab_size or config.vocab_size
        self.tokens = nn.Embedding(vocab, config.hidden)
        self.stack = Stack(
            config.encoder_layers,
            config.hidden,
            config.heads,
            config.dropout,
            config.encoder_length,
            cross=False,
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.stack(self.tokens(ids), self_mask=mask)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits over E's own vocabulary (its token table tied as the output layer)."""
        return hidden @ self.tokens.weight.t()


class HFEncoder(nn.Module):
    """E as any local Hugging Face encoder (the encoder half of an encoder-decoder such as CodeT5),
    projected to the model width."""

    def __init__(self, model: nn.Module, hidden: int):
        super().__init__()
        self.model = model
        self.proj = nn.Linear(model.config.hidden_size, hidden)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state)


class Denoiser(nn.Module):
    """N: self-attention over x_t (plus the time embedding), cross-attention to E(s); predicts x_0."""

    def __init__(self, config: CodeFusionConfig):
        super().__init__()
        self.hidden = config.hidden
        self.in_proj = nn.Linear(config.embed_dim * (2 if config.self_condition else 1), config.hidden)
        self.time_mlp = nn.Sequential(
            nn.Linear(config.hidden, 4 * config.hidden),
            nn.SiLU(),
            nn.Linear(4 * config.hidden, config.hidden),
        )
        self.stack = Stack(
            config.denoiser_layers,
            config.hidden,
            config.heads,
            config.dropout,
            config.target_length,
            cross=True,
        )
        self.out_proj = nn.Linear(config.hidden, config.embed_dim)

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.in_proj(x_t) + self.time_mlp(timestep_embedding(t, self.hidden))[:, None, :]
        return self.out_proj(self.stack(h, None, memory, memory_mask))


class Decoder(nn.Module):
    """D: self-attention over x0_hat, cross-attention to E(s); its output D_s lives in L's space."""

    def __init__(self, config: CodeFusionConfig):
        super().__init__()
        self.in_proj = nn.Linear(config.embed_dim, config.hidden)
        self.stack = Stack(
            config.decoder_layers,
            config.hidden,
            config.heads,
            config.dropout,
            config.target_length,
            cross=True,
        )
        self.out_proj = nn.Linear(config.hidden, config.embed_dim)

    def forward(
        self, x0_hat: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None
    ) -> torch.Tensor:
        return self.out_proj(self.stack(self.in_proj(x0_hat), None, memory, memory_mask))


class CodeFusion(nn.Module):
    """The whole model; :meth:`loss` is one training step's L_t, the sampler lives in :mod:`.sampling`."""

    def __init__(self, config: CodeFusionConfig, hf_encoder: nn.Module | None = None):
        super().__init__()
        if (config.encoder == "hf") != (hf_encoder is not None):
            raise ValueError("config.encoder == 'hf' exactly when a Hugging Face encoder module is given")
        self.config = config
        self.encoder = (
            HFEncoder(hf_encoder, config.hidden) if hf_encoder is not None else SmallEncoder(config)
        )
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)  # L
        self.denoiser = Denoiser(config)  # N
        self.decoder = Decoder(config)  # D
        if config.tie_head:  # H reads D_s against L's rows; only a scale and a bias are its own
            self.head_bias = nn.Parameter(torch.zeros(config.vocab_size))
            self.head_scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(config.embed_dim)))
        else:
            self.head = nn.Linear(config.embed_dim, config.vocab_size)  # H
        self.schedule = NoiseSchedule.sqrt(config.diffusion_steps)
        self._init_weights(skip=hf_encoder)

    def table(self) -> torch.Tensor:
        """L's rows as the diffusion sees them (unit RMS when ``normalize_embeddings``)."""
        weight = self.embedding.weight
        if self.config.normalize_embeddings:
            weight = F.normalize(weight, dim=-1) * math.sqrt(self.config.embed_dim)
        return weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """x_0 = L(y)."""
        return F.embedding(ids, self.table())

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """H(D_s)."""
        if self.config.tie_head:
            return self.head_scale * (hidden @ self.table().t()) + self.head_bias
        return self.head(hidden)

    def round(self, x: torch.Tensor) -> torch.Tensor:
        """Grounding: the token of the nearest row of L for every position (no D, no H)."""
        table = self.table()
        distances = (x * x).sum(-1, keepdim=True) - 2 * x @ table.t() + (table * table).sum(-1)
        return distances.argmin(-1)

    def _init_weights(self, skip: nn.Module | None) -> None:
        """nanoGPT's N(0, 0.02) for linear layers and positions; L starts at N(0, 1) like Diffusion-LM's
        embeddings, so that tokens are as far apart as the unit-variance noise added to them."""
        kept = set() if skip is None else {id(p) for p in skip.parameters()}
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding) and id(module.weight) not in kept:
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=1.0)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """E(s) for token ids (batch, source_length) and their attention mask (True at real tokens)."""
        return self.encoder(ids, mask)

    def noise_memory(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The Gaussian stand-in for E(s) in unconditional generation (drawn anew at every step)."""
        shape = (batch, self.config.source_length, self.config.hidden)
        return torch.randn(shape, generator=generator).to(self.device)

    def denoise(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x0_hat = N(x_t, t, E(s)); with ``config.self_condition`` N also reads ``previous``, its last
        x0_hat (None: zeros, as at the first step)."""
        out = self._denoiser(x_t, t, memory, memory_mask, previous)
        if self.config.objective == "interpolate":
            return self.logits(out).softmax(-1) @ self.table()
        return out

    def _denoiser(self, x_t, t, memory, memory_mask, previous):
        """N's own output: x0_hat, or (objective "interpolate") the vector H reads token logits from."""
        if self.config.self_condition:
            x_t = torch.cat([x_t, torch.zeros_like(x_t) if previous is None else previous], dim=-1)
        return self.denoiser(x_t, t.to(x_t.device), memory, memory_mask)

    def decode(
        self, x0_hat: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """D_s = D(x0_hat, E(s)) and the logits H(D_s) over code tokens."""
        hidden = self.decoder(x0_hat, memory, memory_mask)
        return hidden, self.logits(hidden)

    def loss(
        self,
        code_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """L_t at a uniformly drawn t per program: a diffusion term + ||D_s - L(y)|| - log p(y | D_s).

        The diffusion term depends on ``config.objective``: "x0" is the mean squared error of x0_hat
        against x_0 = L(y) (uniform in t, GENIE's choice); "interpolate" the cross-entropy of N's token
        distribution (x0_hat is its expected row of L); "paper" is the paper's ||eps_hat - eps||, with
        eps_hat the noise N's x_0 prediction implies, ``(x_t - sqrt(alpha_bar_t) x0_hat) /
        sqrt(1 - alpha_bar_t)`` (which weights the x_0 error by SNR(t)). The norms are mean squared
        errors per element; the log-likelihood is the mean token cross-entropy over all
        ``target_length`` positions, pads included (the model must learn where a program ends).
        Gradients reach L through x_0 and through the target of the second term ("to train D and L").
        """
        batch = code_ids.shape[0]
        x0 = self.embed(code_ids)
        t = torch.randint(0, self.schedule.num_steps, (batch,), generator=generator).to(x0.device)
        eps = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = self.schedule.q_sample(x0, t, eps)
        previous = None
        if self.config.self_condition:  # half the programs see N's own no-grad estimate from this x_t
            with torch.no_grad():
                guess = self.denoise(x_t, t, memory, memory_mask)
            keep = torch.rand((batch, 1, 1), generator=generator).to(x0.device) < 0.5
            previous = guess * keep
        if self.config.objective == "interpolate":
            token_logits = self.logits(self._denoiser(x_t, t, memory, memory_mask, previous))
            x0_hat = token_logits.softmax(-1) @ self.table()
            first = {"tokens": F.cross_entropy(token_logits.flatten(0, 1), code_ids.flatten())}
        else:
            x0_hat = self.denoise(x_t, t, memory, memory_mask, previous)
        if self.config.objective == "x0":
            first = {"x0": F.mse_loss(x0_hat, x0)}
        elif self.config.objective == "paper":
            first = {"eps": F.mse_loss(self.schedule.eps_from_x0(x_t, t, x0_hat), eps)}
        hidden, logits = self.decode(x0_hat, memory, memory_mask)
        terms = {
            **first,
            "decoder": F.mse_loss(hidden, x0),
            "ce": F.cross_entropy(logits.flatten(0, 1), code_ids.flatten()),
        }
        return {"loss": sum(terms.values()), **terms}

    def save_pretrained(self, out_dir: str | Path) -> None:
        """codefusion_config.json and model.safetensors (and ``encoder/config.json`` for a Hugging Face encoder)."""
        from safetensors.torch import save_model

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(out_dir / CONFIG_NAME)
        if isinstance(self.encoder, HFEncoder):
            self.encoder.model.config.save_pretrained(out_dir / ENCODER_DIR)
        save_model(self, str(out_dir / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None) -> CodeFusion:
        from safetensors.torch import load_model

        path = Path(path)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: no {name}, so not a CodeFusion checkpoint")
        config = CodeFusionConfig.load(path / CONFIG_NAME)
        hf_encoder = None
        if config.encoder == "hf":
            from transformers import AutoConfig

            hf_encoder = hf_encoder_from_config(
                AutoConfig.from_pretrained(path / ENCODER_DIR, local_files_only=True)
            )
        model = cls(config, hf_encoder)
        load_model(model, str(path / WEIGHTS_NAME), strict=True, device="cpu")
        return model.to(device or default_device()).eval()


def hf_encoder_from_config(hf_config) -> nn.Module:
    """A randomly initialised encoder for a Hugging Face config (weights are loaded afterwards)."""
    from transformers import AutoModel

    model = AutoModel.from_config(hf_config)
    return model.get_encoder() if getattr(hf_config, "is_encoder_decoder", False) else model


def load_hf_encoder(path: str | Path) -> nn.Module:
    """The pre-trained encoder of a local Hugging Face model directory (nothing is downloaded)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path, local_files_only=True)
    return model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
