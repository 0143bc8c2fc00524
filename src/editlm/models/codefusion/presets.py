"""Named model sizes for ``editlm codefusion train --size``."""

from __future__ import annotations

SIZES: dict[str, dict] = {
    # The paper's model (~75M parameters with CodeT5's encoder in place of the small one).
    "paper": dict(hidden=512, embed_dim=512, heads=8, encoder_layers=6, denoiser_layers=10, decoder_layers=6,
                  target_length=128, source_length=128, diffusion_steps=1200, dropout=0.1),
    # A few million parameters: trains on a CPU in minutes.
    "small": dict(hidden=256, embed_dim=64, heads=4, encoder_layers=3, denoiser_layers=4, decoder_layers=2,
                  target_length=128, source_length=64, diffusion_steps=1200, dropout=0.1),
    # Test-sized: seconds.
    "tiny": dict(hidden=32, embed_dim=16, heads=4, encoder_layers=1, denoiser_layers=1, decoder_layers=1,
                 target_length=32, source_length=16, diffusion_steps=20, dropout=0.0),
}  # fmt: skip


def preset(name: str) -> dict:
    try:
        return dict(SIZES[name])
    except KeyError:
        raise ValueError(f"unknown size {name!r}; choose one of {sorted(SIZES)}") from None
