"""Model presets, loading any local causal LM with clear errors, CTranslate2 conversion."""

from __future__ import annotations

import json

import pytest
import torch

from editlm.models.convert import to_ctranslate2
from editlm.models.loading import NotACausalLMError, load_model, load_tokenizer, save_checkpoint
from editlm.models.presets import PRESETS, count_parameters, init_model, preset_config
from editlm.models.tokenizer import stdlib_texts, train_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return train_tokenizer(stdlib_texts(limit=30), tmp_path_factory.mktemp("tok"), vocab_size=1024)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tok):
    return save_checkpoint(init_model("test", tok, seed=3), tok, tmp_path_factory.mktemp("ckpt"))


def test_presets_fit_the_tokenizer_and_grow_in_size(tok):
    sizes = []
    for name in PRESETS:
        config = preset_config(name, tok)
        assert config.vocab_size == len(tok)
        assert config.eos_token_id == tok.eos_token_id and config.pad_token_id == tok.pad_token_id
        with torch.device("meta"):
            from transformers import AutoModelForCausalLM

            sizes.append(
                count_parameters(AutoModelForCausalLM.from_config(preset_config(name, tok, vocab_size=50304)))
            )
    assert sizes == sorted(sizes)
    assert 130e6 < sizes[list(PRESETS).index("tinycodelm-150m")] < 170e6
    assert 380e6 < sizes[list(PRESETS).index("tinycodelm-400m")] < 450e6
    with pytest.raises(KeyError, match="presets"):
        preset_config("huge", tok)


def test_init_is_seeded(tok):
    a, b = init_model("test", tok, seed=5), init_model("test", tok, seed=5)
    c = init_model("test", tok, seed=6)
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_checkpoint_round_trips_through_auto_classes(checkpoint, tok):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "tokenizer.json").is_file()
    assert not [p for p in checkpoint.iterdir() if p.name.startswith(".")]
    ours, theirs = load_model(checkpoint), AutoModelForCausalLM.from_pretrained(checkpoint)
    ids = torch.tensor([tok("def f(x):\n    return x", add_special_tokens=False)["input_ids"]])
    assert torch.equal(ours(ids).logits, theirs(ids).logits)
    assert AutoTokenizer.from_pretrained(checkpoint).get_vocab() == load_tokenizer(checkpoint).get_vocab()


def test_not_a_causal_lm_is_a_clear_error(tmp_path, checkpoint):
    with pytest.raises(NotACausalLMError, match="no such directory"):
        load_model(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotACausalLMError, match="not a directory"):
        load_model(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotACausalLMError, match="config.json"):
        load_model(tmp_path / "empty")
    with pytest.raises(NotACausalLMError, match="tokenizer"):
        load_tokenizer(tmp_path / "empty")
    encoder = tmp_path / "t5"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(NotACausalLMError, match="not a causal language model"):
        load_model(encoder)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(NotACausalLMError):
        load_model(garbage)
    no_weights = tmp_path / "noweights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(NotACausalLMError, match="weights"):
        load_model(no_weights)


def test_ctranslate2_conversion_decodes_like_transformers(tmp_path, checkpoint, tok):
    import ctranslate2

    out = to_ctranslate2(checkpoint, tmp_path / "ct2", quantization="float32")
    assert (out / "model.bin").is_file() and (out / "tokenizer.json").is_file()
    prompt = tok("<NME> a.py\n<BEF> x = 1\n<MSG> Fix\n<DFF>", add_special_tokens=False)["input_ids"]
    result = ctranslate2.Generator(str(out)).generate_batch(
        [tok.convert_ids_to_tokens(prompt)], max_length=12, sampling_topk=1, include_prompt_in_result=False,
        end_token=[],
    )  # fmt: skip
    reference = load_model(checkpoint).generate(
        torch.tensor([prompt]), max_new_tokens=12, min_new_tokens=12, do_sample=False,
        pad_token_id=tok.pad_token_id,
    )[0, len(prompt) :].tolist()  # fmt: skip
    assert result[0].sequences_ids[0] == reference
    with pytest.raises(NotACausalLMError):
        to_ctranslate2(tmp_path / "nothing", tmp_path / "ct2b")


def test_checkpoint_dtype_and_pad_stand_in(tmp_path, tok):
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    from editlm.models.loading import checkpoint_dtype

    assert checkpoint_dtype(LlamaConfig(dtype="bfloat16")) == torch.bfloat16
    assert checkpoint_dtype(LlamaConfig()) == torch.float32
    # A tokenizer with an unknown token but neither EOS nor pad pads with its unk (a token the model has).
    bare = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, unk_token="<|diff|>")
    bare.save_pretrained(tmp_path / "bare")
    loaded = load_tokenizer(tmp_path / "bare")
    assert loaded.eos_token is None and loaded.pad_token == "<|diff|>"
