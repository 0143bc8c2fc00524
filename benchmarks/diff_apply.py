"""How well patchers apply real commit diffs, undamaged and damaged the way model output is.

Material: real commits (``git diff-tree -p -M``, multi-file, with renames, new and deleted files) of
the repositories given with ``--repo`` (a git directory or a ``.bundle``; default: the bundles in
``../shared/repos/``, else this project's own history). Each diff is applied as it is and after one
damage of :mod:`editlm.edits.damage` (cut inside the last hunk, prose after, fences, a duplicated
hunk, reordered hunks, the diff twice, CRLF diff, shifted numbers, wrong counts, whitespace drift,
no numbers) or with the files in CRLF and the diff in LF. Patchers: editlm (``apply_patch``), GNU
``patch``, ``git apply``, whatthepatch and unidiff (which parses only: applied strictly at its
stated lines here). Outcome per case: correct (the intended files), refused (an error or non-zero
exit) or WRONG (other files without an error: the dangerous case).

Also: ``make_diff`` against difflib and ``git diff --no-index`` on large repetitive files, and the
time a hostile request (a 200 KB file, a 2,001-line hunk that matches nowhere) holds ``apply_diff``.

    python benchmarks/diff_apply.py [--quick] [--repo PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from editlm.edits.damage import DAMAGES
from editlm.edits.diff import DiffError, apply_diff, apply_patch, make_diff

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("clean", "clean_multi_file", "new_file", "crlf_files", *DAMAGES)
Files = dict[str, str]


# --------------------------------------------------------------------------- material


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout


def default_repos(tmp: Path) -> list[Path]:
    # ../shared/repos/ beside the main checkout (a worktree sits one level deeper)
    shared = next((p / "shared" / "repos" for p in ROOT.parents if (p / "shared" / "repos").is_dir()), None)
    bundles = sorted(shared.glob("*.bundle")) if shared else []
    if bundles:
        return [_clone(b, tmp) for b in bundles]
    return [ROOT]


def _clone(path: Path, tmp: Path) -> Path:
    if path.suffix != ".bundle":
        return path
    target = tmp / path.stem
    subprocess.run(["git", "clone", "-q", str(path), str(target)], check=True, capture_output=True)
    return target


def commits(repo: Path, count: int, rng: random.Random) -> list[dict]:
    """Up to ``count`` random non-merge commits as (diff, files before, files after)."""
    shas = _git(repo, "rev-list", "--no-merges", "HEAD").decode().split()
    rng.shuffle(shas)
    out = []
    for sha in shas:
        if len(out) >= count:
            break
        try:
            diff = _git(repo, "diff-tree", "-p", "-M", "--no-color", "--root", "--no-commit-id", sha).decode()
        except UnicodeDecodeError:
            continue
        if not diff.strip() or "Binary files" in diff or "GIT binary patch" in diff or len(diff) > 60_000:
            continue
        case = _files_of(repo, sha)
        if case is not None:
            out.append({"repo": repo.name, "sha": sha, "diff": diff, **case})
    return out


def _files_of(repo: Path, sha: str) -> dict | None:
    status = _git(repo, "diff-tree", "-r", "-M", "--name-status", "--no-commit-id", "--root", sha).decode()
    before: Files = {}
    after: dict[str, str | None] = {}

    def blob(rev: str, path: str) -> str:
        data = _git(repo, "show", f"{rev}:{path}")
        if len(data) > 300_000:
            raise ValueError("large")
        return data.decode("utf-8")

    try:
        for row in status.splitlines():
            kind, *paths = row.split("\t")
            if kind[0] == "M":
                before[paths[0]], after[paths[0]] = blob(f"{sha}^", paths[0]), blob(sha, paths[0])
            elif kind[0] == "A":
                after[paths[0]] = blob(sha, paths[0])
            elif kind[0] == "D":
                before[paths[0]], after[paths[0]] = blob(f"{sha}^", paths[0]), None
            elif kind[0] == "R":
                before[paths[0]], after[paths[0]], after[paths[1]] = (
                    blob(f"{sha}^", paths[0]),
                    None,
                    blob(sha, paths[1]),
                )
            else:
                return None  # copies, type changes: out of scope
    except (subprocess.CalledProcessError, UnicodeDecodeError, ValueError):
        return None
    final = {**before, **after}
    return {"before": before, "after": {k: v for k, v in final.items() if v is not None}}


def cases(material: list[dict], rng: random.Random) -> list[tuple[str, Files, Files, str]]:
    """(class, files before, intended files after, diff) for every class that fits each commit."""
    out = []
    for c in material:
        multi = c["diff"].count("\ndiff --git ") + c["diff"].startswith("diff --git ")
        new = "\n--- /dev/null\n" in c["diff"]
        out.append(
            (
                "clean_multi_file" if multi > 1 else "new_file" if new else "clean",
                c["before"],
                c["after"],
                c["diff"],
            )
        )
        if c["before"] and not new:
            crlf = {k: v.replace("\n", "\r\n") for k, v in c["before"].items()}
            intended = {k: (v.replace("\n", "\r\n") if k in crlf else v) for k, v in c["after"].items()}
            out.append(("crlf_files", crlf, intended, c["diff"]))
        for name, damage in DAMAGES.items():
            damaged = damage(c["diff"], rng)
            if damaged is not None:
                out.append((name, c["before"], c["after"], damaged))
    return out


# --------------------------------------------------------------------------- patchers


def run_editlm(before: Files, diff: str, workdir: Path) -> Files:
    result = apply_patch(before, diff, require_newline=True)
    return {k: v for k, v in result.items() if v is not None}


def _write(workdir: Path, files: Files) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for path, text in files.items():
        target = workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))


def _read(workdir: Path) -> Files:
    out = {}
    for path in workdir.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(workdir).parts:
            out[path.relative_to(workdir).as_posix()] = path.read_bytes().decode("utf-8", "replace")
    return out


def _tool(args: list[str], before: Files, diff: str, workdir: Path) -> Files:
    _write(workdir, before)
    proc = subprocess.run(args, input=diff.encode(), cwd=workdir, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace")[:200])
    return _read(workdir)


def run_gnu_patch(before: Files, diff: str, workdir: Path) -> Files:
    return _tool(
        ["patch", "-p1", "-s", "-f", "--no-backup-if-mismatch", "--reject-file=-"], before, diff, workdir
    )


def run_git_apply(before: Files, diff: str, workdir: Path) -> Files:
    return _tool(["git", "apply", "-p1", "--whitespace=nowarn", "-"], before, diff, workdir)


def _strip(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


def run_whatthepatch(before: Files, diff: str, workdir: Path) -> Files:
    import whatthepatch

    result = dict(before)
    patches = list(whatthepatch.parse_patch(diff))
    if not patches:
        raise ValueError("no patch found")
    for patch in patches:
        header = patch.header
        if header is None:
            raise ValueError("no file header")
        old, new = _strip(header.old_path), _strip(header.new_path)
        text = "" if old == "/dev/null" else result[old]
        lines = whatthepatch.apply_diff(patch, text.split("\n"))
        if new == "/dev/null":
            del result[old]
            continue
        if old != new and old != "/dev/null":
            del result[old]
        result[new] = "\n".join(lines)
    return result


def run_unidiff(before: Files, diff: str, workdir: Path) -> Files:
    """unidiff parses; it has no apply. Applied here the strict way: each hunk at its stated line,
    every context and removed line checked."""
    import unidiff

    result = dict(before)
    patch = unidiff.PatchSet(diff)
    if not patch:
        raise ValueError("no patch found")
    for pf in patch:
        old, new = _strip(pf.source_file), _strip(pf.target_file)
        lines = [] if pf.is_added_file else result[old].splitlines(keepends=True)
        out, cursor = [], 0
        for hunk in pf:
            start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
            if start < cursor:
                raise ValueError("hunks out of order")
            out += lines[cursor:start]
            k = start
            for line in hunk:
                if line.is_context or line.is_removed:
                    if k >= len(lines) or lines[k].rstrip("\n") != line.value.rstrip("\n"):
                        raise ValueError("hunk does not match")
                    if line.is_context:
                        out.append(lines[k])
                    k += 1
                elif line.is_added:
                    out.append(line.value)
            cursor = k
        out += lines[cursor:]
        if pf.is_removed_file:
            del result[old]
            continue
        if old != new and not pf.is_added_file:
            del result[old]
        result[new] = "".join(out)
    return result


PATCHERS: dict[str, Callable[[Files, str, Path], Files]] = {
    "editlm": run_editlm,
    "GNU patch": run_gnu_patch,
    "git apply": run_git_apply,
    "whatthepatch": run_whatthepatch,
    "unidiff": run_unidiff,
}


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn, cases_, workdir: Path) -> dict:
    outcome: Counter[tuple[str, str]] = Counter()
    cpu = {k: 0.0 for k in CLASSES}
    for kind, before, after, diff in cases_:
        start = _cpu()
        try:
            result = fn(before, diff, workdir)
        except (DiffError, Exception):  # peers raise their own types; any exception is a refusal
            outcome[kind, "refused"] += 1
        else:
            outcome[kind, "correct" if result == after else "wrong"] += 1
        cpu[kind] += _cpu() - start
    return {"outcome": outcome, "cpu": cpu}


# --------------------------------------------------------------------------- make_diff and the search


def make_diff_speed(sizes: list[int], with_difflib: int, workdir: Path) -> list[dict]:
    rng = random.Random(1)
    rows = []
    for n in sizes:
        before = "".join(
            rng.choice(["    pass\n", "\n", "}\n", "    x = 1\n", "def f():\n"]) for _ in range(n)
        )
        lines = before.splitlines(keepends=True)
        for _ in range(n // 200):
            lines[rng.randrange(n)] = f"changed {rng.random()}\n"
        after = "".join(lines)
        (workdir / "a").write_text(before)
        (workdir / "b").write_text(after)
        row = {"lines": n}
        start = time.process_time()
        diff = make_diff(before, after)
        row["editlm_s"] = time.process_time() - start
        assert apply_diff(before, diff) == after
        start = _cpu()
        subprocess.run(["git", "diff", "--no-index", "a", "b"], cwd=workdir, capture_output=True)
        row["git_s"] = _cpu() - start
        if n <= with_difflib:
            start = time.process_time()
            make_diff(before, after, algorithm="difflib")
            row["difflib_s"] = time.process_time() - start
        rows.append(row)
    return rows


def hostile_search() -> float:
    """CPU seconds for a 200 KB file and a 2,001-line hunk that matches nowhere (the issue's case)."""
    rng = random.Random(2)
    source = "".join(rng.choice(["    pass\n", "\n", "x = 1\n", "    return x\n"]) for _ in range(25_000))[
        :200_000
    ]
    hunk = "@@ -10,2001 +10,2001 @@\n" + "".join(" " + rng.choice(["    pass\n", "\n"]) for _ in range(2000))
    hunk += "-    nowhere\n+    new\n"
    start = time.process_time()
    try:
        apply_diff(source, hunk)
    except DiffError:
        pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 commits per repository instead of 200")
    parser.add_argument("--repo", action="append", type=Path, help="git directory or bundle (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    per_repo = 40 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        repos = [_clone(p, tmp_path) for p in args.repo] if args.repo else default_repos(tmp_path)
        material = [c for repo in repos for c in commits(repo, per_repo, rng)]
        all_cases = cases(material, rng)
        workdir = tmp_path / "work"
        results = {name: measure(fn, all_cases, workdir) for name, fn in PATCHERS.items()}
        speed = make_diff_speed([2_000, 10_000] if args.quick else [2_000, 10_000, 40_000], 10_000, tmp_path)
        hostile = hostile_search()
    load = os.getloadavg()[0]
    names = list(PATCHERS)
    counts = Counter(kind for kind, *_ in all_cases)
    print(
        f"{len(material)} real commits of {', '.join(r.name for r in repos)}; {len(all_cases)} cases; "
        f"load average {load:.1f} (shared machine: CPU times are noisy)\n"
    )
    print("share correct / refused / WRONG per class (%)")
    print(f"{'class':<18}{'n':>5}" + "".join(f"{n:>20}" for n in names))
    summary: dict = {"benchmark": "diff_apply", "commits": len(material), "cases": len(all_cases)}
    for kind in CLASSES:
        if not counts[kind]:
            continue
        cells = []
        for name in names:
            o = results[name]["outcome"]
            c, r, w = (100 * o[kind, x] / counts[kind] for x in ("correct", "refused", "wrong"))
            cells.append(f"{c:5.1f} /{r:5.1f} /{w:5.1f}")
            summary.setdefault("correct", {}).setdefault(kind, {})[name] = round(c / 100, 4)
            summary.setdefault("wrong", {}).setdefault(kind, {})[name] = round(w / 100, 4)
        print(f"{kind:<18}{counts[kind]:>5}" + "".join(f"{cell:>20}" for cell in cells))
    clean = [k for k in ("clean", "clean_multi_file", "new_file") if counts[k]]
    n_clean = sum(counts[k] for k in clean)
    print(f"\nCPU ms per undamaged diff ({n_clean} diffs; subprocess patchers include process start):")
    per = {}
    for name in names:
        per[name] = 1000 * sum(results[name]["cpu"][k] for k in clean) / max(n_clean, 1)
        print(f"  {name:<14}{per[name]:8.2f}")
    print("\nmake_diff on repetitive files (CPU s):")
    for row in speed:
        print(
            f"  {row['lines']:>6} lines: editlm {row['editlm_s']:.3f}, git diff {row['git_s']:.3f}, "
            f"difflib {row.get('difflib_s', float('nan')):.3f}"
        )
    print(f"\nhostile search (200 KB file, 2,001-line hunk matching nowhere): {hostile:.3f} CPU s")
    wins = {
        kind: all(summary["correct"][kind]["editlm"] >= summary["correct"][kind][n] for n in names)
        for kind in summary["correct"]
    }
    summary.update(
        editlm_most_correct_in=sorted(k for k, v in wins.items() if v),
        editlm_not_most_correct_in=sorted(k for k, v in wins.items() if not v),
        editlm_wrong_total=sum(results["editlm"]["outcome"][k, "wrong"] for k in CLASSES),
        cpu_ms_per_clean_diff={k: round(v, 3) for k, v in per.items()},
        make_diff_s=speed,
        hostile_search_s=round(hostile, 4),
        load_average=round(load, 2),
    )
    sys.stdout.flush()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
