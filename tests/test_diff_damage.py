"""The diff core on diffs git wrote (70 real commits, and git's xdiff on stdlib files), undamaged and
damaged the way model output is: the result is the intended file set or a DiffError, never another."""

from __future__ import annotations

import gzip
import json
import random
import sysconfig
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editlm.edits.damage import DAMAGES
from editlm.edits.diff import (
    DiffError,
    apply_diff,
    apply_diff_report,
    apply_patch,
    make_diff,
    parse_patch,
    split_lines,
)

COMMITS = [
    json.loads(row) for row in gzip.open(Path(__file__).parent / "data" / "real_commits.jsonl.gz", "rt")
]
# After these a patcher can always give the intended file (nothing was lost): refusing is a miss.
LOSSLESS = {"prose_after", "fenced", "crlf_diff", "whitespace"}
PLUS_PROSE = "+ I also tidied the imports.\n"  # right after the last hunk: more of it, or prose? refused


def _files(commit: dict, side: str) -> dict[str, str | None]:
    before = {k: v for k, v in commit["before"].items() if v is not None}
    if side == "before":
        return before
    return {**before, **commit["after"]}


def _outcome(before: dict, expected: dict, diff: str) -> str:
    try:
        result = apply_patch(before, diff, require_newline=True)
    except DiffError:
        return "refused"
    assert result == expected, "a damaged diff gave another file: the one thing that may not happen"
    return "correct"


def test_real_commits_apply_exactly() -> None:
    multi = 0
    for commit in COMMITS:
        assert apply_patch(_files(commit, "before"), commit["diff"]) == _files(commit, "after"), commit[
            "commit"
        ]
        multi += len(parse_patch(commit["diff"])) > 1
    assert multi >= 10  # the material has multi-file commits (and renames, new and deleted files)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(COMMITS) - 1), seed=st.integers(0, 2**32))
def test_damaged_real_commits_give_the_intended_files_or_refuse(damage: str, index: int, seed: int) -> None:
    commit = COMMITS[index]
    damaged = DAMAGES[damage](commit["diff"], random.Random(seed))
    if damaged is None:
        return
    outcome = _outcome(_files(commit, "before"), _files(commit, "after"), damaged)
    if damage in LOSSLESS and not (damage == "prose_after" and damaged.endswith(PLUS_PROSE)):
        assert outcome == "correct"
    if damage in ("duplicated_hunk", "repeated_diff"):
        assert outcome == "correct"  # a hunk or file part repeated word for word is applied once


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(COMMITS) - 1))
def test_lf_diff_for_crlf_files_keeps_their_endings(index: int) -> None:
    commit = COMMITS[index]
    crlf = {k: v.replace("\n", "\r\n") for k, v in _files(commit, "before").items()}
    expected = {
        k: (v.replace("\n", "\r\n") if v is not None and k in crlf else v)
        for k, v in _files(commit, "after").items()
    }
    _outcome(crlf, expected, commit["diff"])


def _stdlib_files(count: int, seed: int) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in root.glob("*.py") if 2_000 < p.stat().st_size < 40_000)
    return [p.read_text(encoding="utf-8", errors="replace") for p in random.Random(seed).sample(paths, count)]


STDLIB = _stdlib_files(30, seed=11)


def _edit(text: str, rng: random.Random) -> str:
    lines = split_lines(text)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(lines) + 1)
        kind = rng.choice(["delete", "insert", "replace", "duplicate"])
        span = rng.randint(1, 5)
        if kind == "delete":
            del lines[at : at + span]
        elif kind == "insert":
            lines[at:at] = [f"    inserted_{rng.randrange(10**6)}\n" for _ in range(span)]
        elif kind == "replace":
            lines[at : at + span] = [f"replaced_{rng.randrange(10**6)}\n"]
        else:
            lines[at:at] = lines[at : at + span]  # repeated lines: where naive patchers go wrong
    return "".join(lines)


def _git_diff(before: str, after: str, context: int) -> str:
    """git's own diff text (``diff --git``, ``index``, section headings), from libgit2."""
    return pygit2.Patch.create_from(before, after, "f.py", "f.py", context_lines=context).text


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(STDLIB) - 1), seed=st.integers(0, 2**32), context=st.sampled_from([0, 1, 3]))
def test_damaged_git_diffs_of_one_file_give_the_intended_file_or_refuse(
    damage: str, index: int, seed: int, context: int
) -> None:
    rng = random.Random(seed)
    before = STDLIB[index]
    after = _edit(before, rng)
    if after == before:
        return
    diff = _git_diff(before, after, context)
    assert apply_diff(before, diff) == after
    damaged = DAMAGES[damage](diff, rng)
    if damaged is None:
        return
    try:
        report = apply_diff_report(before, damaged, require_newline=True)
    except DiffError:
        assert damage not in LOSSLESS or damaged.endswith(PLUS_PROSE), "a lossless damage refused"
        return
    if report.text != after:
        # Only a diff of nothing but pure insertions (-U0) with moved line numbers can come out
        # elsewhere: nothing in the file can check it, and the report says so for every hunk.
        assert damage in ("shifted", "wrong_counts") and {p.how for p in report.placements} == {"line-number"}


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from(["a", "b", "x = 1", "", "    pass", "}"]), max_size=40).map("\n".join),
    after=st.lists(st.sampled_from(["a", "b", "x = 1", "", "    pass", "}"]), max_size=40).map("\n".join),
    context=st.sampled_from([0, 1, 3]),
)
def test_xdiff_diffs_round_trip(before: str, after: str, context: int) -> None:
    """make_diff's libgit2 path (used on large files) gives diffs that restore the text exactly,
    in the same hunk format as the difflib path."""
    diff = make_diff(before, after, context, algorithm="xdiff")
    assert apply_diff(before, diff) == after
    assert (diff == "") == (before == after)
    for row in diff.splitlines():
        assert row[:1] in "@ -+\\" and (not row.startswith("@@") or row.endswith(" @@"))


def test_large_repetitive_files_use_xdiff_and_round_trip() -> None:
    rng = random.Random(5)
    before = "".join(rng.choice(["    pass\n", "\n", "}\n", "x = 1\n"]) for _ in range(6000))
    lines = split_lines(before)
    for _ in range(30):
        lines[rng.randrange(len(lines))] = f"changed {rng.random()}\n"
    after = "".join(lines)
    diff = make_diff(before, after)
    assert apply_diff(before, diff) == after
    assert diff.startswith("--- a\n+++ b\n@@ ")
