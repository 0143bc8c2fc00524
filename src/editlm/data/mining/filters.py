"""Filter presets for mined commits, and the token counters that decide what fits a context.

Every check is a pure function that returns the reason a commit or a file is dropped, or None, so the
miner can count drops by reason. Presets (REFERENCE.md section 3):

- ``carperai``: seed 001's dataset. Message longer than 10 characters, a permissive license, one of
  the 22 languages, and the sample fits the context (``--max-tokens``, 2048 by default: CodeGen's).
- ``commitpackft``: the stricter CommitPackFT rules on top: file before at most 50k characters, file
  after non-empty and different, message 10-1000 characters and 4-1000 words, starting with a capital
  letter and an imperative verb, no ``#123`` issue references, no noise (wip, http, "merge pull request",
  version numbers, commit hashes), single-file commits only, and 90% of version-bump commits dropped
  (deterministically, by a hash of the commit id and the seed).
- ``none``: nothing is dropped for its content (only ``--max-tokens`` when given).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from editlm.data.mining.licenses import is_permissive


@dataclass(frozen=True)
class FilterPreset:
    """Which rules apply; None or False switches a rule off."""

    name: str
    min_message_chars: int | None = None  # the message must be at least this long
    max_message_chars: int | None = None
    min_message_words: int | None = None
    max_message_words: int | None = None
    imperative: bool = False  # capital letter + imperative verb first
    no_issue_refs: bool = False
    no_noise: bool = False
    permissive_only: bool = False
    languages_only: bool = False
    max_before_chars: int | None = None
    after_changed: bool = False  # after non-empty and different from before
    single_file: bool = False
    version_bump_keep: float | None = None  # fraction of version-bump commits kept
    default_max_tokens: int | None = None


PRESETS: dict[str, FilterPreset] = {
    "none": FilterPreset("none"),
    "carperai": FilterPreset(
        "carperai", min_message_chars=11, permissive_only=True, languages_only=True, default_max_tokens=2048
    ),
    "commitpackft": FilterPreset(
        "commitpackft",
        min_message_chars=10,
        max_message_chars=1000,
        min_message_words=4,
        max_message_words=1000,
        imperative=True,
        no_issue_refs=True,
        no_noise=True,
        permissive_only=True,
        languages_only=True,
        max_before_chars=50_000,
        after_changed=True,
        single_file=True,
        version_bump_keep=0.1,
    ),
}


def preset(name: str) -> FilterPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}; choose from {', '.join(PRESETS)}") from None


# Verbs a commit subject starts with in the imperative (CommitPackFT kept only such messages). Written
# here because no package ships such a list; these are the verbs of common commit subjects.
IMPERATIVE_VERBS = frozenset(
    """
    abort accept access adapt add adjust align allow amend annotate append apply archive assert assign
    avoid backport batch block bring build bump cache calculate call cancel capitalize catch center
    change check clamp clarify clean cleanup clear clone close collapse combine comment compile complete
    compress compute configure connect consolidate convert copy correct create cut debug declare decode
    decrease default define delegate delete deprecate describe destroy detect disable disallow discard
    display document drop dump duplicate edit emit enable encode enforce enhance ensure escape exclude
    expand expose extend extract factor fetch fill filter finalize finish fix flatten flip force format
    generalize generate get group guard handle hide highlight hook ignore implement import improve
    include increase increment indent inherit initialize inject inline insert install integrate introduce
    invert isolate join keep kill label launch limit link lint list load localize lock log lower make
    mark match merge migrate minimize mock modify move normalize notify omit open optimize order organize
    output override parse pass patch pin place polish populate port prefer prepare prevent print process
    prohibit propagate protect provide prune publish pull push put raise read rebuild record redirect
    reduce refactor reference reformat register reintroduce reject release reload remove rename reorder
    reorganize repair replace report require rerun reset resize resolve restore restrict restructure
    retain retry return reuse revert review rework rewrite round run save scale schedule select send
    separate serialize set setup share shorten show silence simplify skip sort specify speed split start
    stop store strip structure style submit support suppress swap switch sync synchronize tag test
    throw tidy toggle track transform translate trim truncate try tune tweak unify uninstall unlock
    unpin update upgrade use validate verify warn wrap write
    """.split()
)
_ISSUE_REF = re.compile(r"#\d+")
_NOISE = re.compile(
    r"\bwip\b|https?:|http\b|merge pull request|merge branch"
    r"|\bv?\d+\.\d+(\.\d+)+\b"  # version numbers such as 1.2.3 or v2.0.1
    r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b",  # commit hashes
    re.IGNORECASE,
)
_VERSION_BUMP = re.compile(
    r"^\s*bump(ed|s|ing)?\b|\bversion bump\b|\b(bump|update|increase|increment|set)\w*\s+(the\s+)?version\b"
    r"|\brelease\s+v?\d|\bprepare\s+(for\s+)?(the\s+)?(next\s+)?release\b",
    re.IGNORECASE,
)


def is_version_bump(message: str) -> bool:
    return bool(_VERSION_BUMP.search(message))


def message_reason(rules: FilterPreset, message: str, commit: str, seed: int = 0) -> str | None:
    """Why a commit message is dropped (``message`` already stripped), or None."""
    if rules.min_message_chars is not None and len(message) < rules.min_message_chars:
        return "commit: message too short"
    if rules.max_message_chars is not None and len(message) > rules.max_message_chars:
        return "commit: message too long"
    words = len(message.split())
    if rules.min_message_words is not None and words < rules.min_message_words:
        return "commit: message has too few words"
    if rules.max_message_words is not None and words > rules.max_message_words:
        return "commit: message has too many words"
    if rules.imperative:
        first = message.split(maxsplit=1)[0] if message else ""
        if not first[:1].isupper() or first.lower().rstrip(":,.") not in IMPERATIVE_VERBS:
            return "commit: message not imperative"
    if rules.no_issue_refs and _ISSUE_REF.search(message):
        return "commit: message references an issue"
    if rules.no_noise and _NOISE.search(message):
        return "commit: noisy message"
    if rules.version_bump_keep is not None and is_version_bump(message):
        if _fraction(commit, seed) >= rules.version_bump_keep:
            return "commit: version bump"
    return None


def _fraction(commit: str, seed: int) -> float:
    """A number in [0, 1) fixed by the commit id and the seed (the same on every machine and run)."""
    digest = hashlib.blake2b(f"{seed}:{commit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def commit_reason(rules: FilterPreset, license_id: str | None, files: int) -> str | None:
    """Why a commit whose message passed is dropped, before any of its files is read, or None."""
    if rules.single_file and files != 1:
        return "commit: more than one file changed"
    if rules.permissive_only and not is_permissive(license_id):
        return "commit: license not permissive" if license_id else "commit: no license file"
    return None


def path_reason(rules: FilterPreset, language: str | None, deleted: bool) -> str | None:
    """Why a file is dropped from its path and change type alone (before its contents are read)."""
    if rules.languages_only and language is None:
        return "file: language not listed"
    if rules.after_changed and deleted:
        return "file: deleted"
    return None


def content_reason(rules: FilterPreset, before: str | None, after: str | None) -> str | None:
    """Why a file is dropped for its contents, or None."""
    if rules.max_before_chars is not None and before is not None and len(before) > rules.max_before_chars:
        return "file: file before too long"
    if rules.after_changed and (not after or after == before):
        return "file: file after empty or unchanged"
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
