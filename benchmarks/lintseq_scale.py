"""LintSeq at scale: ``editlm lintseq`` over many real programs on all cores, memory over time.

The input is made here from the installed packages' source (site-packages): top-level functions and
classes (with their decorators) after their module's imports, ``--min-lines`` to ``--max-lines``
lines, lint-clean on their own, each once, from every package, in a seeded order. The run is the command a user types (``editlm lintseq IN -o OUT.parquet``, one
subprocess), and while it runs the resident memory of its whole process tree (the job, the
forkserver, the workers) is sampled every ``--every`` seconds with the machine's load average.

Printed: a timeline (programs in the shards flushed so far, total and largest-process RSS, load), then programs per
second (wall), CPU milliseconds per program (the job's process tree, as last sampled), peak RSS, and whether memory stayed
flat (the largest process's RSS in the last tenth of the run against the first tenth after warm-up).
The last line is one JSON object.

Run: ``python benchmarks/lintseq_scale.py --programs 100000`` (``--quick``: 2,000).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path


def make_input(path: Path, count: int, min_lines: int, max_lines: int, seed: int, as_is: bool = False) -> int:
    """Write ``count`` distinct programs from site-packages as JSONL; return how many.

    A program is a top-level function or class (with its decorators) after its module's import
    statements, kept only when the whole is lint-clean on its own (pyflakes + compiler): a
    definition cut out of its module without them mostly uses names it no longer has, and LintSeq
    then deletes it whole in one edit (74% of such sequences, one edit long). ``as_is``: the bare
    definitions, clean or not."""
    from editlm.data.lintseq.lint import lint_errors

    base = Path(sysconfig.get_paths()["purelib"])
    files = sorted(str(p) for p in base.rglob("*.py"))
    random.Random(seed).shuffle(files)
    seen: set[int] = set()
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for name in files:
            try:
                text = Path(name).read_text(encoding="utf-8")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = ast.parse(text)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
                continue
            lines = text.split("\n")
            imports = (
                ""
                if as_is
                else "".join(
                    "\n".join(lines[node.lineno - 1 : node.end_lineno]) + "\n"
                    for node in tree.body
                    if isinstance(node, ast.Import | ast.ImportFrom) and node.col_offset == 0
                )
            )
            for node in tree.body:
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    continue
                start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
                body = "\n".join(lines[start : node.end_lineno]) + "\n"
                program = imports + ("\n\n" if imports else "") + body
                if not min_lines <= program.count("\n") <= max_lines:
                    continue
                key = hash(program)
                if key in seen or (not as_is and lint_errors(program)):
                    continue
                seen.add(key)
                source = f"{Path(name).relative_to(base)}:{node.name}"
                out.write(json.dumps({"instruction": source, "program": program}) + "\n")
                written += 1
                if written >= count:
                    return written
    return written


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (fields 14 and 15 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _programs_done(out: Path, seen: dict[str, int]) -> int:
    """Programs in the shards flushed so far (written or skipped), from the writer's key files
    (each is written once, so each is read once)."""
    for keys in (out.parent / (out.name + ".partial")).glob("part-*.keys.json"):
        if keys.name not in seen:
            try:
                state = json.loads(keys.read_text())
            except (OSError, ValueError):  # being written: next time
                continue
            seen[keys.name] = len(state["keys"]) + len(state["skips"])
    return sum(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2,000 programs")
    parser.add_argument("--min-lines", type=int, default=5)
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument(
        "--as-is", action="store_true", help="bare definitions, without imports or the clean filter"
    )
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="0: all cores")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where input and output go (default: a temp dir)"
    )
    parser.add_argument(
        "--input", type=Path, default=None, help="an input made before (JSONL), not a new one"
    )
    args = parser.parse_args()
    count = 2000 if args.quick else args.programs
    work = args.dir or Path(tempfile.mkdtemp(prefix="lintseq_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    inp, out = work / "programs.jsonl", work / "lintseq.parquet"
    start = time.perf_counter()
    if args.input:
        inp = args.input
        made = sum(1 for line in open(inp, encoding="utf-8") if line.strip())
    else:
        made = make_input(inp, count, args.min_lines, args.max_lines, args.seed, args.as_is)
    sizes = [json.loads(line)["program"].count("\n") for line in open(inp, encoding="utf-8")]
    print(
        f"input: {made} {'bare' if args.as_is else 'lint-clean'} top-level definitions from site-packages"
        f"{'' if args.as_is else ' after their module imports'}, {args.min_lines}-{args.max_lines} lines "
        f"({sum(sizes)} lines in all), made in {time.perf_counter() - start:.0f} s"
    )
    command = [str(Path(sys.executable).parent / "editlm"), "lintseq", str(inp), "-o", str(out)]
    command += [
        "--samples",
        str(args.samples),
        "--workers",
        str(args.workers),
        "--no-progress",
        "--overwrite",
    ]
    print("$", " ".join(command))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timeline, flushed, cpu_seen = [], {}, {}
    print(f"{'s':>6}{'programs':>9}{'RSS MB all':>12}{'largest':>9}{'procs':>7}{'load':>7}")
    while job.poll() is None:
        pids = _tree(job.pid)
        rss = [_rss_mb(p) for p in pids]
        for p in pids:
            used = _cpu_s(p)
            if used is not None:
                cpu_seen[p] = max(cpu_seen.get(p, 0.0), used)
        point = {
            "s": round(time.perf_counter() - start, 1),
            "programs": _programs_done(out, flushed),
            "rss_mb": round(sum(rss), 1),
            "largest_mb": round(max(rss, default=0.0), 1),
            "processes": len(pids),
            "load": round(os.getloadavg()[0], 2),
        }
        timeline.append(point)
        print(
            f"{point['s']:>6.0f}{point['programs']:>9}{point['rss_mb']:>12.0f}{point['largest_mb']:>9.0f}"
            f"{point['processes']:>7}{point['load']:>7.2f}",
            flush=True,
        )
        try:
            job.wait(timeout=args.every)
        except subprocess.TimeoutExpired:
            pass
    wall = time.perf_counter() - start
    output = job.stdout.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if job.returncode != 0:
        print(output)
        raise SystemExit(f"editlm lintseq failed with exit code {job.returncode}")
    # The workers are the forkserver's children, which nobody reaps into this process's rusage:
    # their CPU is the last figure sampled (so it may miss up to --every seconds of each worker).
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(cpu_seen.values()))
    summary = json.loads(Path(str(out) + ".summary.json").read_text())
    done = summary["this_run"]
    processed = done["rows"] // args.samples + sum(done["skipped"].values())
    warm = [p for p in timeline if p["s"] >= 30] or timeline
    tenth = max(1, len(warm) // 10)
    first = max(p["largest_mb"] for p in warm[:tenth])
    last = max(p["largest_mb"] for p in warm[-tenth:])
    result = {
        "programs": made,
        "lines": sum(sizes),
        "processed": processed,
        "rows": done["rows"],
        "skipped": done["skipped"],
        "samples": args.samples,
        "wall_s": round(wall, 1),
        "programs_per_s": round(processed / wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_ms_per_program": round(1000 * cpu / max(processed, 1), 2),
        "peak_rss_mb_all": max(p["rss_mb"] for p in timeline),
        "peak_rss_mb_largest": max(p["largest_mb"] for p in timeline),
        "largest_mb_first_tenth": first,
        "largest_mb_last_tenth": last,
        "load_avg_mean": round(sum(p["load"] for p in timeline) / len(timeline), 2),
        "workers": args.workers or os.cpu_count(),
        "timeline": timeline,
    }
    print(
        f"{processed} programs in {wall:.0f} s wall: {result['programs_per_s']} programs/s; "
        f"{result['cpu_ms_per_program']} CPU ms per program (job's process tree, sampled: a lower bound); {done['rows']} rows, "
        f"skipped {done['skipped']}"
    )
    print(
        f"peak RSS: {result['peak_rss_mb_all']:.0f} MB all processes, {result['peak_rss_mb_largest']:.0f} MB "
        f"largest; largest process {first:.0f} MB in the first tenth (after 30 s) and {last:.0f} MB in the "
        f"last; mean load average {result['load_avg_mean']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
