"""Mined diffs against ``git`` itself: rename pairing, headers, abbreviations, hunks, shallow clones.

Each case is a history built with the git CLI where libgit2's defaults and git's disagree; every row's
``diff`` must be byte for byte the section ``git log -p -M`` prints for that file. The last test does the
same over a real history when the project's shared bundles are at hand (``EDITLM_REAL_REPOS``, default
``/work/shared/repos``); a plain clone of editlm has none and skips it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from test_commits import ENV, History, git

import editlm.data.mining.commits as commits
from editlm.data.mining import gitdiff
from editlm.data.mining.commits import MiningOptions, iter_records
from editlm.edits.diff import apply_diff

ALL = MiningOptions(max_file_bytes=10**8)


@pytest.fixture(autouse=True)
def _like_the_installed_git(monkeypatch):
    """git counts an unterminated last line in rename similarity since 2.43.2; compare like for like."""
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    monkeypatch.setattr(commits, "GIT_FINAL_LINE", numbers >= (2, 43, 2))


def git_sections(repo: Path) -> dict[str, dict[str, str]]:
    """{commit: {first line of the section: section}} from ``git log -p -M`` (merges left out)."""
    out = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "log",
            "-p",
            "-M",
            "--root",
            "--no-merges",
            "--no-color",
            "--format=COMMIT %H",
        ],
        capture_output=True,
        check=True,
        env=ENV,
    ).stdout.decode("utf-8", errors="replace")
    found: dict[str, dict[str, str]] = {}
    for chunk in out.split("COMMIT ")[1:]:
        commit, _, body = chunk.partition("\n")
        sections = {}
        for piece in ("\n" + body.strip("\n") + "\n").split("\ndiff --git ")[1:]:
            section = "diff --git " + piece
            section = section if section.endswith("\n") else section + "\n"
            sections[section.split("\n", 1)[0]] = section
        found[commit] = sections
    return found


def assert_rows_are_gits(repo: Path, options: MiningOptions = ALL) -> list[dict]:
    expected = git_sections(repo)
    rows = list(iter_records(repo, options))
    assert rows
    for row in rows:
        section = expected[row["commit"]].get(row["diff"].split("\n", 1)[0])
        assert section is not None, (row["commit"], row["diff"][:200], list(expected[row["commit"]]))
        assert row["diff"] == section, (row["commit"], row["path"])
    return rows


TEXT = "".join(f"line number {k} of a file that is long enough to be a rename\n" for k in range(40))


def edited(text: str, *changes: int) -> str:
    lines = text.splitlines(keepends=True)
    for k in changes:
        lines[k] = f"changed line {k}\n"
    return "".join(lines)


def test_rename_pairing_is_gits(tmp_path):
    h = History(tmp_path / "renames")
    other = TEXT.replace("line", "row")
    h.commit(
        "start",
        "Add the modules",
        {"a/util.py": TEXT, "b/util.py": other, "c/same.py": TEXT, "d/x.py": other + "tail\n"},
    )
    # exact copies of a deleted file: each destination in path order takes the best unused source, so
    # e/other.py takes c/same.py before e/same.py is looked at (git's order, not the best basename)
    h.commit("exact", "Move the same file", {"c/same.py": None, "e/other.py": TEXT, "e/same.py": TEXT})
    # unique basenames pair first when 75% alike, although another source is closer
    h.commit(
        "basename",
        "Move and edit the utilities",
        {"a/util.py": None, "d/x.py": None, "z/util.py": edited(TEXT, 1, 2, 3, 4, 5, 6), "z/y.py": other},
    )
    # the matrix: two sources, two destinations, best score first
    h.commit("seed", "Add two more files", {"m/one.py": TEXT, "m/two.py": other})
    h.commit(
        "matrix",
        "Rename both files and edit them",
        {
            "m/one.py": None,
            "m/two.py": None,
            "n/p.py": edited(other, 0, 9),
            "n/q.py": edited(TEXT, 3, 20, 30),
        },
    )
    # a rename whose mode changes too
    h.commit("mode_seed", "Add a script to move", {"tools/run.py": TEXT})
    (h.path / "tools" / "run.py").rename(h.path / "run.py")
    (h.path / "run.py").write_text(edited(TEXT, 7))
    (h.path / "run.py").chmod(0o755)
    h.commit("mode", "Move the script up and make it executable")
    # CRLF: git ignores the CR of CRLF when scoring
    h.commit("crlf_seed", "Add a windows file", {"win.py": TEXT.replace("\n", "\r\n")})
    h.commit(
        "crlf",
        "Move the windows file",
        {"win.py": None, "w/win2.py": edited(TEXT, 2, 5).replace("\n", "\r\n")},
    )
    # no newline at the end: scored by the installed git's rule
    h.commit("tail_seed", "Add a file without final newline", {"t.py": TEXT.rstrip("\n")})
    h.commit(
        "tail", "Move the file without final newline", {"t.py": None, "u/t2.py": edited(TEXT, 1).rstrip("\n")}
    )
    rows = assert_rows_are_gits(h.path)
    renamed = {(r["old_path"], r["path"]) for r in rows if r["change"] == "renamed"}
    assert ("a/util.py", "z/util.py") in renamed and ("run.py" in {p for _, p in renamed})
    assert not any(r["path"] == "e/other.py" for r in rows)  # a pure rename: no edit, no row
    assert any(r["path"] == "e/same.py" and r["change"] == "added" for r in rows)
    for row in rows:
        assert apply_diff(row["before"] or "", row["diff"]) == (row["after"] or "")


def test_headers_quote_paths_and_hunks_match_git(tmp_path):
    h = History(tmp_path / "headers")
    body = "".join(f"    v{k} = {k}\n" for k in range(20))
    long_def = "def " + "x" * 75 + " yyyyyyyy(a, b):\n"  # git cuts at 80 bytes, then strips the space
    h.commit(
        "start",
        "Add files with unusual names",
        {
            "with space.py": "a = 1\n",
            "café.py": "a = 1\n",
            'quo"te.py': "a = 1\n",
            "long.py": long_def + body,
            "indent.py": "def f():\n    if x:\n        a()\n\n    return 1\n",
        },
    )
    h.commit(
        "edit",
        "Edit files with unusual names",
        {
            "with space.py": "a = 2\n",
            "café.py": "a = 2\n",
            'quo"te.py': "a = 2\n",
            "long.py": long_def + body.replace("v15 = 15", "v15 = 16"),
            # the indent heuristic decides where this insertion's hunk goes
            "indent.py": "def f():\n    if x:\n        a()\n\n    if y:\n        b()\n\n    return 1\n",
        },
    )
    rows = assert_rows_are_gits(h.path)
    by_path = {r["path"]: r for r in rows if r["change"] == "modified"}
    assert by_path["café.py"]["diff"].startswith('diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"\n')
    assert "\n--- a/with space.py\t\n" in by_path["with space.py"]["diff"]
    header = next(line for line in by_path["long.py"]["diff"].split("\n") if line.startswith("@@"))
    assert header.endswith("x" * 75) and len(header.split("@@ ")[-1]) == 79


def test_abbreviations_grow_until_unique():
    class Oid:
        def __init__(self, hex_id):
            self.raw = bytes.fromhex(hex_id)

    ids = ["65fa1717" + "0" * 32, "65fa171a" + "1" * 32, "0123456789" + "2" * 30, "ffff" + "3" * 36]
    abbrev = gitdiff.Abbreviations([Oid(i) for i in ids], packed=len(ids))
    assert abbrev(ids[0]) == "65fa1717" and abbrev(ids[1]) == "65fa171a"  # 7 would be ambiguous
    assert abbrev(ids[2]) == "0123456" and abbrev(gitdiff.NULL_HEX) == "0000000"
    assert gitdiff.auto_abbrev(12_952) == 7 and gitdiff.auto_abbrev(150_000) == 9
    assert gitdiff.auto_abbrev(8_000_000) == 12  # the Linux kernel's 12 digits


def test_shallow_boundary_commits_are_counted_not_mined(tmp_path):
    h = History(tmp_path / "full")
    for k in range(6):
        h.commit(f"c{k}", f"Change the value number {k}", {"a.py": f"a = {k}\n", f"f{k}.py": "b = 1\n"})
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{h.path}", str(shallow)], check=True, env=ENV
    )
    skipped: Counter = Counter()
    rows = list(iter_records(shallow, ALL, skipped=skipped))
    assert skipped == {"commit: parents unknown (shallow clone boundary)": 1}
    assert [(r["commit"], r["path"], r["change"]) for r in rows] == [
        (h.ids["c5"], "a.py", "modified"),
        (h.ids["c5"], "f5.py", "added"),
    ]


REAL = Path(os.environ.get("EDITLM_REAL_REPOS", "/work/shared/repos"))


@pytest.mark.skipif(not (REAL / "markupsafe.bundle").exists(), reason="no shared real histories here")
def test_every_row_of_a_real_history_is_what_git_prints(tmp_path):
    clone = tmp_path / "markupsafe"
    subprocess.run(["git", "clone", "-q", str(REAL / "markupsafe.bundle"), str(clone)], check=True, env=ENV)
    rows = assert_rows_are_gits(clone)
    assert len(rows) > 1000
    assert sum(r["change"] == "renamed" for r in rows) > 0
    assert any(re.search(r"^index [0-9a-f]{8}\.\.", r["diff"], re.MULTILINE) for r in rows)  # a longer id


def test_git_helper_sees_every_commit(tmp_path):
    h = History(tmp_path / "one")
    h.commit("a", "Add a file", {"a.py": "a = 1\n"})
    assert list(git_sections(h.path)) == [git(h.path, "rev-parse", "HEAD")]
