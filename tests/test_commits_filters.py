"""The pure parts of commit mining: OctoPack's rules case by case, licenses, languages, token counting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editlm.data.mining import octopack
from editlm.data.mining.filters import (
    PRESETS,
    commit_reason,
    content_reason,
    message_reason,
    path_reason,
    token_counter,
)
from editlm.data.mining.languages import LANGUAGES, language_of
from editlm.data.mining.licenses import (
    NOASSERTION,
    combine,
    detect_license,
    is_license_file,
    is_permissive,
    license_role,
)

FT = PRESETS["commitpackft"]
CARPER = PRESETS["carperai"]
OK = "Fix the off-by-one error in the parser"


# one case per OctoPack rule, from their code (commitpack sql_1, commitpackft_filters1/2)
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (OK, None),
        ("Add support for bare repositories\n\nThe body may say anything: #12, wip, I think", None),
        ("Fix", "commit: message length outside 6-9,999 (CommitPack)"),
        ("Fix it " + "x" * 10_000, "commit: message length outside 6-9,999 (CommitPack)"),
        ("Update README.md", "commit: CommitPack noise message"),
        ("update xconfig.yaml", "commit: CommitPack noise message"),  # SQL LIKE: _ is any one character
        ("Merged the branch into the other branch", "commit: message starts with merge (CommitPack)"),
        ("Fix the crash reported in #123 today", "commit: subject has # (issue reference)"),
        ("Fix the parser bug", "commit: subject outside 11-999 characters or 5-999 words"),  # 4 words
        (
            "[parser] Fix the off-by-one error",
            "commit: cleaned subject outside 11-999 characters or 5-999 words",
        ),
        ("fix the off-by-one error in the parser", "commit: subject not capitalised"),
        (
            "Fixed the off-by-one error in the parser",
            "commit: subject does not start with an instruction word",
        ),
        ("Speed up the parser by caching its tables", None),  # a two-word start
        ("Plug the leak in the parser buffer now", "commit: subject does not start with an instruction word"),
        ("Update contributing guide with the new steps", "commit: subject has a noise phrase"),
        ("Fix merge pull request handling in the bot", "commit: subject has a noise phrase"),
        (
            "Revert f514fe31f0c6efd4a18cfdfe8871aab65138afa3 because it broke",
            "commit: subject names a commit id",
        ),
        ("Fix the parser (cherry picked from commit abc)", "commit: cherry-picked"),
        ("Bump the version of the parser package", "commit: version bump (90% dropped)"),
        ("Fix what i broke in the parser yesterday", "commit: subject in the first person"),
        ("Fix the parser, thanks to Ada for the report", "commit: subject thanks someone"),
        ("Fix the parser after the code review comments", "commit: subject mentions code review"),
        ("Put the thingie in the thingie", "commit: one of OctoPack's specific bad messages"),
        ("Fix the crash described in issue 159 now", "commit: subject names an issue, bug or feature number"),
        ("Fix the parser for bug 182 once more", "commit: subject names an issue, bug or feature number"),
        ("Fix the cdpcp parser once and for all", "commit: subject mentions cdpcp"),
        ("Add the parser, a work in progress still", "commit: work in progress"),
        ("Fix the wiper motor driver on startup", "commit: work in progress"),  # their substring rule
        ("Fix the link to http://example.com in docs", "commit: subject has a link"),
        ("Add Two Sum solution | LeetCode problem one", "commit: subject mentions leetcode"),
    ],
)
def test_octopack_message_rules(message, reason):
    dropped = next(f"{k:040x}" for k in range(100) if octopack.drop_fraction(f"{k:040x}", 0) < 0.9)
    assert message_reason(FT, message, commit=dropped)[0] == reason


def test_octopack_cleans_the_subject_it_writes():
    assert octopack.clean_subject("demo/python/cmd.py: Fix struct.unpack format for Python 3") == (
        "Fix struct.unpack format for Python 3"
    )
    assert (
        octopack.clean_subject("[benchmark] Fix billing project   now [skip ci]") == "Fix billing project now"
    )
    assert octopack.clean_subject("[x] core: Fix the parser [wip]") == "Fix the parser"
    reason, written = message_reason(FT, "parser: Fix the off-by-one error [ci skip]\n\nbody", "0" * 40)
    assert reason is None and written == "Fix the off-by-one error"


def test_version_bumps_are_dropped_nine_times_in_ten_deterministically():
    commits = [f"{k:040x}" for k in range(2000)]
    message = "Bump the package version number to the next"
    kept = [c for c in commits if message_reason(FT, message, c)[0] is None]
    assert 150 <= len(kept) <= 250  # about 10% of 2000
    assert kept == [c for c in commits if message_reason(FT, message, c)[0] is None]
    assert kept != [c for c in commits if message_reason(FT, message, c, seed=1)[0] is None]
    # "Set version" and "Update version" too, and only at the start, case-sensitive as theirs
    assert message_reason(FT, "Set version of the parser to the next", commits[0])[0] in (
        None,
        "commit: version bump (90% dropped)",
    )
    assert message_reason(FT, "Fix the bump of the version number here", commits[0])[0] is None


def test_carperai_message_needs_more_than_ten_characters():
    assert message_reason(CARPER, "0123456789", "c")[0] == "commit: message too short"
    assert message_reason(CARPER, "0123456789a", "c") == (None, "0123456789a")
    assert message_reason(PRESETS["none"], "", "c") == (None, "")


def test_commit_and_file_rules():
    assert commit_reason(FT, "MIT", 2) == "commit: not exactly one same-path modification"
    assert commit_reason(FT, "MIT", 0) == "commit: not exactly one same-path modification"
    assert commit_reason(FT, "GPL-3.0-only", 1) == "commit: license not in CommitPack's list"
    assert commit_reason(FT, "AGPL-3.0-only", 1) is None  # CommitPack's list holds copyleft licenses too
    assert commit_reason(FT, None, 1) == "commit: no license file"
    assert commit_reason(FT, "Apache-2.0 OR MIT", 1) is None
    assert commit_reason(CARPER, "MIT", 7) is None
    assert commit_reason(CARPER, "AGPL-3.0-only", 1) == "commit: license not permissive"
    assert commit_reason(PRESETS["none"], None, 7) is None
    assert path_reason(CARPER, None, "README.md", "modified") == "file: language not listed"
    assert path_reason(CARPER, "Python", "a.py", "deleted") is None
    assert path_reason(FT, "Python", "a.py", "added") == "file: not the commit's same-path modification"
    assert path_reason(FT, None, "README.md", "modified") is None  # CommitPack has Markdown
    assert path_reason(FT, None, "LICENSE", "modified") == "file: no language for its name"
    assert content_reason(FT, "zz.py", "x" * 50_000, "y", OK) == "file: before 50,000 characters or more"
    assert content_reason(FT, "zz.py", "x" * 49_999, "y", OK) is None
    assert content_reason(FT, "zz.py", "x", "", OK) == "file: after empty"
    assert content_reason(FT, "zz.py", "x", "x", OK) == "file: before and after the same"
    assert content_reason(FT, "a.py", "x", "y", OK) == "file: file name in the subject"  # "a" in "parser"
    assert content_reason(FT, "src/parser.py", "x", "y", OK) == "file: file name in the subject"
    assert content_reason(FT, "Makefile", "x", "y", "Fix the Makefile rule") is None  # no extension
    assert content_reason(CARPER, "a.py", "x" * 10**6, "", OK) is None


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
    ("spdx", "expected"),
    [
        ("MIT", "MIT"),
        ("Apache-2.0", "Apache-2.0"),
        ("BSD-2-Clause", "BSD-2-Clause"),
        ("BSD-3-Clause", "BSD-3-Clause"),
        ("GPL-2.0", "GPL-2.0-only"),  # deprecated SPDX ids come out current
        ("GPL-3.0", "GPL-3.0-only"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("AGPL-3.0", "AGPL-3.0-only"),
        ("ISC", "ISC"),
        ("Unlicense", "Unlicense"),
        ("MPL-2.0", "MPL-2.0"),
    ],
)
def test_reference_license_texts(spdx, expected):
    assert detect_license(_reference(spdx)) == expected


MARKUPSAFE_2010 = """Copyright (c) 2010 by Armin Ronacher and contributors.  See AUTHORS
for more details.

