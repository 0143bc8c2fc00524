"""Fixtures shared across stages."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A randomly initialised test-sized Llama with a tokenizer trained on a little stdlib code."""
    from editlm.models.loading import save_checkpoint
    from editlm.models.presets import init_model
    from editlm.models.tokenizer import stdlib_texts, train_tokenizer

    out = tmp_path_factory.mktemp("tiny")
    tokenizer = train_tokenizer(stdlib_texts(limit=20), out / "tok", vocab_size=600)
    model = init_model("test", tokenizer, seed=0)
    save_checkpoint(model, tokenizer, out / "model")
    return out / "model"
