"""Filter presets for mined commits, and the token counters that decide what fits a context.

Every check is a pure function that returns the reason a commit or a file is dropped, or None, so the
miner can count drops by reason. Presets (REFERENCE.md section 3):

- ``carperai``: seed 001's dataset (CarperAI's diff model data). Message longer than 10 characters, a
  permissive (non-copyleft) license, one of the 22 languages, and the sample fits the context
  (``--max-tokens``, 2048 by default: CodeGen's). CarperAI also kept only repositories with 100+
  stars, which a local repository cannot tell, and decided the license per repository, where here
  the license files at each commit decide.
- ``commitpackft``: OctoPack's CommitPack + CommitPackFT rules, one by one
  (:mod:`editlm.data.mining.octopack`), with the cleaned subject as the message written.
- ``none``: nothing is dropped for its content (only ``--max-tokens`` when given).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from editlm.data.mining import octopack
from editlm.data.mining.licenses import is_permissive


@dataclass(frozen=True)
class FilterPreset:
    """Which rules apply; None or False switches a rule off."""

    name: str
    min_message_chars: int | None = None  # the message must be at least this long
    permissive_only: bool = False
    languages_only: bool = False
    default_max_tokens: int | None = None
    octopack: bool = False  # CommitPack + CommitPackFT (octopack.py) instead of the rules above
    pair_tokens: tuple[int, int] | None = None  # default bounds of the before+after token rule


PRESETS: dict[str, FilterPreset] = {
    "none": FilterPreset("none"),
    "carperai": FilterPreset(
        "carperai", min_message_chars=11, permissive_only=True, languages_only=True, default_max_tokens=2048
    ),
    "commitpackft": FilterPreset("commitpackft", octopack=True, pair_tokens=(50, 768)),
}


def preset(name: str) -> FilterPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}; choose from {', '.join(PRESETS)}") from None


def message_reason(rules: FilterPreset, message: str, commit: str, seed: int = 0) -> tuple[str | None, str]:
    """(why a commit is dropped for its message or None, the message to write); ``message`` stripped."""
    if rules.octopack:
        return octopack.message_reason(message, commit, seed)
    if rules.min_message_chars is not None and len(message) < rules.min_message_chars:
        return "commit: message too short", message
    return None, message


def commit_reason(rules: FilterPreset, license_id: str | None, same_path_modifications: int) -> str | None:
    """Why a commit whose message passed is dropped, before any of its files is read, or None."""
    if rules.octopack:
        return octopack.commit_reason(license_id, same_path_modifications)
    if rules.permissive_only and not is_permissive(license_id):
        return "commit: license not permissive" if license_id else "commit: no license file"
    return None


def path_reason(rules: FilterPreset, language: str | None, path: str, change: str) -> str | None:
    """Why a file is dropped from its path and change type alone (before its contents are read)."""
    if rules.octopack:
        if change != "modified":
            return "file: not the commit's same-path modification"
        if not octopack.has_language(path):
            return "file: no language for its name"
        return None
    if rules.languages_only and language is None:
        return "file: language not listed"
    return None


def content_reason(
    rules: FilterPreset, path: str, before: str | None, after: str | None, subject: str
) -> str | None:
    """Why a file is dropped for its contents (``subject``: the raw first line of the message), or None."""
    if rules.octopack:
        return octopack.file_reason(path, before, after, subject)
    return None


# --------------------------------------------------------------------------- token counting

CHARS_PER_TOKEN = "chars/4"


def token_counter(spec: str = CHARS_PER_TOKEN) -> Callable[[str], int]:
    """A function counting the tokens of a text.

    ``chars/4`` (the default) estimates ceil(characters / 4), no tokenizer needed; a local directory
    is loaded with ``transformers.AutoTokenizer`` and a ``tokenizer.json`` file with ``tokenizers``,
    never from the hub. Counters are cached per process (each worker loads a tokenizer once).
    """
    return _counter(spec)


@functools.cache
def _counter(spec: str) -> Callable[[str], int]:
    if spec == CHARS_PER_TOKEN:
        return lambda text: math.ceil(len(text) / 4)
    path = Path(spec)
    if path.is_file() and path.suffix == ".json":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    if path.is_dir():
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if getattr(auto, "is_fast", False):  # the Rust tokenizer directly: faster, no length warnings
            backend = auto.backend_tokenizer
            return lambda text: len(backend.encode(text, add_special_tokens=False).ids)
        return lambda text: len(auto(text, add_special_tokens=False)["input_ids"])
    raise ValueError(
        f"tokenizer {spec!r}: not {CHARS_PER_TOKEN!r}, a tokenizer directory or a tokenizer.json file"
    )
