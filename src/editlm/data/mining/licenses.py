"""The license of a repository at a commit: find its license file, name it with an SPDX id.

Detection runs in two steps:

1. ``identify`` (pre-commit's file identifier): the text, with copyright lines removed and whitespace
   collapsed, within 5% edit distance of one of the 35 choosealicense.com texts it ships. Its
   ``license_id`` only reads files and normalises all 35 texts on every call, so the same steps run
   here on a string with the texts normalised once.
2. Key phrases, for the many real license files that are the standard text with a title, several
   copyright lines or a missing appendix (more than 5% apart): the licensee-style sentence each license
   is known by (``Permission is hereby granted, free of charge`` for MIT, and so on).

A repository's license is the SPDX expression of all its recognised root license files joined with
``OR`` (Rust's ``LICENSE-MIT`` + ``LICENSE-APACHE`` gives ``Apache-2.0 OR MIT``); ``NOASSERTION`` when
it has a license file that is not recognised, None when it has none.
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
    ("AGPL-3.0", ("gnu affero general public license",)),
    ("LGPL-3.0", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1", ("gnu lesser general public license",)),
    ("GPL-3.0", ("gnu general public license", "version 3")),
    ("GPL-2.0", ("gnu general public license",)),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("EPL-2.0", ("eclipse public license", "2.0")),
    ("EPL-1.0", ("eclipse public license",)),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "may be used to endorse")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    (
        "ISC",
        ("permission to use, copy, modify, and", "for any purpose with or without fee is hereby granted"),
    ),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("BSL-1.0", ("boost software license",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("Zlib", ("this software is provided 'as-is'", "altered source versions must be plainly marked")),
)


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
    cutoff = math.ceil(0.05 * len(norm))
    best, best_distance = None, cutoff
    for spdx, reference in _reference_texts():
        if norm == reference:
            return spdx
        if abs(len(norm) - len(reference)) / len(norm) > 0.05:
            continue  # the edit distance would exceed 5% anyway; skip the slow part
        distance = ukkonen.distance(norm, reference, cutoff)
        if distance < best_distance:
            best, best_distance = spdx, distance
    if best is not None:
        return best
    # Comment markers and Markdown quotes (``/* * ... */``, ``> ...``) are not part of the wording.
    lowered = _SPACE.sub(
        " ", _DECORATION.sub(" ", norm.lower().replace("\u2018", "'").replace("\u2019", "'"))
    )
    for spdx, phrases in _PHRASES:
        if all(phrase in lowered for phrase in phrases):
            return spdx
    return None


def is_license_file(name: str) -> bool:
    """``LICENSE``, ``LICENSE.md``, ``LICENCE-MIT``, ``COPYING.txt``, ``UNLICENSE``, ... but not code
    such as ``license_check.py``."""
    return bool(_LICENSE_NAME.match(name)) and language_of(name) is None


def combine(ids: Iterable[str | None], found_files: bool) -> str | None:
    """The expression for a repository from the ids of its license files (None: not recognised)."""
    known = sorted({i for i in ids if i})
    if known:
        return " OR ".join(known)
    return NOASSERTION if found_files else None


def is_permissive(expression: str | None) -> bool:
    """True when at least one alternative of an ``OR`` expression is a permissive license."""
    if not expression or expression == NOASSERTION:
        return False
    return any(part.strip() in PERMISSIVE for part in expression.split(" OR "))
