"""Commit mining on real repositories built here with the git CLI: every case of the issue, field by field."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.data.mining.commits import (
    COLUMNS,
    MiningError,
    MiningOptions,
    bare_headers,
    crop_to_change,
    file_patch,
    iter_records,
)
from editlm.edits.diff import apply_diff, split_lines
from editlm.edits.diff_model import DiffSample, parse_diff_sample

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
BASE_TIME = 1_700_000_000  # 2023-11-14T22:13:20Z


def license_text(spdx: str) -> str:
    from identify.vendor import licenses

    return dict(licenses.LICENSES)[spdx].replace("[year]", "2024").replace("[fullname]", "Ada")


def git(repo: Path, *args: str, when: int | None = None) -> str:
    env = dict(ENV)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{when} +0200"
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)
    return done.stdout.decode("utf-8", errors="replace").strip()


class History:
    """A repository plus the ids of its commits by name."""

    def __init__(self, path: Path):
        self.path = path
        self.ids: dict[str, str] = {}
        self.tick = 0
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")

    def write(self, files: dict[str, str | bytes | None]) -> None:
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)

    def commit(self, name: str, message: str, files: dict | None = None, stage=None) -> str:
        self.write(files or {})
        git(self.path, "add", "-A")
        if stage:
            stage()
        self.tick += 1
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, when=BASE_TIME + 60 * self.tick)
        self.ids[name] = git(self.path, "rev-parse", "HEAD")
        return self.ids[name]


APP = "".join(f"def f{k}(x):\n    return x + {k}\n\n\n" for k in range(8))
APP_V2 = APP.replace("return x + 3\n", "return x * 3\n") + "def greet(name):\n    return f'hi {name}'\n"
APP_V3 = APP_V2.replace("return x + 6\n", "return x - 6\n")
UTIL = "import os\n\n\ndef here():\n    return os.getcwd()"  # no newline at the end
UTIL_V2 = "import os\n\n\ndef here():\n    return os.path.abspath(os.getcwd())"
STAY = "".join(f"VALUE_{k} = {k}\n" for k in range(12))
CRLF = "first = 1\r\nsecond = 2\r\nthird = 3\r\n"
HUGE_LIMIT = 5000


def build_history(root: Path) -> History:
    h = History(root)
    h.commit(
        "root",
        "Initial commit with license and code",
        {
            "LICENSE": license_text("MIT"),
            "app.py": APP,
            "util.py": UTIL,
            "README.md": "# Demo\n",
            "logo.bin": b"\x89PNG\x00\x00\x01binary",
            "old.py": "print('old')\n",
            "stay.py": STAY,
        },
    )
    h.commit("edit", "Add a greeting function to app", {"app.py": APP_V2, "util.py": UTIL_V2})
    h.commit("rename", "Rename app module to main and tweak it", {"app.py": None, "main.py": APP_V3})
    h.commit("pure_rename", "Move the stay module unchanged", {"stay.py": None, "moved.py": STAY})
    h.commit("delete", "Remove the old module entirely", {"old.py": None})
    h.commit(
        "odd_files",
        "Add latin-1 and huge files, change the logo",
        {
            "latin.py": b"caf\xe9 = 1\n",
            "big.py": "x = 1\n" * 2000,
            "logo.bin": b"\x89PNG\x00\x00\x02binary",
        },
    )
    h.commit("empty", "Empty commit that changes nothing")
    sub_target = h.ids["root"]

    def add_gitlink() -> None:
        git(h.path, "update-index", "--add", "--cacheinfo", f"160000,{sub_target},vendor/lib")

    (h.path / "vendor" / "lib").mkdir(parents=True)  # an unpopulated submodule, as after a plain clone
    os.symlink("main.py", h.path / "link.py")
    h.commit("links", "Add a submodule and a symlink", stage=add_gitlink)
    git(h.path, "checkout", "-q", "-b", "side")
    h.commit("side", "Fix the path helper on a side branch", {"util.py": UTIL_V2 + "\n"})
    git(h.path, "checkout", "-q", "main")
    h.commit("main_docs", "Document the main module", {"main.py": '"""Main."""\n' + APP_V3})
    h.tick += 1
    git(h.path, "merge", "-q", "--no-ff", "side", "-m", "Merge branch side", when=BASE_TIME + 60 * h.tick)
    h.ids["merge"] = git(h.path, "rev-parse", "HEAD")
    h.commit("crlf", "Add a file with windows line endings", {"crlf.py": CRLF})
    h.commit("crlf_edit", "Change the second value in the windows file", {"crlf.py": CRLF.replace("2", "22")})
    (h.path / "moved.py").chmod(0o755)
    h.commit("chmod", "Make the moved module executable")
    h.commit("short", "fix", {"main.py": '"""Main module."""\n' + APP_V3})
    h.write({"run.sh": "#!/bin/sh\necho run\n"})
    (h.path / "run.sh").chmod(0o755)
    h.commit("script", "Add an executable script to run things")
    h.write({"run.sh": "#!/bin/sh\necho running\n"})
    (h.path / "run.sh").chmod(0o644)
    h.commit("script_edit", "Change the script output and drop its executable bit")
    return h


# (commit name, path, change, old path) of every row that --filter none must produce
EXPECTED_ROWS = {
    ("root", "LICENSE", "added", None),
    ("root", "app.py", "added", None),
    ("root", "util.py", "added", None),
    ("root", "README.md", "added", None),
    ("root", "old.py", "added", None),
    ("root", "stay.py", "added", None),
    ("edit", "app.py", "modified", "app.py"),
    ("edit", "util.py", "modified", "util.py"),
    ("rename", "main.py", "renamed", "app.py"),
    ("delete", "old.py", "deleted", "old.py"),
    ("side", "util.py", "modified", "util.py"),
    ("main_docs", "main.py", "modified", "main.py"),
    ("crlf", "crlf.py", "added", None),
    ("crlf_edit", "crlf.py", "modified", "crlf.py"),
    ("short", "main.py", "modified", "main.py"),
    ("script", "run.sh", "added", None),
    ("script_edit", "run.sh", "modified", "run.sh"),
}
EXPECTED_SKIPS = {
    "commit: merge": 1,
    "commit: empty": 1,
    "file: binary": 2,
    "file: not UTF-8": 1,
    "file: huge": 1,
    "file: rename without edits": 1,
    "file: submodule": 1,
    "file: symlink": 1,
    "file: no text change": 1,
}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return build_history(tmp_path_factory.mktemp("mine") / "demo")


@pytest.fixture(scope="module")
def mined(history):
    skipped: Counter = Counter()
    rows = list(iter_records(history.path, MiningOptions(max_file_bytes=HUGE_LIMIT), skipped=skipped))
    return rows, skipped


def _blob(history: History, commit: str, path: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(history.path), "cat-file", "blob", f"{commit}:{path}"],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8")


def test_rows_are_the_changed_files_of_non_merge_commits(history, mined):
    rows, _ = mined
    names = {v: k for k, v in history.ids.items()}
    got = {(names[r["commit"]], r["path"], r["change"], r["old_path"]) for r in rows}
    assert got == EXPECTED_ROWS
    assert len(rows) == len(EXPECTED_ROWS)
    assert all(tuple(r) == COLUMNS for r in rows)


def test_every_drop_is_counted_by_reason(mined):
    _, skipped = mined
    assert dict(skipped) == EXPECTED_SKIPS


def test_fields_match_git(history, mined):
    rows, _ = mined
    parents = {
        name: git(history.path, "rev-parse", f"{cid}^") for name, cid in history.ids.items() if name != "root"
    }
    names = {v: k for k, v in history.ids.items()}
    for row in rows:
        name = names[row["commit"]]
        assert row["repository"] == "demo"
        assert row["parent"] == parents.get(name)
        assert row["message"] == git(history.path, "log", "-1", "--format=%B", row["commit"]).strip()
        when = int(git(history.path, "log", "-1", "--format=%ct", row["commit"]))
        assert row["date"].endswith("+02:00")
        assert datetime.fromisoformat(row["date"]).timestamp() == when
        assert row["license"] == "MIT"
        expected_language = {".py": "Python", ".sh": "Shell", ".md": None, "": None}[Path(row["path"]).suffix]
        assert row["language"] == expected_language
        if row["change"] == "added":
            assert row["before"] is None
        else:
            assert row["before"] == _blob(history, row["parent"], row["old_path"])
        if row["change"] == "deleted":
            assert row["after"] is None
        else:
            assert row["after"] == _blob(history, row["commit"], row["path"])
        assert row["crop_start"] is None


def test_samples_are_diff_model_text(mined):
    rows, _ = mined
    for row in rows:
        sample = parse_diff_sample(row["sample"])
        assert sample.name == row["path"]
        assert sample.before == row["before"]
        assert sample.message == row["message"]
        assert sample.diff.startswith("@@ -")
        assert "\n--- " not in sample.diff and not sample.diff.startswith("---")
        assert row["sample"] == DiffSample(row["path"], row["before"], row["message"], sample.diff).text()
    deleted = next(r for r in rows if r["change"] == "deleted")
    assert (deleted["path"], deleted["old_path"], deleted["before"], deleted["after"]) == (
        "old.py",
        "old.py",
        "print('old')\n",
        None,
    )
    assert "\ndeleted file mode 100644\n" in deleted["diff"] and deleted["language"] == "Python"
    assert deleted["sample"].endswith(
        "<MSG> Remove the old module entirely\n<DFF> @@ -1 +0,0 @@\n-print('old')\n"
    )
    added = next(r for r in rows if r["path"] == "old.py" and r["change"] == "added")
    assert added["sample"] == "<NME> old.py\n<BEF> ADDFILE\n<MSG> Initial commit with license and code\n" + (
        "<DFF> @@ -0,0 +1 @@\n+print('old')\n"
    )


def test_every_diff_applies_to_before_and_gives_after(mined):
    rows, _ = mined
    for row in rows:
        sample_diff = parse_diff_sample(row["sample"]).diff
        assert apply_diff(row["before"] or "", sample_diff) == (row["after"] or "")
        assert apply_diff(row["before"] or "", row["diff"]) == (row["after"] or "")


def test_full_diff_is_what_git_prints(history, mined):
    rows, _ = mined
    for row in rows:
        shown = subprocess.run(
            [
                "git",
                "-C",
                str(history.path),
                "diff-tree",
                "-p",
                "-M",
                "--root",
                "--no-commit-id",
                row["commit"],
            ],
            capture_output=True,
            check=True,
            env=ENV,
        ).stdout.decode("utf-8")
        sections = ["diff --git " + s for s in shown.split("diff --git ")[1:]]
        section = next(s for s in sections if s.split("\n", 1)[0].endswith(f" b/{row['path']}"))
        assert row["diff"] == section  # similarity index included: git's score, not libgit2's


def test_rename_with_edits_keeps_both_paths_and_a_small_diff(history, mined):
    rows, _ = mined
    row = next(r for r in rows if r["change"] == "renamed")
    assert (row["old_path"], row["path"]) == ("app.py", "main.py")
    assert "rename from app.py\nrename to main.py\n" in row["diff"]
    sample_diff = parse_diff_sample(row["sample"]).diff
    assert (
        sample_diff
        == "@@ -23,7 +23,7 @@\n \n \n def f6(x):\n-    return x + 6\n+    return x - 6\n \n \n def f7(x):\n"
    )


def test_executable_files_keep_their_modes(mined):
    rows, _ = mined
    by_change = {r["change"]: r for r in rows if r["path"] == "run.sh"}
    assert "\nnew file mode 100755\n" in by_change["added"]["diff"]
    assert "\nold mode 100755\nnew mode 100644\n" in by_change["modified"]["diff"]


def test_missing_final_newline_and_crlf_survive(mined):
    rows, _ = mined
    util = next(
        r
        for r in rows
        if r["path"] == "util.py" and r["change"] == "modified" and "abspath" not in r["before"]
    )
    assert "\\ No newline at end of file" in util["diff"]
    assert not util["after"].endswith("\n")
    crlf = next(r for r in rows if r["path"] == "crlf.py" and r["change"] == "modified")
    assert crlf["after"] == CRLF.replace("2", "22")
    assert "-second = 2\r\n+second = 22\r\n" in crlf["diff"]


def test_carperai_preset(history, mined):
    all_rows, _ = mined
    skipped: Counter = Counter()
    rows = list(
        iter_records(
            history.path, MiningOptions(filter="carperai", max_file_bytes=HUGE_LIMIT), skipped=skipped
        )
    )
    expected = [
        r for r in all_rows if r["language"] is not None and len(r["message"]) > 10
    ]  # MIT is permissive; everything fits 2048 tokens
    assert [(r["commit"], r["path"]) for r in rows] == [(r["commit"], r["path"]) for r in expected]
    assert skipped["commit: message too short"] == 1
    # LICENSE, README.md and logo.bin at the root, logo.bin again later: the path decides before any read
    assert skipped["file: language not listed"] == 4 and "file: binary" not in skipped


def test_commitpackft_preset(history):
    skipped: Counter = Counter()
    # the files here are tiny: OctoPack's 50-768 token window is switched off to see the other rules
    options = MiningOptions("commitpackft", max_file_bytes=HUGE_LIMIT, min_pair_tokens=0, max_pair_tokens=0)
    rows = list(iter_records(history.path, options, skipped=skipped))
    names = {v: k for k, v in history.ids.items()}
    assert sorted(names[r["commit"]] for r in rows) == ["crlf_edit", "script_edit", "side"]
    assert skipped == {
        # "Initial commit ...", "Empty commit ..."
        "commit: subject does not start with an instruction word": 2,
        "commit: message length outside 6-9,999 (CommitPack)": 1,  # "fix"
        "commit: subject outside 11-999 characters or 5-999 words": 1,  # "Document the main module"
        "commit: merge": 1,
        # edit (two files), rename, pure_rename, delete, links, crlf and script (only additions)
        "commit: not exactly one same-path modification": 7,
        "file: not the commit's same-path modification": 2,  # odd_files: latin.py, big.py added
        "file: no language for its name": 1,  # odd_files' one modification: logo.bin
        "file: before and after the same": 1,  # chmod
    }
    assert all(r["change"] == "modified" for r in rows)
    side = next(r for r in rows if names[r["commit"]] == "side")
    assert side["message"] == "Fix the path helper on a side branch"
    default = list(iter_records(history.path, MiningOptions("commitpackft", max_file_bytes=HUGE_LIMIT)))
    assert default == []  # every file here is under OctoPack's 50 tokens


def test_crop_context(history, mined):
    all_rows, _ = mined
    rows = list(iter_records(history.path, MiningOptions(crop_context=1, max_file_bytes=HUGE_LIMIT)))
    assert len(rows) == len(all_rows)
    for row, full in zip(rows, all_rows, strict=True):
        sample_diff = parse_diff_sample(row["sample"]).diff
        assert apply_diff(row["before"] or "", sample_diff) == (row["after"] or "")
        if row["change"] in ("added", "deleted"):
            assert row["crop_start"] is None and row["before"] == full["before"]
            continue
        start = row["crop_start"]
        original = split_lines(full["before"])
        kept = split_lines(row["before"])
        assert original[start : start + len(kept)] == kept
        assert len(kept) <= len(original)
    edit = next(r for r in rows if r["path"] == "main.py" and r["change"] == "renamed")
    assert edit["before"] == "def f6(x):\n    return x + 6\n\n" and edit["crop_start"] == 24


def test_max_tokens_with_a_local_tokenizer(history, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "def": 1, "return": 2, "x": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "hf")
    for spec in (str(tmp_path / "tokenizer.json"), str(tmp_path / "hf")):
        skipped: Counter = Counter()
        options = MiningOptions(max_tokens=60, tokenizer=spec, max_file_bytes=HUGE_LIMIT)
        rows = list(iter_records(history.path, options, skipped=skipped))
        assert rows and skipped["file: too many tokens"] > 0
        assert len(rows) + skipped["file: too many tokens"] == len(EXPECTED_ROWS)
        for row in rows:
            assert len(tok.encode(row["sample"]).ids) <= 60
    with pytest.raises(ValueError, match="tokenizer"):
        list(iter_records(history.path, MiningOptions(max_tokens=10, tokenizer=str(tmp_path / "nothing"))))


def test_bare_clone_gives_the_same_rows(history, mined, tmp_path):
    rows, _ = mined
    bare = tmp_path / "demo.git"
    git(tmp_path, "clone", "-q", "--bare", str(history.path), str(bare))
    cloned = list(iter_records(bare, MiningOptions(max_file_bytes=HUGE_LIMIT)))
    assert {r["repository"] for r in cloned} == {str(history.path)}  # named by its origin remote
    strip = lambda rs: [{k: v for k, v in r.items() if k != "repository"} for r in rs]
    assert strip(cloned) == strip(rows)


def test_bad_repositories(tmp_path):
    with pytest.raises(MiningError, match="not a git repository"):
        list(iter_records(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    skipped: Counter = Counter()
    assert list(iter_records(empty, skipped=skipped)) == []
    assert skipped == {"repository: no commits": 1}
    with pytest.raises(ValueError, match="unknown filter"):
        MiningOptions(filter="strict")


def test_license_follows_the_commit(tmp_path):
    h = History(tmp_path / "relicensed")
    h.commit("gpl", "Start under the GPL license", {"COPYING": license_text("GPL-3.0"), "a.py": "a = 1\n"})
    h.commit("mit", "Relicense the project under MIT", {"COPYING": None, "LICENSE.md": license_text("MIT")})
    h.commit("edit", "Change the value of a to two", {"a.py": "a = 2\n"})
    rows = list(iter_records(h.path))
    by_commit = {r["commit"]: r["license"] for r in rows}
    assert by_commit[h.ids["gpl"]] == "GPL-3.0-only"  # the current SPDX id, not the deprecated GPL-3.0
    assert by_commit[h.ids["edit"]] == "MIT"
    assert by_commit[h.ids["mit"]] == "MIT"  # reused from its child, which changed no licence file
    skipped: Counter = Counter()
    kept = list(iter_records(h.path, MiningOptions(filter="carperai"), skipped=skipped))
    assert [r["commit"] for r in kept] == [h.ids["edit"]]
    assert skipped["commit: license not permissive"] == 1


# --------------------------------------------------------------------------- properties of the core

_LINES = ["a\n", "b\n", "c\r\n", "def f():\n", "    pass\n", "\n", "x = 1\n", "\r\n", "x\ry\n", "\x0c\n"]
# lines that look like diff syntax, which the patch must carry as plain text
_LINES += ["\\ No newline at end of file\n", "@@ -1 +1 @@\n", "--- a\n", "+++ b\n", "<DFF> x\n", "\u2028\n"]
_lines = st.lists(st.sampled_from(_LINES), max_size=30)


@st.composite
def _texts(draw):
    text = "".join(draw(_lines))
    if draw(st.booleans()):
        text += draw(st.sampled_from(["tail", "y = 2", "é"]))  # no final newline
    return text


@settings(max_examples=150, deadline=None)
@given(before=_texts(), after=_texts(), renamed=st.booleans())
def test_file_patch_applies(before, after, renamed):
    patch = file_patch(before, after, "a.py", "b.py" if renamed else "a.py", 90 if renamed else None)
    if before == after:
        assert patch is None
        return
    full, hunks = patch
    assert hunks.startswith("@@ -") and full.startswith("diff --git a/a.py ")
    assert all(line.count("@@") == 2 for line in hunks.split("\n") if line.startswith("@@"))
    assert apply_diff(before, hunks) == after
    assert apply_diff(before, full) == after


@settings(max_examples=150, deadline=None)
@given(before=_texts(), after=_texts(), context=st.integers(0, 4))
def test_crop_keeps_the_change(before, after, context):
    cropped_before, cropped_after, start = crop_to_change(before, after, context)
    a, b = split_lines(before), split_lines(after)
    kept = split_lines(cropped_before)
    assert a[start : start + len(kept)] == kept
    tail = a[start + len(kept) :]
    assert "".join(a[:start]) + cropped_after + "".join(tail) == after
    if before != after:
        patch = file_patch(cropped_before, cropped_after, "a.py", "a.py")
        assert patch is not None and apply_diff(cropped_before, patch[1]) == cropped_after
    assert len(kept) <= len(a) and len(split_lines(cropped_after)) <= len(b)


def test_missing_objects_are_counted_not_fatal(tmp_path):
    h = History(tmp_path / "partial")
    h.commit("one", "Add the first module here", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    h.commit("two", "Change both modules at once", {"a.py": "a = 2\n", "b.py": "b = 2\n"})
    blob = git(h.path, "rev-parse", "HEAD:b.py")
    (h.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # as in a blobless partial clone
    skipped: Counter = Counter()
    rows = list(iter_records(h.path, skipped=skipped))
    assert sorted((r["path"], r["after"]) for r in rows) == [
        ("a.py", "a = 1\n"),
        ("a.py", "a = 2\n"),
        ("b.py", "b = 1\n"),
    ]
    assert skipped == {"file: object missing (partial clone?)": 1}


def test_repository_names_carry_no_credentials(tmp_path):
    h = History(tmp_path / "named")
    h.commit("one", "Add the first module here", {"a.py": "a = 1\n"})
    git(h.path, "remote", "add", "origin", "https://ada:s3cret@example.com:8443/org/named.git")
    assert {r["repository"] for r in iter_records(h.path)} == {"https://example.com:8443/org/named.git"}
    git(h.path, "remote", "set-url", "origin", "git@example.com:org/named.git")
    assert {r["repository"] for r in iter_records(h.path)} == {"git@example.com:org/named.git"}


def test_binary_is_what_git_calls_binary(tmp_path):
    h = History(tmp_path / "controls")
    controls = "".join(chr(c) for c in range(1, 9))
    h.commit("one", "Add control characters", {"ctl.py": f"a = '{controls}'\n" * 5, "nul.py": "a\x00b\n"})
    h.commit("two", "Change control characters", {"ctl.py": f"b = '{controls}'\n" * 5, "nul.py": "a\x00c\n"})
    skipped: Counter = Counter()
    rows = [r for r in iter_records(h.path, skipped=skipped) if r["commit"] == h.ids["two"]]
    assert [r["path"] for r in rows] == ["ctl.py"] and skipped == {"file: binary": 2}
    shown = git(h.path, "show", "--format=", "--no-color", h.ids["two"], "--", "ctl.py")
    assert rows[0]["diff"].rstrip("\n") == shown  # git diffs it as text too


_HEADER = re.compile(r"^(@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@).*$", re.MULTILINE)


def test_bare_headers_drop_the_function_context():
    text = "@@ -1,3 +1,4 @@ def f():\n a\n+b\n@@ -9 +10 @@ class C:\n-x\n+y\n"
    assert bare_headers(text) == "@@ -1,3 +1,4 @@\n a\n+b\n@@ -9 +10 @@\n-x\n+y\n"
    assert bare_headers("@@ -1 +1 @@\n-@@ -1 +1 @@ x\n+y\n") == "@@ -1 +1 @@\n-@@ -1 +1 @@ x\n+y\n"


@settings(max_examples=150, deadline=None)
@given(before=_texts(), after=_texts())
def test_bare_headers_agree_with_a_regex(before, after):
    patch = file_patch(before, after, "a.py", "a.py")
    if patch is not None:
        full, hunks = patch
        assert hunks == _HEADER.sub(r"\1", full[full.find("\n@@") + 1 :])


def test_rows_are_the_same_without_the_check(history, mined):
    rows, _ = mined
    assert list(iter_records(history.path, MiningOptions(max_file_bytes=HUGE_LIMIT, verify=False))) == rows


def test_rows_carry_the_fine_tuning_split(mined) -> None:
    """``prompt`` ends with ``<DFF>`` and ``prompt`` + ``completion`` is the sample text."""
    rows, _ = mined
    assert rows
    for row in rows:
        assert row["prompt"] + row["completion"] == row["sample"]
        assert row["prompt"].endswith("<DFF>") and row["completion"].startswith(" ")


_DAMAGES = [
    "flip",
    "drop",
    "count",
    "duplicate",
    "shift",
    "retag",
    "untag",
    "truncate",
    "prose",
    "swap",
    "marker",
]


@settings(max_examples=400, deadline=None)
@given(before=_texts(), after=_texts(), data=st.data())
def test_row_check_accepts_git_hunks_and_refuses_damaged_ones(before, after, data):
    from editlm.data.mining.commits import hunks_apply

    patch = file_patch(before, after, "a.py", "a.py")
    if patch is None:
        return
    hunks = patch[1]
    assert hunks_apply(before, hunks, after)
    lines = hunks.split("\n")
    k = data.draw(st.integers(0, len(lines) - 2))
    damage = data.draw(st.sampled_from(_DAMAGES))
    line = lines[k]
    if damage == "retag":  # a tag that is not one
        lines[k] = data.draw(st.sampled_from(["X", "@", "\t", "\\"])) + line[1:]
    elif damage == "untag":  # a line that lost its leading space, or a blank line in the middle
        lines[k] = line[1:]
    elif damage == "truncate":
        lines = lines[: k + 1]
    elif damage == "prose":
        lines.insert(k + 1, data.draw(st.sampled_from(["This fixes the bug.", "", "@@ done @@", "\\ x"])))
    elif damage == "swap" and k + 2 < len(lines):
        lines[k], lines[k + 1] = lines[k + 1], line
    elif damage == "marker":
        lines.insert(k + 1, "\\ No newline at end of file")
    elif damage == "shift":  # the hunk placed a line earlier or later, on both sides
        step = data.draw(st.sampled_from([-1, 1]))
        lines[k] = re.sub(r"([-+])(\d+)", lambda m: f"{m[1]}{max(0, int(m[2]) + step)}", line, count=2)
    elif damage == "flip":
        lines[k] = line[:1] + "X" + line[1:]
    elif damage == "drop":
        del lines[k]
    elif damage == "count":
        lines[k] = re.sub(r"\+(\d+)", lambda m: f"+{int(m[1]) + 1}", line, count=1)
    else:
        lines.insert(k, line)
    damaged = "\n".join(lines)
    if damaged != hunks and hunks_apply(before, damaged, after):
        # accepted only when the damaged diff still makes exactly `after` from `before`
        assert apply_diff(before, damaged) == after
    assert not hunks_apply(before, hunks, after + "x")


@pytest.mark.parametrize("limit", [5, 30, 60])
def test_long_prompts_dropped_before_their_diff_keep_rows_and_reasons(history, monkeypatch, limit):
    """A file whose prompt alone is over --max-tokens is dropped before libgit2 diffs it; rows and
    drop reasons must be those of the full path (diff first, then the token check)."""
    import editlm.data.mining.commits as commits

    options = MiningOptions(max_tokens=limit, max_file_bytes=HUGE_LIMIT)
    calls = []
    real = commits._prompt_over
    monkeypatch.setattr(commits, "_prompt_over", lambda *a: calls.append(real(*a)) or calls[-1])
    early: Counter = Counter()
    rows = list(iter_records(history.path, options, skipped=early))
    assert any(calls)
    if limit > 5:  # some files are dropped early, others only once their sample is made
        assert early["file: too many tokens"] > sum(calls)
    monkeypatch.setattr(commits, "_prompt_over", lambda *a: False)
    late: Counter = Counter()
    assert list(iter_records(history.path, options, skipped=late)) == rows
    assert late == early
