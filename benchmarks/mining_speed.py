"""Commit mining speed: editlm (pygit2, in-process) against PyDriller (GitPython, git subprocesses).

Both walk the same repository and produce, for every changed file of every non-merge commit, the
unified diff and the file before and after. Two repositories: a generated one (default 2000 commits of
edits, additions, renames and deletions over Python files) and the project's own history. Each tool runs
in one Python process (PyDriller's GitPython also starts git processes); editlm's whole job
(``run_mining``: all cores, Parquet written) is timed too. The per-file diffs of the two are
compared, so the figures are for the same output; editlm's time also covers what PyDriller does not do:
the diff-model sample text, license and language of every row, and the check that every diff applies.

    .venv/bin/python benchmarks/mining_speed.py [--quick] [--commits N] [--repo PATH]

The last line is one JSON object; ``ratio`` is editlm / PyDriller commits per second on the generated
repository, one process each.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pygit2

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()
)


def _function(rng: random.Random, name: str) -> list[str]:
    body = [f"def {name}({', '.join(rng.sample(WORDS, 2))}):\n", f'    """Compute {rng.choice(WORDS)}."""\n']
    for _ in range(rng.randint(2, 8)):
        body.append(f"    {rng.choice(WORDS)} = {rng.choice(WORDS)} + {rng.randint(0, 99)}\n")
    body.append(f"    return {rng.choice(WORDS)}\n")
    return [*body, "\n", "\n"]


def _new_file(rng: random.Random) -> list[str]:
    lines = ['"""A generated module."""\n', "\n", "import os\n", "\n", "\n"]
    for k in range(rng.randint(3, 15)):
        lines += _function(rng, f"{rng.choice(WORDS)}_{k}")
    return lines


def _edit(rng: random.Random, lines: list[str]) -> list[str]:
    lines = list(lines)
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        at = rng.randrange(len(lines) + 1)
        if kind < 0.4:
            lines[at:at] = _function(rng, f"{rng.choice(WORDS)}_{rng.randint(0, 999)}")
        elif kind < 0.8 and lines:
            at = min(at, len(lines) - 1)
            lines[at] = f"    {rng.choice(WORDS)} = {rng.randint(0, 999)}  # changed\n"
        elif len(lines) > 10:
            del lines[at : at + rng.randint(1, 5)]
    return lines


def generate_repository(path: Path, commits: int, seed: int = 0) -> Path:
    """A repository of ``commits`` commits on one branch (plus a few merges), built with pygit2."""
    rng = random.Random(seed)
    repo = pygit2.init_repository(str(path), bare=True)
    files: dict[str, list[str]] = {"LICENSE": ["MIT License\n"], "pkg/__init__.py": ["\n"]}
    for k in range(20):
        files[f"pkg/mod{k}.py"] = _new_file(rng)
    parents: list = []
    side = None
    for n in range(commits):
        if n:
            names = [p for p in files if p.endswith(".py")]
            roll = rng.random()
            if roll < 0.05:
                files[f"pkg/new{n}.py"] = _new_file(rng)
            elif roll < 0.08 and len(names) > 5:
                old = rng.choice(names)
                files[f"pkg/renamed{n}.py"] = _edit(rng, files.pop(old))
            elif roll < 0.10 and len(names) > 5:
                files.pop(rng.choice(names))
            else:
                for name in rng.sample(names, min(len(names), rng.choice((1, 1, 1, 2, 3)))):
                    files[name] = _edit(rng, files[name])
        tree = _tree(repo, files)
        sig = pygit2.Signature("Bench", "bench@example.com", 1_700_000_000 + 60 * n, 0)
        message = f"Change {rng.choice(WORDS)} and {rng.choice(WORDS)} in commit {n}\n"
        if side is not None and n % 100 == 50:
            parents = [parents[0], side]
            message = f"Merge branch side {n}\n"
        oid = repo.create_commit(None, sig, sig, message, tree, parents)
        if n % 100 == 20:
            side = oid
        parents = [oid]
    repo.references.create("refs/heads/main", parents[0], force=True)
    repo.set_head("refs/heads/main")
    # Pack it as a clone would be: loose objects cost both tools a file open and an inflate per blob.
    subprocess.run(["git", "-C", str(path), "repack", "-a", "-d", "-q"], check=True)
    return path


def _tree(repo, files: dict[str, list[str]]):
    top = repo.TreeBuilder()
    sub = repo.TreeBuilder()
    for name, lines in sorted(files.items()):
        blob = repo.create_blob("".join(lines).encode())
        if name.startswith("pkg/"):
            sub.insert(name[4:], blob, pygit2.enums.FileMode.BLOB)
        else:
            top.insert(name, blob, pygit2.enums.FileMode.BLOB)
    top.insert("pkg", sub.write(), pygit2.enums.FileMode.TREE)
    return top.write()


# --------------------------------------------------------------------------- the two miners


def run_editlm(path: Path, verify: bool = True) -> tuple[float, int, dict]:
    from editlm.data.mining.commits import MiningOptions, iter_records

    skipped: Counter = Counter()
    start = time.perf_counter()
    diffs = {}
    for row in iter_records(path, MiningOptions(filter="none", verify=verify), skipped=skipped):
        diffs[(row["commit"], row["path"])] = row["diff"][row["diff"].find("\n@@") + 1 :]
    return time.perf_counter() - start, len(diffs), diffs


def run_pydriller(path: Path) -> tuple[float, int, dict]:
    from pydriller import Repository

    start = time.perf_counter()
    diffs = {}
    for commit in Repository(str(path), only_no_merge=True).traverse_commits():
        for mod in commit.modified_files:
            _ = mod.source_code_before, mod.source_code  # the files before and after, as editlm gives
            diffs[(commit.hash, mod.new_path or mod.old_path)] = mod.diff
    return time.perf_counter() - start, len(diffs), diffs


def run_editlm_parallel(path: Path) -> float:
    from editlm.data.mining.commits import MiningOptions
    from editlm.data.mining.job import run_mining

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_mining([path], Path(tmp) / "out.parquet", MiningOptions(filter="none"), batch_size=64)
        return time.perf_counter() - start


def _agreement(ours: dict, theirs: dict) -> tuple[int, int]:
    """How many per-file diffs are the same text (git's function context after ``@@`` may end in a
    space where libgit2 cuts it at 80 characters; GitPython strips it)."""

    def norm(diff: str) -> list[str]:
        return [line.rstrip() if line.startswith("@@") else line for line in diff.rstrip("\n").split("\n")]

    common = set(ours) & set(theirs)
    same = sum(norm(ours[k]) == norm(theirs[k]) for k in common)
    return same, len(common)


def count_commits(path: Path) -> int:
    repo = pygit2.Repository(str(path))
    return sum(1 for c in repo.walk(repo.head.target) if len(c.parent_ids) <= 1)


def measure(name: str, path: Path, parallel: bool, repeats: int) -> dict:
    """Best of ``repeats`` interleaved runs of each tool (the minimum is the least disturbed by other
    work on the machine), after one untimed warm-up of each on a small repository."""
    commits = count_commits(path)
    ours_times, theirs_times, unverified_times = [], [], []
    for _ in range(repeats):
        ours_time, ours_rows, ours = run_editlm(path)
        theirs_time, theirs_rows, theirs = run_pydriller(path)
        ours_times.append(ours_time)
        theirs_times.append(theirs_time)
        unverified_times.append(run_editlm(path, verify=False)[0])
    ours_time, theirs_time = min(ours_times), min(theirs_times)
    same, common = _agreement(ours, theirs)
    result = {
        "repository": name,
        "commits": commits,
        "editlm_commits_per_s": round(commits / ours_time, 1),
        "pydriller_commits_per_s": round(commits / theirs_time, 1),
        "ratio": round(theirs_time / ours_time, 2),
        "ratio_without_verify": round(theirs_time / min(unverified_times), 2),
        "editlm_files": ours_rows,
        "pydriller_files": theirs_rows,
        "same_diff": same,
        "compared": common,
    }
    if parallel:
        result["editlm_job_all_cores_commits_per_s"] = round(commits / run_editlm_parallel(path), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="300 generated commits, one run each, no job run"
    )
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each tool; the best counts")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    commits = 300 if args.quick else args.commits
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate_repository(Path(tmp) / "generated.git", commits)
        warm = generate_repository(Path(tmp) / "warm.git", 20, seed=1)
        run_editlm(warm), run_pydriller(warm)  # imports and first-call set-up stay out of the timings
        repeats = 1 if args.quick else args.repeats
        results.append(measure(f"generated ({commits} commits)", generated, not args.quick, repeats))
        if (args.repo / ".git").exists() or (args.repo / "HEAD").exists():
            results.append(measure(f"own history ({args.repo.name})", args.repo, False, max(repeats, 3)))
    header = (
        f"{'repository':28} {'commits':>7} {'editlm c/s':>11} {'PyDriller c/s':>14} {'ratio':>6} "
        f"{'no verify':>9} {'same diffs':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['repository']:28} {r['commits']:>7} {r['editlm_commits_per_s']:>11} "
            f"{r['pydriller_commits_per_s']:>14} {r['ratio']:>6} {r['ratio_without_verify']:>9} "
            f"{r['same_diff']:>5}/{r['compared']:<6}"
        )
    if "editlm_job_all_cores_commits_per_s" in results[0]:
        figure = results[0]["editlm_job_all_cores_commits_per_s"]
        print(f"editlm mine job (all cores, Parquet written) on the generated repository: {figure} c/s")
    print(json.dumps({"ratio": results[0]["ratio"], "results": results}), file=sys.stdout)


if __name__ == "__main__":
    main()
