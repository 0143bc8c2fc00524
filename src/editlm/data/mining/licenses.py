"""The license of a repository at a commit: find its license file, name it with an SPDX id.

Detection runs in two steps:

1. ``identify`` (pre-commit's file identifier): the text, with copyright lines removed and whitespace
   collapsed, within 5% edit distance of one of the 35 choosealicense.com texts it ships. Its
   ``license_id`` only reads files and normalises all 35 texts on every call, so the same steps run
   here on a string with the texts normalised once.
2. Key phrases, for the many real license files that are the standard text with a title, several
   copyright lines or a missing appendix (more than 5% apart): the licensee-style sentence each license
   is known by (``Permission is hereby granted, free of charge`` for MIT, and so on).

Ids are current SPDX ids: the deprecated ``GPL-2.0``, ``LGPL-2.1``, ``AGPL-3.0``, ... that the
choosealicense texts carry become ``GPL-2.0-only`` and so on (a license text alone grants that version;
"or later" is written in source headers, which are not read). The BSD family is told apart by its
clauses: an endorsement clause ("... may [not] be used to endorse or promote products") makes
BSD-3-Clause, an advertising clause BSD-4-Clause.

A repository's license comes from its root license files, by name (:func:`license_role`):

- ``LICENSE``, ``LICENCE``, ``COPYING``, ``UNLICENSE`` (with ``.md``/``.txt``/``.rst``), and the LGPL's
  ``COPYING.LESSER``/``COPYING.LIB``: the project's license; several such files all apply (``AND``).
- ``LICENSE-MIT``, ``LICENSE.APACHE``, ``LICENSE-BSD``, ...: files named for a license are the
  alternatives of a dual license (``OR``): Rust's ``LICENSE-MIT`` + ``LICENSE-APACHE`` gives
  ``Apache-2.0 OR MIT``.
- Any other suffix (``LICENSE.third-party``, ``LICENSE-fonts``, ``COPYING.docs``, ...) covers
  something else than the project's code and is not used: a GPL project with a vendored MIT notice
  stays GPL.

``NOASSERTION`` when license files are there but none names the project's license in a recognised
text, None when there is none.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable

from editlm.data.mining.languages import language_of

NOASSERTION = "NOASSERTION"

# Non-copyleft ("permissive") licenses, as seed 001 and CommitPackFT used them: MIT, Apache, BSD-like.
PERMISSIVE = frozenset(
    {
        "0BSD",
        "AFL-3.0",
        "Apache-2.0",
        "Artistic-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-3-Clause-Clear",
        "BSD-4-Clause",
        "BSL-1.0",
        "CC0-1.0",
        "ECL-2.0",
        "ISC",
        "MIT",
        "MIT-0",
        "MS-PL",
        "NCSA",
        "PostgreSQL",
        "Python-2.0",
        "UPL-1.0",
        "Unlicense",
        "WTFPL",
        "Zlib",
    }
)

_LICENSE_NAME = re.compile(r"^(licen[cs]e|copying|unlicense)([-._][\w.-]*)?$", re.IGNORECASE)
_COPYRIGHT = re.compile(r"^\s*(copyright|\(c\)|©).*$", re.IGNORECASE | re.MULTILINE)
_SPACE = re.compile(r"\s+")
_DECORATION = re.compile(r"[*#>/|]")
_MAX_LICENSE_CHARS = 100_000

# (SPDX id, phrases that must all occur in the lower-cased, whitespace-collapsed text); first match
# wins, so the copyleft families come first (their texts mention no permissive phrase).
_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AGPL-3.0-only", ("gnu affero general public license",)),
    ("LGPL-3.0-only", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1-only", ("gnu lesser general public license",)),
    ("GPL-3.0-only", ("gnu general public license", "version 3")),
    ("GPL-2.0-only", ("gnu general public license",)),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("EPL-2.0", ("eclipse public license", "2.0")),
    ("EPL-1.0", ("eclipse public license",)),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",)),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),  # clauses decide, below
    (
        "ISC",
        ("permission to use, copy, modify, and", "for any purpose with or without fee is hereby granted"),
    ),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("BSL-1.0", ("boost software license",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("Zlib", ("this software is provided 'as-is'", "altered source versions must be plainly marked")),
)
# SPDX ids deprecated since SPDX 3.0, as the vendored choosealicense texts still name them
DEPRECATED = {
    "GPL-2.0": "GPL-2.0-only",
    "GPL-3.0": "GPL-3.0-only",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-3.0": "LGPL-3.0-only",
    "AGPL-3.0": "AGPL-3.0-only",
}
_BSD = {"BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause"}


def _normalise(text: str) -> str:
    """identify's normalisation: drop copyright lines, collapse whitespace."""
    return _SPACE.sub(" ", _COPYRIGHT.sub("", text)).strip()


@functools.cache
def _reference_texts() -> tuple[tuple[str, str], ...]:
    from identify.vendor import licenses

    return tuple((spdx, _normalise(text)) for spdx, text in licenses.LICENSES)


