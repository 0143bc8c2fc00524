"""The pure parts of commit mining: message rules, licenses, languages, token counting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editlm.data.mining.filters import (
    PRESETS,
    commit_reason,
    content_reason,
    is_version_bump,
    message_reason,
    path_reason,
    token_counter,
)
from editlm.data.mining.languages import LANGUAGES, language_of
from editlm.data.mining.licenses import NOASSERTION, combine, detect_license, is_license_file, is_permissive

FT = PRESETS["commitpackft"]
CARPER = PRESETS["carperai"]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Fix the off-by-one error in the parser", None),
        ("Add support for bare repositories", None),
        ("fix the off-by-one error in the parser", "commit: message not imperative"),
        ("Fixed the off-by-one error in the parser", "commit: message not imperative"),
        ("Parser: fix the off-by-one error", "commit: message not imperative"),
        ("Fix bug", "commit: message too short"),
        ("Fix the parser bug", None),
        ("Fix parser bugs", "commit: message has too few words"),
        ("Fix the crash reported in #123", "commit: message references an issue"),
        ("Fix the crash, WIP for now", "commit: noisy message"),
        ("Fix the link to https://example.com/x", "commit: noisy message"),
        ("Merge pull request 12 from someone/branch", "commit: noisy message"),
        ("Update the pinned version to 1.2.3", "commit: noisy message"),
        ("Revert the change made in 3f2a9c1d", "commit: noisy message"),
        ("Add " + "word " * 300, "commit: message too long"),
    ],
)
def test_commitpackft_messages(message, reason):
    assert message_reason(FT, message.strip(), commit="0" * 40) == reason


def test_carperai_message_needs_more_than_ten_characters():
    assert message_reason(CARPER, "0123456789", "c") == "commit: message too short"
    assert message_reason(CARPER, "0123456789a", "c") is None
    assert message_reason(PRESETS["none"], "", "c") is None


def test_version_bumps_are_kept_one_time_in_ten_deterministically():
    assert is_version_bump("Bump version for the next release")
    assert is_version_bump("Update the version of the package")
    assert not is_version_bump("Add a parser for numbers")
    commits = [f"{k:040x}" for k in range(2000)]
    kept = [c for c in commits if message_reason(FT, "Bump the package version number", c) is None]
    assert 150 <= len(kept) <= 250  # about 10% of 2000
    assert kept == [c for c in commits if message_reason(FT, "Bump the package version number", c) is None]
    other_seed = [
        c for c in commits if message_reason(FT, "Bump the package version number", c, seed=1) is None
    ]
    assert other_seed != kept


def test_commit_and_file_rules():
    assert commit_reason(FT, "MIT", 2) == "commit: more than one file changed"
    assert commit_reason(FT, "GPL-3.0", 1) == "commit: license not permissive"
    assert commit_reason(FT, None, 1) == "commit: no license file"
    assert commit_reason(FT, "Apache-2.0 OR MIT", 1) is None
    assert commit_reason(CARPER, "MIT", 7) is None
    assert commit_reason(PRESETS["none"], None, 7) is None
    assert path_reason(CARPER, None, deleted=False) == "file: language not listed"
    assert path_reason(CARPER, "Python", deleted=True) is None
    assert path_reason(FT, "Python", deleted=True) == "file: deleted"
    assert content_reason(FT, "x" * 50_001, "y") == "file: file before too long"
    assert content_reason(FT, "x" * 50_000, "y") is None
    assert content_reason(FT, None, "y") is None
    assert content_reason(FT, "x", "") == "file: file after empty or unchanged"
    assert content_reason(CARPER, "x" * 10**6, "") is None


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b/main.py", "Python"),
        ("x.PY", "Python"),
        ("lib.rs", "Rust"),
        ("run.sh", "Shell"),
        ("q.sql", "SQL"),
        ("w.cpp", "C++"),
        ("w.h", "C"),
        ("index.html", "HTML"),
        ("s.R", "R"),
        ("README.md", None),
        ("Makefile", None),
        (".bashrc", None),
        ("archive.tar.gz", None),
    ],
)
def test_languages(path, language):
    assert language_of(path) == language


def test_twenty_two_languages():
    assert len(LANGUAGES) == 22
    assert {"Python", "HTML", "Shell", "SQL", "C++"} <= set(LANGUAGES)  # the five seed 001 names


def _reference(spdx: str) -> str:
    from identify.vendor import licenses

    return dict(licenses.LICENSES)[spdx]


@pytest.mark.parametrize(
    "spdx", ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "ISC", "Unlicense", "MPL-2.0"]
)
def test_reference_license_texts(spdx):
    assert detect_license(_reference(spdx)) == spdx


def test_real_world_license_variants():
    mit = _reference("MIT").replace("[year] [fullname]", "2024 Ada")
    titled = "The MIT License (MIT)\n\n" + mit + "\nCopyright (c) 2025 Grace\nCopyright (c) 2026 Linus\n" * 3
    assert detect_license(titled) == "MIT"
    commented = "/*\n" + "".join(f" * {line}\n" for line in mit.splitlines()) + " */\n"
    assert detect_license(commented) == "MIT"
    header = 'Copyright 2024 Ada\n\nLicensed under the Apache License, Version 2.0 (the "License");\n'
    assert detect_license(header) == "Apache-2.0"
    assert detect_license("All rights reserved. Do not copy.") is None
    assert detect_license("") is None


def test_license_expressions():
    assert is_license_file("LICENSE") and is_license_file("licence.md") and is_license_file("COPYING.txt")
    assert is_license_file("LICENSE-MIT") and is_license_file("UNLICENSE")
    assert not is_license_file("license_check.py") and not is_license_file("README")
    assert combine(["MIT", "Apache-2.0", "MIT"], True) == "Apache-2.0 OR MIT"
    assert combine([None], True) == NOASSERTION
    assert combine([], False) is None
    assert is_permissive("MIT") and is_permissive("GPL-3.0 OR MIT")
    assert not is_permissive("GPL-3.0") and not is_permissive(NOASSERTION) and not is_permissive(None)


@given(st.text(max_size=200))
def test_chars_per_token_estimate(text):
    count = token_counter("chars/4")
    assert count(text) == -(-len(text) // 4)


def test_unknown_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tokenizer directory"):
        token_counter(str(tmp_path / "missing"))
