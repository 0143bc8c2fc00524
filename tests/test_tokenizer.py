"""The code tokenizer: loads with AutoTokenizer, special tokens whole, lossless on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.models.tokenizer import (
    SPECIAL_TOKENS,
    WHITESPACE_RUNS,
    EmptyCorpusError,
    read_source,
    stdlib_files,
    stdlib_texts,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(stdlib_texts(limit=120), out, vocab_size=2048)
    return out


@pytest.fixture(scope="module")
def tok(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tok_dir)


def test_autotokenizer_loads_it_with_its_special_tokens(tok):
    assert len(tok) == 2048
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
    assert tok.pad_token_id != tok.eos_token_id
    for token in SPECIAL_TOKENS:
        ids = tok(f"x{token}y", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(token) in ids
        assert len(ids) == 3
    # No token is added around the text: a prompt tokenizes the same alone as inside a sample.
    assert (
        tok("def", add_special_tokens=True)["input_ids"] == tok("def", add_special_tokens=False)["input_ids"]
    )


def test_whitespace_runs_are_single_tokens(tok):
    for run in WHITESPACE_RUNS:
        assert len(tok(run, add_special_tokens=False)["input_ids"]) == 1, repr(run)
    ids = tok("\n        return x", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[1] == " " * 8


def test_round_trips_every_stdlib_python_file(tok):
    files = stdlib_files("*.py")
    assert len(files) > 500
    texts = [read_source(path) for path in files]
    # The Rust backend that AutoTokenizer wraps, batched over both cores (the transformers decode
    # path itself is checked by the property test below).
    backend = tok.backend_tokenizer
    encoded = backend.encode_batch(texts, add_special_tokens=False)
    decoded = backend.decode_batch([e.ids for e in encoded], skip_special_tokens=False)
    bad = [path for path, a, b in zip(files, texts, decoded, strict=True) if a != b]
    assert not bad, bad[:5]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from([*SPECIAL_TOKENS, "    ", "\t\t", " " * 40, "\r\n", "<DFF>", "é中🙂", "\x00"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_lossless_on_any_text(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text


def test_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(EmptyCorpusError):
        train_tokenizer([], tmp_path / "t", vocab_size=1024)
    with pytest.raises(EmptyCorpusError):
        train_tokenizer(["", ""], tmp_path / "t", vocab_size=1024)


def test_too_small_vocab_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["x = 1\n"], tmp_path / "t", vocab_size=100)


def test_training_is_deterministic(tmp_path):
    texts = list(stdlib_texts(limit=20))
    a = train_tokenizer(texts, tmp_path / "a", vocab_size=1024)
    b = train_tokenizer(texts, tmp_path / "b", vocab_size=1024)
    assert a.get_vocab() == b.get_vocab()
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()