def detect_license(text: str) -> str | None:
    """The SPDX id of one license text, or None when it is not recognised."""
    import ukkonen

    norm = _normalise(text[:_MAX_LICENSE_CHARS])
    if not norm:
        return None
    # Comment markers and Markdown quotes (``/* * ... */``, ``> ...``) are not part of the wording.
    lowered = _SPACE.sub(
        " ", _DECORATION.sub(" ", norm.lower().replace("\u2018", "'").replace("\u2019", "'"))
    )
    cutoff = math.ceil(0.05 * len(norm))
    best, best_distance = None, cutoff
    for spdx, reference in _reference_texts():
        if norm == reference:
            best = spdx
            break
        if abs(len(norm) - len(reference)) / len(norm) > 0.05:
            continue  # the edit distance would exceed 5% anyway; skip the slow part
        distance = ukkonen.distance(norm, reference, cutoff)
        if distance < best_distance:
            best, best_distance = spdx, distance
    if best is None:
        best = next((spdx for spdx, phrases in _PHRASES if all(p in lowered for p in phrases)), None)
    if best in _BSD:
        best = _bsd_clauses(lowered)
    return DEPRECATED.get(best, best)


def _bsd_clauses(lowered: str) -> str:
    """BSD-2/3/4-Clause by the clauses present: advertising (4), endorsement (3)."""
    if "all advertising materials mentioning features or use of this software" in lowered:
        return "BSD-4-Clause"
    if "used to endorse or promote products" in lowered:
        return "BSD-3-Clause"
    return "BSD-2-Clause"


def is_license_file(name: str) -> bool:
    """``LICENSE``, ``LICENSE.md``, ``LICENCE-MIT``, ``COPYING.txt``, ``UNLICENSE``, ... but not code
    such as ``license_check.py``."""
    return bool(_LICENSE_NAME.match(name)) and language_of(name) is None


_PLAIN_SUFFIXES = {"", "md", "txt", "rst", "markdown", "text"}
_LESSER_SUFFIXES = {"lesser", "lib", "lgpl"}
# suffix words that name a license: LICENSE-MIT, LICENSE.APACHE, LICENSE-BSD-3-Clause, ...
_LICENSE_WORDS = re.compile(
    r"^(mit|apache|apache-?2(\.0)?|bsd|bsd-?[234](-clause)?|isc|zlib|unlicense|cc0|mpl|mpl-?2(\.0)?"
    r"|gpl|gplv?[23]|lgpl|lgplv?[23]|agpl|agplv?3|epl|boost|bsl|wtfpl|artistic|python|psf|0bsd)$"
)


def license_role(name: str) -> str | None:
    """``"project"``, ``"alternative"`` (a dual license's file) or None (covers something else)."""
    match = _LICENSE_NAME.match(name)
    if not match:
        return None
    suffix = (match.group(2) or "").lstrip("-._").lower()
    if suffix in _PLAIN_SUFFIXES or suffix in _LESSER_SUFFIXES:
        return "project"
    stem = suffix.rsplit(".", 1)[0] if suffix.rsplit(".", 1)[-1] in _PLAIN_SUFFIXES else suffix
    return "alternative" if _LICENSE_WORDS.match(stem) else None


def combine(files: Iterable[tuple[str, str | None]], found_files: bool | None = None) -> str | None:
    """The repository's expression from ``(file name, detected id)`` pairs of its root license files.

    Project files all apply (``AND``), files named for a license are alternatives (``OR``), other
    files are not used (see the module docstring). ``found_files`` is accepted for older callers."""
    files = list(files)
    if not files:
        return NOASSERTION if found_files else None
    project: set[str] = set()
    alternatives: set[str] = set()
    unknown = False
    for name, spdx in files:
        role = license_role(name)
        if role is None:
            continue
        if spdx is None:
            unknown = unknown or role == "project"
            continue
        (project if role == "project" else alternatives).add(spdx)
    branches = []
    if project and not unknown:  # an unrecognised project file leaves only the named alternatives
        branches.append(" AND ".join(sorted(project)))
    branches += sorted(alternatives - project)
    if not branches:
        return NOASSERTION
    if len(branches) > 1:
        branches = [f"({b})" if " AND " in b else b for b in branches]
    return " OR ".join(branches)


def alternatives(expression: str | None) -> list[list[str]]:
    """``A OR (B AND C)`` -> ``[["A"], ["B", "C"]]``."""
    if not expression:
        return []
    return [[p.strip("() ") for p in branch.split(" AND ")] for branch in expression.split(" OR ")]


def is_permissive(expression: str | None) -> bool:
    """True when some alternative of the expression is all permissive licenses."""
    return any(all(p in PERMISSIVE for p in branch) for branch in alternatives(expression))


def is_any_of(expression: str | None, allowed: frozenset[str]) -> bool:
    """True when some alternative of the expression is all licenses in ``allowed``."""
    return any(all(p in allowed for p in branch) for branch in alternatives(expression))
