"""CommitPackFT's filters (OctoPack, Muennighoff et al. 2023), rule by rule, for ``--filter commitpackft``.

Ported from bigcode-project/octopack: ``dataset/commitpack/sql/sql_1..5`` (CommitPack: the BigQuery
selection) and ``dataset/commitpackft/commitpackft_filters1.py`` then ``commitpackft_filters2.py``
(CommitPackFT). Every rule keeps its own drop reason, so a job reports how many commits or files each
one removed. The message rules run first (they need no diff), in OctoPack's order; the file rules after.

**CommitPack** (on the whole message, as BigQuery's ``message``):
6-9,999 characters; not one of the noise messages (SQL ``LIKE``, so ``_`` matches any one character);
not starting with ``merge``; repository license one of CommitPack's twelve; exactly one same-path
modification in the commit (``old_path = new_path``, added, deleted and renamed files do not count, and
the others files of the commit are not rows).

**CommitPackFT** (on the subject, the message's first line): before < 50,000 characters, after
non-empty and different; no ``#``; the file's name (the part before its last extension) not in the
subject; 11-999 characters and 5-999 words; then the subject is cleaned (``[skip ci]``, a leading
``[tag]``, a leading ``word:``, a trailing ``[tag]`` removed) and checked again; it starts with a capital
letter, and its lower case starts with one of OctoPack's instruction words (two-word ones such as
"speed up" included) followed by a space; not one of their bad messages, no noise substring, not a
version (``v1.2.3``) or a hash at the start; then (filters2) not cherry-picked, no 40-hex commit id,
``[ci skip]`` removed; 90% of subjects starting with Bump / Set version / Update version dropped; no
first person (`` i ``, ``i've``, ``i'm``), "thanks to" with "for", "code review", their three specific
messages, ``issue N`` / ``bug N`` / ``feature N``, "cdpcp", "//codereview", "work in progress" or
"wip" (a substring, as theirs: "wipe" too), links, "| leetcode", and at least 4 words. The cleaned
subject is the message written.

Where this cannot be OctoPack's exactly (each stated in the README):
- the 90% version-bump drop is made deterministic: a commit is dropped when a hash of its id and
  ``--seed`` falls below 0.9 (theirs was ``random.random()``);
- their token rule (50 to 768 StarCoder tokens of ``before + "<|endoftext|>" + after``) counts with
  ``--tokenizer`` (the chars/4 estimate unless a StarCoder ``tokenizer.json`` is given), and the bounds are
  options (``--min-pair-tokens``/``--max-pair-tokens``);
- languages: CommitPack grouped files by extension into 350 languages (GitHub linguist's table, not
  shipped here); a file is kept when pygments knows a language for its name, the nearest local table;
- licenses are GitHub's per-repository detection there, the license files at each commit here;
- CommitPack also dropped repositories of people who opted out of The Stack (a list not available here).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable

# CommitPack's licenses (sql_1: GitHub license keys), as SPDX ids
LICENSES = frozenset(
    {
        "MIT",
        "Artistic-2.0",
        "ISC",
        "CC0-1.0",
        "EPL-1.0",
        "MPL-2.0",
        "Unlicense",
        "Apache-2.0",
        "BSD-3-Clause",
        "AGPL-3.0-only",
        "LGPL-2.1-only",
        "BSD-2-Clause",
    }
)

# sql_1: lower(message) NOT LIKE ... (none holds %, so LIKE is equality with _ as a one-character wildcard)
NOISE_MESSAGES = (
    "update readme.md",
    "initial commit",
    "update",
    "mirroring from micro.blog.",
    "update data.json",
    "update data.js",
    "add files via upload",
    "update readme",
    "can't you see i'm updating the time?",
    "pi push",
    "dummy",
    "update index.html",
    "first commit",
    "create readme.md",
    "heartbeat update",
    "updated readme",
    "update log",
    "test",
    "no message",
    "readme",
    "wip",
    "updates",
    "commit",
    "update _config.yaml",
)
_NOISE_LIKE = re.compile(
    "|".join("".join("." if c == "_" else re.escape(c) for c in m) for m in NOISE_MESSAGES), re.DOTALL
)

# commitpackft_filters1.GOOD_STARTS_EN (the English set; the other languages were switched off there).
# Their entry "plug " carries a space already, so it only matches "plug" followed by two spaces.
INSTRUCTION_WORDS = frozenset(
    """
    abort accelerate access accumulate add address adjust advance align allot allow amplify annotate
    append apply archive arrange attach augment automate backup boost break bring build bump call
    change check choose clarify clean clear clone comment complete compress concatenate configure
    connect consolidate convert copy correct cover create customize cut debug decipher declare
    decommission decomplexify decompress decrease decrypt define delete deploy designate destroy
    detach determine develop diminish disable discard disentangle dismantle divide document downgrade
    drop duplicate edit embed emphasize enable encrypt enforce enhance enlarge enumerate eradicate
    escalate establish exclude exit expand expedite expire extend facilitate fix format gather
    generalize halt handle hasten hide implement improve include increase increment indent index
    inflate initialize insert install integrate interpolate interrupt introduce isolate join kill
    leverage load magnify maintain make manage mark mask mend merge migrate modify monitor move
    multiply normalize optimize orchestrate order package paraphrase paste patch prepare prepend print
    provision purge put quit raise read reannotate rearrange rebase reboot rebuild recomment recompile
    reconfigure reconnect rectify redact redefine reduce refactor reformat refresh reimplement
    reinforce relocate remove rename reorder reorganize repackage repair rephrase replace reposition
    reschedule reset reshape resolve restructure return revert revise revoke reword rework
    rewrite rollback save scale scrub secure select send set settle simplify solve sort split
    stabilize standardize stipulate stop store streamline strengthen structure substitute subtract
    support swap switch synchronize tackle tag terminate test throw tidy transform transpose
    trim troubleshoot truncate tweak uncover undo unblock uninstall unify unplug unpublish unravel unstage
    unsync untangle unwind update upgrade use validate verify watch watermark whitelist withdraw work
    write
    """.split()
)
_TWO_WORD_STARTS = ("speed up", "deal with", "brush up", "plug ")
INSTRUCTION_STARTS = tuple(sorted(w + " " for w in (*INSTRUCTION_WORDS, *_TWO_WORD_STARTS)))

BAD_SUBSTRINGS = (
    "auto commit",
    "update contributing",
    "<?xml",
    "merge branch",
    "merge pull request",
    "signed-off-by",
)
BAD_MESSAGES = frozenset(
    {"readme", "update", "dummy", "updated", "test", "update readme", "update readme.md", "updated readme.md"}
    | {"updated readme"}
)
SPECIFIC_MESSAGES = frozenset(
    {
        "fix that bug where things didn't work but now they should",
        "put the thingie in the thingie",
        "add a beter commit message",
    }
)
_VERSION = re.compile(r"(?:v)?\d+\.\d+\.\d+(?=$|\S)")
_HASHY = re.compile(r"^[a-f0-9]+(?:-[a-f0-9]+)*$")
_COMMIT_ID = re.compile(r"([a-f0-9]{40})")
_ISSUE = re.compile(r"issue\s*\d+", re.IGNORECASE)
_BUG = re.compile(r"bug\s*\d+", re.IGNORECASE)
_FEATURE = re.compile(r"feature\s*\d+", re.IGNORECASE)
BUMP_STARTS = ("Bump", "Set version", "Update version")
BUMP_DROP = 0.9


def subject_of(message: str) -> str:
    """BigQuery's ``subject``: the first line of the message."""
    return message.split("\n", 1)[0]


