"""Byte-level BPE tokenizers for code, trained with the ``tokenizers`` library.

The seed's diff models used a GPT-2 tokenizer "modified to include whitespace tokens"; LintSeq adds
``<|diff|>`` as a token of its own. This module trains such a tokenizer on any text (by default the
Python standard library) and saves it so that ``transformers.AutoTokenizer.from_pretrained(DIR)``
loads it. Byte-level BPE with no normalizer is lossless: ``decode(encode(text)) == text`` for any text.
"""

from __future__ import annotations

import json
import os
import sysconfig
import tempfile
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

from editlm.edits.edit_sequence import DIFF_SEPARATOR
from editlm.edits.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN, DIFF_SEPARATOR, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX)
# Runs of spaces and tabs that always get a token of their own (Codex-style whitespace tokens): the
# indentation of code costs one token per line instead of one per level.
WHITESPACE_RUNS = tuple(" " * n for n in range(2, 33)) + tuple("\t" * n for n in range(2, 9))


class EmptyCorpusError(ValueError):
    """The corpus holds no text to learn from."""


def stdlib_files(pattern: str = "*.py") -> list[Path]:
    """The files of this interpreter's standard library (not site-packages), sorted for determinism."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob(pattern) if p.is_file() and "site-packages" not in p.parts)


def read_source(path: Path) -> str:
    """A source file as text: its declared encoding (PEP 263), UTF-8, or Latin-1 as the last resort,
    so that every file yields its text without loss."""
    raw = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(iter(raw.splitlines(keepends=True)).__next__)
        return raw.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return raw.decode("latin-1")


def stdlib_texts(pattern: str = "*.py", limit: int | None = None) -> Iterator[str]:
    """Texts of the standard library, the default tokenizer corpus."""
    for path in stdlib_files(pattern)[:limit]:
        yield read_source(path)


def train_tokenizer(
    texts: Iterable[str] | None,
    out_dir: str | os.PathLike,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    show_progress: bool = False,
):
    """Train a byte-level BPE code tokenizer on ``texts`` (None: the standard library) and save it to ``out_dir``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = stdlib_texts() if texts is None else texts
    counted = _CountingIterator(texts)
    base = len(SPECIAL_TOKENS) + 256
    if vocab_size < base + len(WHITESPACE_RUNS) + 1:
        raise ValueError(f"vocab_size must be at least {base + len(WHITESPACE_RUNS) + 1}")
    tok = Tokenizer(models.BPE())
    # GPT-2's pre-tokenizer; runs of whitespace are split off before it by the added tokens below.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(WHITESPACE_RUNS),
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=_byte_alphabet(),
        show_progress=show_progress,
    )
    tok.train_from_iterator(counted, trainer=trainer)
    if counted.chars == 0:
        raise EmptyCorpusError("the tokenizer corpus is empty (no non-empty text)")
    # Whitespace runs are added as (non-special) tokens after training (added before, their ids would
    # collide with the trained vocabulary), so a run of up to 32 spaces is one token whatever the corpus;
    # they are matched on the raw text, longest first, before BPE.
    tok.add_tokens([AddedToken(run, normalized=False, special=False) for run in WHITESPACE_RUNS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=None,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[DIFF_SEPARATOR, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX],
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
    )
    _save_atomic(fast, Path(out_dir))
    return fast


def _byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel.alphabet()


class _CountingIterator:
    """Passes texts through to the trainer and counts their characters (to detect an empty corpus)."""

    def __init__(self, texts: Iterable[str]):
        self._texts = iter(texts)
        self.chars = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        text = next(self._texts)
        if not isinstance(text, str):
            raise TypeError(f"tokenizer corpus items must be str, not {type(text).__name__}")
        self.chars += len(text)
        return text


def _save_atomic(tokenizer, out_dir: Path) -> None:
    """save_pretrained into a temporary sibling, then move each file into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        _portable_config(Path(tmp) / "tokenizer_config.json")
        for name in os.listdir(tmp):
            os.replace(os.path.join(tmp, name), out_dir / name)


def _portable_config(path: Path) -> None:
    """Name the class and special tokens the way both transformers 4 and 5 (and vLLM) read them."""
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["additional_special_tokens"] = list(config.get("extra_special_tokens") or SPECIAL_TOKENS[2:])
    path.write_text(json.dumps(config, indent=2) + "\n")
