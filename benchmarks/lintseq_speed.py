"""LintSeq speed, memory and data shape: editlm against the reference ``pylintseq`` 0.0.2.

Both run on the same real programs nobody here wrote: whole files and single definitions from the
installed packages' source (``editlm.data.lintseq.real_code``: 5 to 800 lines by default, equal shares
of the size buckets 1-50, 51-200, 201-800), or with ``--corpus stdlib`` on the default corpus:

* one process each, in its own subprocess: CPU seconds per program (this machine is shared, so
  wall time depends on what else runs; it is printed too), resident memory after the first 20
  programs and after all of them (flat memory means the first and last figures agree);
* all cores: ``editlm``'s job (``run_lintseq``) against the reference's own parallel generator
  (``pylintseq.generate``, joblib), whole runs from JSONL in to JSONL out, worker start included;
* the shape of the data: edits per program and inserted lines per edit;
* programs per CPU second by size bucket (editlm also with the whole-state lint on every state, the
  incremental lint switched off), and editlm's share of sequences whose every state passed
  the job's independent check (``first_unclean_state``: compile + pyflakes on the applied edits).

Run: ``.venv/bin/python benchmarks/lintseq_speed.py`` (150 programs) or ``--quick`` (30).
The last line printed is one JSON object with the figures; ``ratio`` is editlm's programs per CPU
second over the reference's, one process each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(tool: str, path: str) -> None:
    """One tool over all programs in this process; prints one JSON line with the measurements."""
    programs = [json.loads(line)["program"] for line in open(path, encoding="utf-8")]
    unclean = 0
    if tool in ("editlm", "editlm_whole"):
        from editlm.data.lintseq import incremental
        from editlm.data.lintseq.sampler import LintSeqError, first_unclean_state, sample_edit_sequence

        if tool == "editlm_whole":  # the whole-state lint on every state, for comparison
            incremental.ENABLED = False

        def run(program: str, seed: int):
            nonlocal unclean
            passed: set[str] = set()
            try:
                edits = sample_edit_sequence(program, seed, passed=passed)
            except LintSeqError:
                return None
            # the job's check of every state, timed with the tool
            unclean += first_unclean_state(edits, passed=passed) is not None
            return edits
    else:
        import random

        import numpy as np
        from pylintseq.utils import inflate_edit_path, lintseq_backward_sampling_pythonic

        def run(program: str, seed: int):
            np.random.seed(seed)
            random.seed(seed)
            try:
                path = lintseq_backward_sampling_pythonic(
                    program,
                    children_per_round=1,
                    top_k=1,
                    max_population_size=1,
                    max_depth=512,
                    indent_bias_sampling_factor=1,
                    ignore_imports=False,
                    ignore_comments=True,
                    ignore_global_defs=True,
                    ignore_init_errors=False,
                )
            except Exception:  # the reference can crash on odd programs; count it as a failure
                return None
            if path is None:
                return None
            return inflate_edit_path(program, path[0][0])[1]

    import hashlib

    digest = hashlib.sha256()  # of every sequence, to show two runs made the same data
    times, cpu, edits, lines_per_edit, rss = [], [], [], [], []
    failures = 0
    for seed, program in enumerate(programs):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = run(program, seed)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if out is None:
            failures += 1
        else:
            edits.append(len(out))
            digest.update(json.dumps(out).encode())
            lines_per_edit += [sum(row.startswith("+") for row in d.split("\n")) for d in out]
        rss.append(_rss_mb())
    print(
        json.dumps(
            {
                "times": times,
                "cpu": cpu,
                "edits": edits,
                "digest": digest.hexdigest(),
                "lines_per_edit": lines_per_edit,
                "failures": failures,
                "unclean": unclean,
                "rss_after_20": rss[min(19, len(rss) - 1)],
                "rss_after_all": rss[-1],
                "peak_mb": _peak_mb(),
            }
        )
    )


def pylint_audit(count: int, max_lines: int) -> dict:
    """How much weaker the default linter is than the reference's: the intermediate states of
    editlm's default sequences (pyflakes + compiler) that pylint, with the reference's filter,
    still flags; and the message ids it flags them for."""
    from collections import Counter

    from editlm.data.lintseq.lint import lint
    from editlm.data.lintseq.real_code import real_programs
    from editlm.data.lintseq.sampler import LintSeqError, apply_edit_sequence, sample_edit_sequence

    rows = real_programs(count, seed=1, max_lines=max_lines)
    states = flagged = programs_flagged = 0
    ids: Counter = Counter()
    for n, row in enumerate(rows):
        try:
            edits = sample_edit_sequence(row["program"], n)
        except LintSeqError:
            continue
        state, hit = "", False
        for edit in edits[:-1]:
            state = apply_edit_sequence([edit], state)
            errors = lint(state, linter="pylint")
            states += 1
            if errors:
                flagged += 1
                hit = True
                ids.update({e.code for e in errors})
        programs_flagged += hit
    out = {
        "programs": len(rows),
        "states": states,
        "states_flagged_by_pylint": flagged,
        "programs_with_a_flagged_state": programs_flagged,
        "top_messages": dict(ids.most_common(8)),
    }
    print(
        f"pylint (the reference's filter) flags {flagged} of {states} intermediate states "
        f"({flagged / max(states, 1):.1%}) of editlm's default sequences, in {programs_flagged} of "
        f"{len(rows)} programs; most common: {out['top_messages']}"
    )
    return out


def scale(count: int, max_lines: int) -> dict:
    """editlm's CPU seconds per program by size on real files up to ``max_lines`` (every third of
    ``count`` files sorted by size), and the exponent of a log-log fit: is it quadratic?"""
    import math

    from editlm.data.lintseq.real_code import real_programs
    from editlm.data.lintseq.sampler import LintSeqError, sample_edit_sequence

    rows = sorted(real_programs(count, seed=4, min_lines=20, max_lines=max_lines), key=lambda r: r["lines"])
    points = []
    print(f"{'lines':>8}{'CPU s':>10}{'edits':>8}")
    for row in rows[::3]:
        start = time.process_time()
        try:
            edits = len(sample_edit_sequence(row["program"], 0, time_limit=150))
        except LintSeqError as exc:
            edits = exc.reason
        cpu = time.process_time() - start
        points.append((row["lines"], cpu))
        print(f"{row['lines']:>8}{cpu:>10.3f}{edits!s:>8}")
    xs = [math.log(n) for n, c in points if c > 0.005]
    ys = [math.log(c) for n, c in points if c > 0.005]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    print(f"CPU time grows as lines^{slope:.2f}")
    return {"points": points, "exponent": slope}


def _one_process(tool: str, path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", tool, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _all_cores_editlm(path: Path, out_dir: Path, workers: int) -> float:
    from editlm.data.lintseq.job import LintSeqConfig, run_lintseq

    start = time.perf_counter()
    run_lintseq(path, out_dir / "editlm.jsonl", LintSeqConfig(samples=1), workers=workers, progress=False)
    return time.perf_counter() - start


def _all_cores_reference(path: Path, out_dir: Path, workers: int) -> float:
    code = "import sys; from pylintseq.generate import generate; generate()"
    args = ["-p", str(path), "-d", str(out_dir / "ref"), "-c", str(workers), "-s", "1"]
    args += ["--code_data_field", "program", "--prompt_data_field", "instruction"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 programs instead of 150")
    parser.add_argument("--programs", type=int, default=None)
    parser.add_argument("--corpus", choices=("real", "stdlib"), default="real")
    parser.add_argument("--max-lines", type=int, default=800)
    parser.add_argument("--no-all-cores", action="store_true", help="skip the all-cores runs")
    parser.add_argument(
        "--scale", type=int, default=0, metavar="N", help="only: editlm's cost by size on N files"
    )
    parser.add_argument(
        "--pylint-audit",
        type=int,
        default=0,
        metavar="N",
        help="only: pylint on editlm's states of N programs",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    if args.scale:
        print(json.dumps(scale(args.scale, args.max_lines)))
        return
    if args.pylint_audit:
        print(json.dumps(pylint_audit(args.pylint_audit, min(args.max_lines, 200))))
        return

    from editlm.io.parallel import default_workers

    count = args.programs or (30 if args.quick else 150)
    if args.corpus == "real":
        from editlm.data.lintseq.real_code import real_programs

        rows = real_programs(count, seed=0, max_lines=args.max_lines)
        rows = [{"instruction": r["source"], "program": r["program"]} for r in rows]
        where = "installed packages' source (site-packages)"
    else:
        from editlm.data.corpus import build_corpus

        rows = build_corpus(limit=count, seed=0, min_lines=5, max_lines=300)
        where = "the default corpus"
    workers = default_workers()
    sizes = [r["program"].count("\n") for r in rows]
    print(
        f"{len(rows)} programs from {where}, {min(sizes)}-{max(sizes)} lines "
        f"(median {statistics.median(sizes)}); {workers} cores"
    )
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "programs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        single = {tool: _one_process(tool, path) for tool in ("editlm", "editlm_whole", "pylintseq")}
        if args.no_all_cores:
            wall = {"editlm": float("nan"), "pylintseq": float("nan")}
        else:
            wall = {
                "editlm": _all_cores_editlm(path, tmp, workers),
                "pylintseq": _all_cores_reference(path, tmp, workers),
            }

    figures = {}
    for tool, m in single.items():
        if tool == "editlm_whole":
            continue
        figures[tool] = {
            "median_s": statistics.median(m["cpu"]),
            "programs_per_s": len(m["cpu"]) / sum(m["cpu"]),
            "programs_per_s_wall": len(m["times"]) / sum(m["times"]),
            "programs_per_s_all_cores": len(rows) / wall[tool],
            "rss_mb_after_20": round(m["rss_after_20"], 1),
            "rss_mb_after_all": round(m["rss_after_all"], 1),
            "peak_mb": round(m["peak_mb"], 1),
            "mean_edits": statistics.mean(m["edits"]) if m["edits"] else 0.0,
            "mean_lines_per_edit": statistics.mean(m["lines_per_edit"]) if m["lines_per_edit"] else 0.0,
            "failures": m["failures"],
        }
    e, r = figures["editlm"], figures["pylintseq"]
    header = f"{'':28}{'editlm':>14}{'pylintseq':>14}{'ratio':>10}"
    print(header)
    print("-" * len(header))
    for key, label, better_low in [
        ("median_s", "median CPU s / program", True),
        ("programs_per_s", "programs/CPU s (1 process)", False),
        ("programs_per_s_wall", "programs/s wall (1 process)", False),
        ("programs_per_s_all_cores", f"programs/s ({workers} cores)", False),
        ("rss_mb_after_20", "RSS MB after 20", True),
        ("rss_mb_after_all", f"RSS MB after {len(rows)}", True),
        ("peak_mb", "peak MB", True),
        ("mean_edits", "edits / program", None),
        ("mean_lines_per_edit", "lines / edit", None),
        ("failures", "programs failed", None),
    ]:
        a, b = e[key], r[key]
        if better_low is None or not a or not b:
            ratio = ""
        else:
            ratio = f"{(b / a if better_low else a / b):.1f}x"
        print(f"{label:28}{a:>14.4g}{b:>14.4g}{ratio:>10}")
    from editlm.data.lintseq.real_code import bucket_name

    buckets: dict[str, dict] = {}
    for n, size in enumerate(sizes):
        row = buckets.setdefault(
            bucket_name(size),
            {"programs": 0, "editlm_cpu": 0.0, "editlm_whole_cpu": 0.0, "pylintseq_cpu": 0.0},
        )
        row["programs"] += 1
        row["editlm_cpu"] += single["editlm"]["cpu"][n]
        row["editlm_whole_cpu"] += single["editlm_whole"]["cpu"][n]
        row["pylintseq_cpu"] += single["pylintseq"]["cpu"][n]
    print(
        f"\n{'lines':12}{'programs':>10}{'editlm prog/CPU s':>20}{'pylintseq prog/CPU s':>22}{'ratio':>8}"
        f"{'whole-state lint':>18}{'ratio':>8}"
    )
    for name in sorted(buckets, key=lambda b: int(b.split("-")[0].lstrip(">"))):
        row = buckets[name]
        row["editlm_per_cpu_s"] = row["programs"] / max(row["editlm_cpu"], 1e-9)
        row["editlm_whole_per_cpu_s"] = row["programs"] / max(row["editlm_whole_cpu"], 1e-9)
        row["pylintseq_per_cpu_s"] = row["programs"] / max(row["pylintseq_cpu"], 1e-9)
        row["ratio"] = row["editlm_per_cpu_s"] / row["pylintseq_per_cpu_s"]
        row["ratio_whole"] = row["editlm_whole_per_cpu_s"] / row["pylintseq_per_cpu_s"]
        print(
            f"{name:12}{row['programs']:>10}{row['editlm_per_cpu_s']:>20.3g}"
            f"{row['pylintseq_per_cpu_s']:>22.3g}{row['ratio']:>7.1f}x"
            f"{row['editlm_whole_per_cpu_s']:>18.3g}{row['ratio_whole']:>7.1f}x"
        )
    whole = single["editlm_whole"]
    ratio_whole = (len(whole["cpu"]) / sum(whole["cpu"])) / r["programs_per_s"]
    print(
        f"editlm with the whole-state lint on every state (the incremental lint off): {ratio_whole:.1f}x "
        f"pylintseq overall; identical sequences: {whole['digest'] == single['editlm']['digest']}"
    )
    unclean = single["editlm"]["unclean"]
    print(
        f"editlm sequences with a state that fails compile + pyflakes: {unclean} of {len(e_ok := single['editlm']['edits'])}"
    )
    load = (round(load_before, 2), round(os.getloadavg()[0], 2))
    print(
        f"load average before/after: {load[0]} / {load[1]} on {workers} cores (other work slows both tools)"
    )
    result = {
        "programs": len(rows),
        "cores": workers,
        "load_avg": load,
        "ratio": e["programs_per_s"] / r["programs_per_s"],
        "ratio_all_cores": e["programs_per_s_all_cores"] / r["programs_per_s_all_cores"],
        "ratio_whole_state_lint": ratio_whole,
        "median_ratio": r["median_s"] / e["median_s"],
        "editlm": e,
        "pylintseq": r,
        "by_size": buckets,
        "editlm_unclean_sequences": unclean,
        "editlm_sequences": len(e_ok),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
