"""A CodeFusion model with its tokenizers: text in, token tensors, text out, and the checkpoint directory.

A checkpoint is ``codefusion_config.json`` + ``model.safetensors`` + the code tokenizer's files, and, when E is a
Hugging Face encoder, ``encoder/`` with that encoder's config and tokenizer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from editlm.models.codefusion.config import CodeFusionConfig
from editlm.models.codefusion.model import ENCODER_DIR, CodeFusion, default_device, load_hf_encoder

MASK_TOKEN = "<|mask|>"


class CodeFusionPipeline:
    """The model, the code tokenizer (targets) and the utterance tokenizer (E's input)."""

    def __init__(self, model: CodeFusion, tokenizer, encoder_tokenizer=None):
        self.model = model
        self.tokenizer = tokenizer
        self.encoder_tokenizer = encoder_tokenizer if encoder_tokenizer is not None else tokenizer
        if tokenizer.pad_token_id != model.config.pad_token_id:
            raise ValueError(
                f"the tokenizer's pad id {tokenizer.pad_token_id} is not the model's {model.config.pad_token_id}"
            )

    @property
    def config(self) -> CodeFusionConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def mask_token(self) -> str:
        """What CPD writes in place of a masked name: the utterance tokenizer's mask (or unknown) token."""
        tok = self.encoder_tokenizer
        return tok.mask_token or tok.unk_token or MASK_TOKEN

    @classmethod
    def create(
        cls,
        tokenizer,
        seed: int = 0,
        encoder_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        **sizes,
    ) -> CodeFusionPipeline:
        """A freshly initialised model for ``tokenizer`` (a mask token is added to it when it has none).

        ``encoder_dir``: a local Hugging Face model whose encoder becomes E (its own tokenizer, if the
        directory has one, then reads the utterances); ``sizes``: :class:`CodeFusionConfig` fields.
        """
        if tokenizer.pad_token_id is None:
            raise ValueError("the code tokenizer needs a pad token (programs are cut at the first pad)")
        encoder_tokenizer, hf_encoder = None, None
        if encoder_dir is not None:
            hf_encoder = load_hf_encoder(encoder_dir)
            encoder_tokenizer = _maybe_tokenizer(encoder_dir)
            if encoder_tokenizer is None:
                raise ValueError(
                    f"{encoder_dir}: the encoder directory has no tokenizer to read utterances with"
                )
        elif tokenizer.mask_token is None and tokenizer.unk_token is None:
            tokenizer.add_special_tokens({"mask_token": MASK_TOKEN})
        source_tok = encoder_tokenizer or tokenizer
        config = CodeFusionConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            encoder_vocab_size=None if encoder_dir is not None else len(source_tok),
            encoder_pad_token_id=source_tok.pad_token_id,
            encoder="hf" if hf_encoder is not None else None,
            encoder_hidden=hf_encoder.config.hidden_size if hf_encoder is not None else None,
            **sizes,
        )
        torch.manual_seed(seed)
        model = CodeFusion(config, hf_encoder)
        return cls(model.to(device or default_device()), tokenizer, encoder_tokenizer)

    # -- text <-> tensors -------------------------------------------------------------------------------

    def encode_code(self, codes: list[str]) -> torch.Tensor:
        """Code token ids (batch, target_length): cut to the target length, padded with the pad id."""
        n, pad = self.config.target_length, self.config.pad_token_id
        rows = self.tokenizer(list(codes), add_special_tokens=False)["input_ids"]
        return torch.tensor([ids[:n] + [pad] * (n - len(ids[:n])) for ids in rows], dtype=torch.long)

    def encode_source(
        self, utterances: list[str], length: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Utterance ids and mask (batch, ``length``, default source_length); the first position always
        counts, so an empty utterance still has one key to attend to."""
        n = length or self.config.source_length
        pad = self.encoder_tokenizer.pad_token_id or 0
        rows = self.encoder_tokenizer(list(utterances), add_special_tokens=self.config.encoder == "hf")[
            "input_ids"
        ]
        rows = [ids[:n] for ids in rows]
        ids = torch.tensor([r + [pad] * (n - len(r)) for r in rows], dtype=torch.long)
        mask = torch.tensor([[True] * max(len(r), 1) + [False] * (n - max(len(r), 1)) for r in rows])
        return ids, mask

    def memory(self, utterances: list[str], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E(s) and its key mask, on the model's device (inputs cut at ``length``, default source_length)."""
        ids, mask = self.encode_source(utterances, length)
        ids, mask = ids.to(self.device), mask.to(self.device)
        return self.model.encode(ids, mask), mask

    def decode_ids(self, ids: torch.Tensor | list[int]) -> str:
        """The program up to the first pad token."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        pad = self.config.pad_token_id
        if pad in ids:
            ids = ids[: ids.index(pad)]
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    # -- checkpoints ------------------------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the checkpoint into a temporary sibling, then move it into ``out_dir`` file by file."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".save-") as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if self.encoder_tokenizer is not self.tokenizer:
                self.encoder_tokenizer.save_pretrained(Path(tmp) / ENCODER_DIR)
            if (out_dir / ENCODER_DIR).exists():
                shutil.rmtree(out_dir / ENCODER_DIR)
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), out_dir / name)
        return out_dir

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device | None = None
    ) -> CodeFusionPipeline:
        from editlm.models.loading import load_tokenizer

        model = CodeFusion.from_pretrained(path, device)
        encoder_tokenizer = (
            _maybe_tokenizer(Path(path) / ENCODER_DIR) if model.config.encoder == "hf" else None
        )
        return cls(model, load_tokenizer(path), encoder_tokenizer)


def _maybe_tokenizer(path: str | Path):
    """The tokenizer saved in ``path``, or None when it has none."""
    from editlm.models.loading import NotACausalLMError, load_tokenizer

    try:
        return load_tokenizer(path)
    except NotACausalLMError:
        return None
