"""Commit mining speed on real histories: editlm (pygit2, in-process) against PyDriller, with git as floor.

For every non-merge commit reachable from HEAD, both tools produce, per changed file, the unified diff
and the file before and after. Each measurement runs in a fresh process (so CPU time and memory are that
tool's alone) and reports wall time, CPU time (user + system, the tool's own processes and the git
processes it starts), commits/s, rows/s and peak memory (the sum of the resident sets of the process
and all its children, PSS, sampled every 100 ms):

- ``git log -p``: ``git log -p -M --no-merges`` to /dev/null: the floor, diffs only (no file
  contents, no rows);
- ``PyDriller``: ``Repository(only_no_merge=True)``, reading ``diff``, ``source_code_before`` and
  ``source_code`` of every modified file: its documented usage and its fastest for this output (its
  ``num_workers`` threads only hand out commit objects, the diffs run in the thread that reads
  ``modified_files``; ``histogram_diff`` off, git's default diff as editlm's);
- ``editlm``: ``iter_records(filter="none")`` as a user calls it, with the row check (every diff
  checked to turn before into after) and without (``editlm --no-verify``): the rows are made in the
  calling process, and with two cores or more a helper process forked from it makes the libgit2
  diffs ahead (:mod:`editlm.data.mining.ahead`; ``editlm, no helper``: one process alone, the
  same rows, checked). editlm's rows also carry the diff-model sample, prompt, completion, license
  and language;
- ``editlm mine``: the whole command a user runs, in its own process (``python -m editlm.cli mine``:
  interpreter, command-line imports, mining, writing, summary and resume state), into Parquet and
  into JSONL, with its default worker count; ``--workers 1,2`` adds the Parquet job at those worker
  counts, side by side.

``--stages`` adds where editlm's time goes (one more run of ``iter_records`` over the whole history
with a clock on each stage: tree diffs, blob reads, licences, rename pairing, libgit2's diffs, diff
headers, the row check, the rest). The start-up (the interpreter and imports, measured alone) is
always reported.

The per-file diffs of editlm and PyDriller are compared (``same diffs``) so the figures are for the same
output. Default repositories: the project's shared bundles (``EDITLM_REAL_REPOS``, default
``/work/shared/repos/*.bundle``), cloned to a temporary folder; ``--repo PATH`` (repeatable) for others.

``--helper-sizes 100,200,400`` adds the newest N commits mined as a history of their own, one process
alone against one with the diff helper: where the helper starts to pay.

    .venv/bin/python benchmarks/mining_speed.py [--quick] [--repo PATH ...] [--repeats N] [--stages]
        [--workers 1,2]

Each figure is the best of ``--repeats`` interleaved runs (3; 1 with ``--quick``, which also mines only
the first 300 commits). The last line is one JSON object; ``ratio`` is PyDriller's wall time over
editlm's (one process each, row check on) on the first repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- what runs in a child


def _hunks_key(diff: str) -> str:
    """A digest of a diff from its first ``@@``, trailing whitespace of hunk headers dropped (GitPython
    strips it; git does too since editlm follows it). About 0.02 s for the 2,819 diffs of more-itertools."""
    at = diff.find("@@")
    lines = diff[at:].rstrip("\n").split("\n") if at >= 0 else []
    norm = "\n".join(line.rstrip() if line.startswith("@@") else line for line in lines)
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def child_editlm(repo: str, out: str, verify: bool, only: str, helper: bool | None = None) -> None:
    from editlm.data.mining.commits import (
        MiningOptions,
        RepoCache,
        iter_records,
        mine_commit,
        open_repository,
    )

    options = MiningOptions(filter="none", verify=verify, max_file_bytes=10**9)
    if only:  # these commits as a history of their own, with a helper as iter_records would choose
        from editlm.data.mining import ahead

        repository, cache = open_repository(repo), RepoCache()
        commits = Path(only).read_text().split()
        wanted = ahead.helper_wanted(len(commits)) if helper is None else helper
        made = ahead.DiffsAhead(repo, commits, options) if wanted else None

        def mined():
            try:
                for i, c in enumerate(commits):
                    diffs = made.lookup(i) if made is not None else None
                    yield from mine_commit(repository, c, options, "bench", cache, diffs).rows
            finally:
                if made is not None:
                    made.close()

        rows = mined()
    else:
        rows = iter_records(repo, options, helper=helper)
    digests = {f"{row['commit']}:{row['path']}": _hunks_key(row["diff"]) for row in rows}
    Path(out).write_text(json.dumps(digests))


def child_stages(repo: str, out: str) -> None:
    """Wall seconds per stage of ``iter_records`` with the check on: each stage's function is wrapped
    with a clock (a microsecond per call; cProfile would inflate the Python stages several times)."""
    import functools

    from editlm.data.mining import commits, gitdiff
    from editlm.data.mining.commits import MiningOptions, iter_records

    spent: dict[str, float] = {}

    def clocked(name, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return run

    commits.tree_changes = clocked("tree diffs", commits.tree_changes)
    commits.RepoCache.blob = clocked("blob reads", commits.RepoCache.blob)
    commits.RepoCache.license_of = clocked("licences", commits.RepoCache.license_of)
    gitdiff.pair_renames = clocked("rename pairing", gitdiff.pair_renames)
    gitdiff.hunks_of = clocked("libgit2 diffs (xdiff)", gitdiff.hunks_of)
    gitdiff.header = clocked("diff headers", gitdiff.header)
    commits.hunks_apply = clocked("row check", commits.hunks_apply)
    options = MiningOptions(filter="none", max_file_bytes=10**9)
    start = time.perf_counter()
    rows = sum(1 for _ in iter_records(repo, options))
    total = time.perf_counter() - start
    spent["rows and the rest"] = total - sum(spent.values())
    Path(out).write_text(json.dumps({"rows": rows, "mining_s": total, "stages_s": spent}))


def child_pydriller(repo: str, out: str, only: str) -> None:
    from pydriller import Repository

    commits = Path(only).read_text().split() if only else None
    digests = {}
    for commit in Repository(repo, only_no_merge=True, only_commits=commits).traverse_commits():
        for mod in commit.modified_files:
            _ = mod.source_code_before, mod.source_code  # the files before and after, as editlm gives
            digests[f"{commit.hash}:{mod.new_path or mod.old_path}"] = _hunks_key(mod.diff or "")
    Path(out).write_text(json.dumps(digests))


# --------------------------------------------------------------------------- measuring


def run_measured(command: list[str], env: dict | None = None, stdin: str | None = None) -> dict:
    """Wall time, CPU time and peak memory of a command and every process it starts.

    CPU: the larger of two lower bounds: getrusage of the reaped child (its own time and that of every
    process it waited for, such as PyDriller's short git processes) and the sum of each process's own
    time last seen every 20 ms (which catches workers that a forkserver reaps). Memory: the sum of the processes' proportional set sizes (PSS: shared pages
    split between the processes sharing them, so forked workers are not counted twice), every 100 ms.
    """
    import psutil

    source = open(stdin, "rb") if stdin else subprocess.DEVNULL
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    watched = psutil.Process(process.pid)
    cpu: dict[int, float] = {}
    peak = 0
    tick = 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
        except psutil.Error:
            tree = []
        total = 0
        for p in tree:
            try:
                with p.oneshot():
                    times = p.cpu_times()
                    cpu[p.pid] = max(cpu.get(p.pid, 0.0), times.user + times.system)
                    if tick % 5 == 0:
                        total += p.memory_full_info().pss
            except psutil.Error:
                pass
        peak = max(peak, total)
        tick += 1
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if stdin:
        source.close()
    if process.returncode:
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}): {stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": max(reaped, sum(cpu.values())), "peak_mb": peak / 2**20}


def non_merge_commits(repo: Path, limit: int) -> list[str]:
    """The newest ``limit`` non-merge commits (all with 0), in the order editlm mines them."""
    import pygit2
    from pygit2.enums import SortMode

    r = pygit2.Repository(str(repo))
    ids = [
        str(c.id)
        for c in r.walk(r.head.target, SortMode.TOPOLOGICAL | SortMode.TIME)
        if len(c.parent_ids) <= 1
    ]
    return ids[:limit] if limit else ids


def measure(
    repo: Path, repeats: int, limit: int, workers: list[int], stages: bool = False, sizes: tuple = ()
) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    me = [sys.executable, str(Path(__file__).resolve())]
    best: dict[str, dict] = {}
    digests: dict[str, dict] = {}
    ids = non_merge_commits(repo, limit)
    with tempfile.TemporaryDirectory(prefix="mining-bench-") as tmp:
        only = ""
        log = ["git", "-C", str(repo), "log", "-p", "-M", "--no-merges", "--format=%H"]
        if limit:
            only = f"{tmp}/commits.txt"
            Path(only).write_text("\n".join(ids) + "\n")
            log = [*log[:3], "-c", "core.abbrev=auto", *log[3:], "--no-walk=unsorted", "--stdin"]
        editlm_cli = [sys.executable, "-m", "editlm.cli", "mine", str(repo), "--filter", "none"]
        editlm_cli += ["--max-file-bytes", str(10**9)]
        from editlm.data.mining.commits import list_commits, open_repository
        from editlm.data.mining.job import auto_workers

        chosen = auto_workers(len(list_commits(open_repository(repo))))
        job_name = f"editlm mine (default: {chosen} proc.)"
        for attempt in range(repeats):
            runs = {
                "git log -p": (log, None),
                "PyDriller": ([*me, "--child", "pydriller", str(repo), f"{tmp}/pd.json", only], "pd"),
                "editlm": ([*me, "--child", "editlm", str(repo), f"{tmp}/ed.json", only], "ed"),
                "editlm --no-verify": ([*me, "--child", "editlm-nocheck", str(repo), f"{tmp}/en.json", only], None),
                "editlm, no helper": ([*me, "--child", "editlm-alone", str(repo), f"{tmp}/ea.json", only], "ea"),
            }  # fmt: skip
            if not limit:
                for fmt in ("parquet", "jsonl"):
                    runs[f"{job_name}, {fmt}"] = ([*editlm_cli, "-o", f"{tmp}/out{attempt}.{fmt}"], None)
                for count in workers:  # the same job at other worker counts, side by side
                    out = f"{tmp}/out{attempt}-w{count}.parquet"
                    runs[f"editlm mine --workers {count}, parquet"] = (
                        [*editlm_cli, "--workers", str(count), "-o", out],
                        None,
                    )
            for name, (command, key) in runs.items():
                result = run_measured(command, env, stdin=only or None)
                if name not in best or result["wall_s"] < best[name]["wall_s"]:
                    best[name] = result
                if key:
                    digests[key] = json.loads(Path(f"{tmp}/{key}.json").read_text())
        startup = [sys.executable, "-c", "import pygit2, editlm.data.mining.commits"]
        start_s = min(run_measured(startup, env)["wall_s"] for _ in range(max(repeats, 2)))
        profile = None
        if stages:
            run_measured([*me, "--child", "stages", str(repo), f"{tmp}/st.json", ""], env)
            profile = json.loads(Path(f"{tmp}/st.json").read_text())
        helper_sizes = {}  # the newest N commits as a history: wall s without / with the diff helper
        for size in sizes:
            first = f"{tmp}/first{size}.txt"
            Path(first).write_text("\n".join(ids[:size]) + "\n")
            walls: dict[str, float] = {}
            for _ in range(repeats):
                for tool in ("editlm-alone", "editlm-helper"):
                    command = [*me, "--child", tool, str(repo), f"{tmp}/sz.json", first]
                    walls[tool] = min(walls.get(tool, 1e9), run_measured(command, env)["wall_s"])
            helper_sizes[min(size, len(ids))] = [
                round(walls["editlm-alone"], 3),
                round(walls["editlm-helper"], 3),
            ]
    commits = len(ids)
    rows = len(digests["ed"])
    for name, r in best.items():
        r["commits_per_s"] = commits / r["wall_s"]
        r["rows_per_s"] = (len(digests["pd"]) if name == "PyDriller" else rows) / r["wall_s"]
    if digests["ea"] != digests["ed"]:
        raise RuntimeError("editlm with and without its diff helper made different diffs")
    common = set(digests["ed"]) & set(digests["pd"])
    same = sum(digests["ed"][k] == digests["pd"][k] for k in common)
    pd, ed = best["PyDriller"], best["editlm"]
    job = next((r for n, r in best.items() if n.startswith("editlm mine") and n.endswith("parquet")), None)
    job_jsonl = next(
        (r for n, r in best.items() if n.startswith("editlm mine") and n.endswith("jsonl")), None
    )
    return {
        "repository": repo.name,
        "commits": commits,
        "editlm_rows": rows,
        "pydriller_rows": len(digests["pd"]),
        "same_diffs": same,
        "compared": len(common),
        "ratio": round(pd["wall_s"] / ed["wall_s"], 2),
        "ratio_cpu": round(pd["cpu_s"] / ed["cpu_s"], 2),
        "ratio_no_verify": round(pd["wall_s"] / best["editlm --no-verify"]["wall_s"], 2),
        "ratio_no_helper": round(pd["wall_s"] / best["editlm, no helper"]["wall_s"], 2),
        "ratio_job": round(pd["wall_s"] / job["wall_s"], 2) if job else None,
        "ratio_job_cpu": round(pd["cpu_s"] / job["cpu_s"], 2) if job else None,
        "ratio_job_jsonl": round(pd["wall_s"] / job_jsonl["wall_s"], 2) if job_jsonl else None,
        "ratio_job_jsonl_cpu": round(pd["cpu_s"] / job_jsonl["cpu_s"], 2) if job_jsonl else None,
        "ratio_job_workers": {
            n.split("--workers ")[1].split(",")[0]: [
                round(pd["wall_s"] / r["wall_s"], 2),
                round(pd["cpu_s"] / r["cpu_s"], 2),
            ]
            for n, r in best.items()
            if "--workers" in n
        },
        "over_git_log": round(ed["wall_s"] / best["git log -p"]["wall_s"], 2),
        "over_git_log_cpu": round(ed["cpu_s"] / max(best["git log -p"]["cpu_s"], 1e-3), 2),
        "startup_s": round(start_s, 3),
        "stages": profile,
        "helper_sizes": helper_sizes,
        "tools": {n: {k: round(v, 3) for k, v in r.items()} for n, r in best.items()},
    }


def default_repositories(tmp: Path) -> list[Path]:
    shared = Path(os.environ.get("EDITLM_REAL_REPOS", "/work/shared/repos"))
    repos = []
    for bundle in sorted(shared.glob("*.bundle")):
        clone = tmp / bundle.stem
        subprocess.run(["git", "clone", "-q", str(bundle), str(clone)], check=True)
        repos.append(clone)
    return repos


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tool, repo, out, only = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        if tool == "pydriller":
            child_pydriller(repo, out, only)
        elif tool == "stages":
            child_stages(repo, out)
        else:
            helper = {"editlm-alone": False, "editlm-helper": True}.get(tool)
            child_editlm(repo, out, verify=tool != "editlm-nocheck", only=only, helper=helper)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run each, the first 300 commits, no job")
    parser.add_argument("--repo", type=Path, action="append", help="a repository (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool; the fastest counts")
    parser.add_argument(
        "--workers",
        default="",
        help="also run editlm mine with these worker counts (comma-separated, e.g. 1,2) beside its default",
    )
    parser.add_argument("--stages", action="store_true", help="also profile where editlm's time goes")
    parser.add_argument(
        "--helper-sizes",
        default="",
        help="also mine the newest N commits (comma-separated, e.g. 100,200,400) with and without the "
        "diff helper: where it starts to pay (editlm.data.mining.ahead.HELPER_COMMITS)",
    )
    args = parser.parse_args()
    try:
        sizes = tuple(int(n) for n in args.helper_sizes.split(",") if n.strip())
    except ValueError:
        parser.error("--helper-sizes: counts of commits, e.g. 100,200,400")
    if any(n < 1 for n in sizes):
        parser.error("--helper-sizes: counts must be >= 1")
    from editlm.io.parallel import check_workers

    try:
        workers = [check_workers(int(w)) for w in args.workers.split(",") if w.strip()]
    except ValueError as exc:
        parser.error(f"--workers: {exc}")
    with tempfile.TemporaryDirectory(prefix="mining-repos-") as tmp:
        repos = args.repo or default_repositories(Path(tmp))
        if not repos:
            sys.exit("no repositories: give --repo PATH (the shared bundles are not here)")
        load = os.getloadavg()[0]
        results = [
            measure(
                r.resolve(),
                1 if args.quick else args.repeats,
                300 if args.quick else 0,
                workers,
                args.stages,
                sizes,
            )
            for r in repos
        ]
    load_end = os.getloadavg()[0]
    print(f"load average at the start: {load:.1f}, at the end: {load_end:.1f}, on {os.cpu_count()} cores")
    header = f"{'repository':16} {'tool':38} {'wall s':>7} {'CPU s':>7} {'commits/s':>9} {'rows/s':>8} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for res in results:
        for name, t in res["tools"].items():
            print(
                f"{res['repository']:16} {name:38} {t['wall_s']:>7.2f} {t['cpu_s']:>7.2f} "
                f"{t['commits_per_s']:>9.0f} {t['rows_per_s']:>8.0f} {t['peak_mb']:>8.0f}"
            )
        print(
            f"{res['repository']:16} PyDriller / editlm: {res['ratio']}x wall, {res['ratio_cpu']}x CPU, "
            f"{res['ratio_no_verify']}x without the check, {res['ratio_no_helper']}x without the helper; "
            f"same diffs {res['same_diffs']}/{res['compared']}"
        )
        if res["ratio_job"]:
            print(
                f"{res['repository']:16} PyDriller / editlm mine: Parquet {res['ratio_job']}x wall, "
                f"{res['ratio_job_cpu']}x CPU; JSONL {res['ratio_job_jsonl']}x wall, "
                f"{res['ratio_job_jsonl_cpu']}x CPU"
            )
        for count, (wall, cpu) in res["ratio_job_workers"].items():
            print(
                f"{res['repository']:16} PyDriller / editlm mine --workers {count}: {wall}x wall, {cpu}x CPU"
            )
        print(
            f"{res['repository']:16} editlm / git log -p (the floor): {res['over_git_log']}x wall, "
            f"{res['over_git_log_cpu']}x CPU; "
            f"start-up (interpreter, pygit2, editlm imports) {res['startup_s']:.2f} s"
        )
        for size, (alone, helped) in res["helper_sizes"].items():
            print(
                f"{res['repository']:16} newest {size} commits: {alone:.3f} s alone, {helped:.3f} s with "
                f"the diff helper ({alone / helped:.2f}x)"
            )
        if res["stages"]:
            st = res["stages"]
            print(
                f"{res['repository']:16} editlm stages, whole history, {st['mining_s']:.2f} s after start-up:"
            )
            for name, sec in st["stages_s"].items():
                print(f"{'':16}   {name:24} {sec:6.2f} s {100 * sec / st['mining_s']:4.0f}%")
    print(json.dumps({"ratio": results[0]["ratio"], "load": [load, load_end], "results": results}))


if __name__ == "__main__":
    main()