def _fits(subject: str) -> bool:
    """filter_empty_messages: 10 < characters < 1000 and 4 < words < 1000."""
    return 10 < len(subject) < 1000 and 4 < len(subject.split()) < 1000


def clean_subject(subject: str) -> str:
    """clean_issues_and_refs: drop ``[skip ci]``, a leading ``[tag]``, a leading ``word:``, a trailing
    ``[tag]``; words joined by single spaces."""
    if not subject:
        return subject
    words = subject.strip().replace("[skip ci]", "").strip().split()
    if words and words[0].startswith("[") and words[0].endswith("]"):
        words = words[1:]
    if words and words[0].endswith(":"):
        words = words[1:]
    if words and words[-1].startswith("[") and words[-1].endswith("]"):
        words = words[:-1]
    return " ".join(words).strip()


def drop_fraction(commit: str, seed: int) -> float:
    """A number in [0, 1) fixed by the commit id and the seed (the same on every machine and run)."""
    digest = hashlib.blake2b(f"{seed}:{commit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def message_reason(message: str, commit: str, seed: int = 0) -> tuple[str | None, str]:
    """(why the commit is dropped or None, the cleaned subject) from its message alone."""
    lowered = message.lower()
    if not 5 < len(message) < 10_000:
        return "commit: message length outside 6-9,999 (CommitPack)", ""
    if _NOISE_LIKE.fullmatch(lowered):
        return "commit: CommitPack noise message", ""
    if lowered.startswith("merge"):
        return "commit: message starts with merge (CommitPack)", ""
    subject = subject_of(message)
    if "#" in subject:
        return "commit: subject has # (issue reference)", ""
    if not _fits(subject):
        return "commit: subject outside 11-999 characters or 5-999 words", ""
    subject = clean_subject(subject)
    if not _fits(subject):
        return "commit: cleaned subject outside 11-999 characters or 5-999 words", ""
    if not subject[0].isupper():
        return "commit: subject not capitalised", ""
    low = subject.lower()
    checks: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("commit: subject does not start with an instruction word", lambda: not low.startswith(INSTRUCTION_STARTS)),
        ("commit: subject is a bad message", lambda: low in BAD_MESSAGES),
        ("commit: subject has a noise phrase", lambda: any(b in low for b in BAD_SUBSTRINGS)),
        ("commit: subject starts with a version number", lambda: bool(_VERSION.match(low))),
        ("commit: subject is a hash", lambda: bool(_HASHY.match(low))),
        ("commit: cherry-picked", lambda: "cherry picked from commit" in subject),
        ("commit: subject names a commit id", lambda: bool(_COMMIT_ID.search(subject))),
    )  # fmt: skip
    for reason, failed in checks:
        if failed():
            return reason, ""
    subject = subject.replace("[ci skip]", "").strip()
    low = subject.lower()
    if subject.startswith(BUMP_STARTS) and drop_fraction(commit, seed) < BUMP_DROP:
        return "commit: version bump (90% dropped)", ""
    checks = (
        ("commit: subject in the first person", lambda: " i " in low or "i've" in low or "i'm" in low),
        ("commit: subject thanks someone", lambda: "thanks to" in low and "for" in subject),
        ("commit: subject mentions code review", lambda: "code review" in low),
        ("commit: one of OctoPack's specific bad messages", lambda: low in SPECIFIC_MESSAGES),
        ("commit: subject names an issue, bug or feature number", lambda: bool(_ISSUE.search(low) or _BUG.search(low) or _FEATURE.search(low))),
        ("commit: subject mentions cdpcp", lambda: "cdpcp" in low),
        ("commit: subject mentions //codereview", lambda: "//codereview" in low),
        ("commit: work in progress", lambda: "work in progress" in low or "wip" in low),
        ("commit: subject has a link", lambda: "https://" in low or "http://" in low),
        ("commit: subject mentions leetcode", lambda: "| leetcode" in low),
        ("commit: subject under 4 words", lambda: len(subject.split()) < 4),
    )  # fmt: skip
    for reason, failed in checks:
        if failed():
            return reason, ""
    return None, subject