Some rights reserved.

Redistribution and use in source and binary forms of the software as well
as documentation, with or without modification, are permitted provided
that the following conditions are met:

* Redistributions of source code must retain the above copyright
  notice, this list of conditions and the following disclaimer.

* Redistributions in binary form must reproduce the above
  copyright notice, this list of conditions and the following
  disclaimer in the documentation and/or other materials provided
  with the distribution.

* The names of the contributors may not be used to endorse or
  promote products derived from this software without specific
  prior written permission.

THIS SOFTWARE AND DOCUMENTATION IS PROVIDED BY THE COPYRIGHT HOLDERS AND
CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES.
"""


def test_bsd_variants_are_told_apart_by_their_clauses():
    assert detect_license(MARKUPSAFE_2010) == "BSD-3-Clause"  # pallets' "may not be used to endorse"
    two = MARKUPSAFE_2010.split("* The names")[0]
    assert detect_license(two) == "BSD-2-Clause"
    four = two + "* All advertising materials mentioning features or use of this software must display"
    assert detect_license(four) == "BSD-4-Clause"


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


def test_license_files_by_role():
    assert is_license_file("LICENSE") and is_license_file("licence.md") and is_license_file("COPYING.txt")
    assert is_license_file("LICENSE-MIT") and is_license_file("UNLICENSE")
    assert not is_license_file("license_check.py") and not is_license_file("README")
    assert license_role("LICENSE.rst") == "project" and license_role("COPYING.LESSER") == "project"
    assert (
        license_role("LICENSE-MIT") == "alternative"
        and license_role("LICENSE.APACHE-2.0.txt") == "alternative"
    )
    assert license_role("LICENSE.third-party") is None and license_role("LICENSE-fonts") is None
    # Rust's dual license
    assert combine([("LICENSE-MIT", "MIT"), ("LICENSE-APACHE", "Apache-2.0")]) == "Apache-2.0 OR MIT"
    # a GPL project with a vendored MIT notice stays GPL
    gpl = combine([("COPYING", "GPL-3.0-only"), ("LICENSE.third-party", "MIT")])
    assert gpl == "GPL-3.0-only" and not is_permissive(gpl)
    # several project files all apply
    both = combine([("COPYING", "GPL-3.0-only"), ("COPYING.LESSER", "LGPL-3.0-only"), ("LICENSE-MIT", "MIT")])
    assert both == "(GPL-3.0-only AND LGPL-3.0-only) OR MIT" and is_permissive(both)
    assert not is_permissive("GPL-3.0-only AND MIT")
    assert combine([("LICENSE", None)]) == NOASSERTION
    assert combine([("LICENSE.third-party", "MIT")]) == NOASSERTION
    assert combine([]) is None
    assert is_permissive("MIT") and is_permissive("GPL-3.0-only OR MIT")
    assert not is_permissive("GPL-3.0-only") and not is_permissive(NOASSERTION) and not is_permissive(None)


@given(st.text(max_size=200))
def test_chars_per_token_estimate(text):
    count = token_counter("chars/4")
    assert count(text) == -(-len(text) // 4)


def test_unknown_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tokenizer directory"):
        token_counter(str(tmp_path / "missing"))