def commit_reason(license_id: str | None, same_path_modifications: int) -> str | None:
    """CommitPack's repository license list and single-file rule."""
    from editlm.data.mining.licenses import is_any_of

    if same_path_modifications != 1:
        return "commit: not exactly one same-path modification"
    if not is_any_of(license_id, LICENSES):
        return "commit: license not in CommitPack's list" if license_id else "commit: no license file"
    return None


@functools.lru_cache(maxsize=4096)
def has_language(path: str) -> bool:
    """pygments knows a language for this file name (the stand-in for CommitPack's extension table)."""
    from pygments.lexers import find_lexer_class_for_filename
    from pygments.util import ClassNotFound

    name = path.rsplit("/", 1)[-1]
    try:
        return find_lexer_class_for_filename(name) is not None
    except ClassNotFound:
        return False


def file_reason(path: str, before: str | None, after: str | None, subject: str) -> str | None:
    """CommitPackFT's content rules (``subject``: the raw first line, as theirs saw it)."""
    if before is not None and len(before) >= 50_000:
        return "file: before 50,000 characters or more"
    if not after:
        return "file: after empty"
    if before == after:
        return "file: before and after the same"
    parts = path.split("/")[-1].split(".")
    if len(parts) >= 2 and parts[-2] in subject:
        return "file: file name in the subject"
    return None


def pair_text(before: str, after: str) -> str:
    """What their StarCoder token rule counts."""
    return before + "<|endoftext|>" + after
