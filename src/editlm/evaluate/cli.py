"""``editlm evaluate`` and ``editlm report`` (heavy imports stay inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise typer.BadParameter("a comma-separated list of integers, e.g. 1,10,100") from None
    if not ks or min(ks) < 1:
        raise typer.BadParameter("every k must be >= 1")
    return ks


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``report`` and ``benchmarks`` to ``app``."""

    @app.command("evaluate")
    def evaluate(
        samples: Path = typer.Argument(
            ..., exists=True, dir_okay=False, help="JSONL: task_id + completion|diff|edits."
        ),
        benchmark: str = typer.Option(..., "-b", "--benchmark", help="humaneval, parity, bugfix, ..."),
        output: Path = typer.Option(
            ..., "-o", "--output", help="Run directory: results.jsonl, summary.json."
        ),
        workers: int = typer.Option(0, "-w", "--workers", help="Sandbox workers (0: all cores)."),
        timeout: float = typer.Option(
            None, "--timeout", help="Seconds per program (default: the benchmark's)."
        ),
        memory_mb: int = typer.Option(1024, "--memory-mb", help="Address-space limit per process."),
        k: str = typer.Option(
            "1,5,10,20,50,100", "-k", help="pass@k values (shown where every problem has n >= k)."
        ),
        truncate: bool = typer.Option(
            False, "--truncate", help="Cut plain completions at the usual stop sequences."
        ),
        metrics: bool = typer.Option(
            False, "--metrics", help="Also exact match, CodeBLEU, edit distance, diversity."
        ),
        resume: bool = typer.Option(
            True, "--resume/--restart", help="Continue a stopped run in the same directory."
        ),
        allow_unisolated: bool = typer.Option(
            False, "--allow-unisolated", help="Run without network isolation where none is possible (unsafe)."
        ),
    ) -> None:
        """Run samples' tests in the sandbox; write one result row per sample and a pass@k summary."""
        from editlm.evaluate.benchmarks import BenchmarkError
        from editlm.evaluate.run import evaluate_file
        from editlm.evaluate.sandbox import SandboxError

        if output.exists() and not output.is_dir():
            raise typer.BadParameter(f"{output} exists and is not a directory", param_hint="--output")
        if not resume and output.exists():
            for name in ("results.jsonl", "summary.json", "meta.json"):
                (output / name).unlink(missing_ok=True)
        try:
            summary = evaluate_file(
                samples, benchmark, output, workers, resume=resume, metrics=metrics, timeout=timeout,
                memory_mb=memory_mb, ks=_ks(k), truncate=truncate, allow_unisolated=allow_unisolated,
            )  # fmt: skip
        except (BenchmarkError, SandboxError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        summary = add_failure_kinds(output, summary)
        _print_summary(summary)
        typer.echo(f"results in {output}")

    @app.command("report")
    def report(
        run_dir: Path = typer.Argument(
            ..., exists=True, file_okay=False, help="An evaluate run directory, or many."
        ),
        output: Path = typer.Option(
            None, "-o", "--output", help="Where report.md and PNGs go (default RUN_DIR)."
        ),
    ) -> None:
        """Markdown report with pass@k tables and plots (pass@k, 4-Parity by bug count, edit distance curves)."""
        from editlm.evaluate.report import write_report

        try:
            path = write_report(run_dir, output)
        except (FileNotFoundError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"report written to {path}")

    @app.command("benchmarks")
    def benchmarks(
        name: str = typer.Argument(None, help="Write this benchmark's prompts as JSONL."),
        kind: str = typer.Option(
            "completion",
            "--kind",
            help="Prompt format: completion, diff, edits or response (instruction models).",
        ),
        output: Path = typer.Option(None, "-o", "--output", help="Prompts file (default: stdout)."),
        check: bool = typer.Option(
            False,
            "--check",
            help="Instead: run every reference (must pass) and every buggy input (must fail).",
        ),
        workers: int = typer.Option(0, "-w", "--workers", help="Sandbox workers for --check (0: all cores)."),
    ) -> None:
        """List benchmarks, or write one benchmark's prompts (task_id, prompt) for a model to sample.

        Example: editlm benchmarks humanevalfix --kind diff -o prompts.jsonl; editlm benchmarks quixbugs --check
        """
        from editlm.evaluate.benchmarks import BenchmarkError, get_benchmark, list_benchmarks

        if name is None:
            for item in list_benchmarks():
                try:
                    bench = get_benchmark(item)
                    typer.echo(f"{item}\t{len(bench.problems())} problems\t{bench.description}")
                except BenchmarkError as exc:
                    typer.echo(f"{item}\tunavailable: {exc}")
            return
        if check:
            _check(name, workers, output)
            return
        try:
            bench = get_benchmark(name)
            lines = [
                json.dumps({"task_id": p.task_id, "prompt": bench.prompt(p, kind)})
                for p in bench.problems().values()
            ]
        except (BenchmarkError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        text = "\n".join(lines) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")


def add_failure_kinds(run_dir: Path, summary: dict) -> dict:
    """``summary.json`` with ``failures``: the failed samples by kind (a diff that does not parse or
    apply, an edit sequence that does not decode, a syntax error, a wrong answer, ...), not one
    ``invalid`` count."""
    from editlm.evaluate.reasons import failure_kinds

    results = run_dir / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    summary = {**summary, "failures": failure_kinds(rows)}
    path = run_dir / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    tmp.replace(path)
    return summary


def _check(name: str, workers: int, output: Path | None) -> None:
    """``editlm benchmarks NAME --check``: the benchmark's own references and inputs, scored as samples."""
    from editlm.evaluate.benchmarks import BenchmarkError, get_benchmark
    from editlm.evaluate.benchmarks.checks import check_benchmark
    from editlm.evaluate.sandbox import SandboxError

    try:
        report = check_benchmark(get_benchmark(name), workers=workers)
    except (BenchmarkError, SandboxError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{report['benchmark']}: {report['checked']} items checked, references passing "
        f"{report['reference_passed']}/{report['checked']}, buggy inputs failing "
        f"{report['input_failed']}/{report['checked']}; {len(report['excluded_upstream_items'])} upstream "
        "items left out, each with its reason (-o writes them)"
    )
    for task_id, reason in report["failures"].items():
        typer.echo(f"  FAILS CHECK {task_id}: {reason}")
    if output is not None:
        from editlm.io.tables import write_json

        write_json(output, report)
    if report["failures"]:
        raise typer.Exit(1)


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['benchmark']}: {summary['samples']} samples")
    table.add_column("")
    table.add_column("pass rate")
    keys = list(summary.get("pass@k", {}))
    for key in keys:
        table.add_column(key)
    table.add_row(
        "all", f"{100 * summary['pass_rate']:.1f}", *[f"{100 * summary['pass@k'][k]:.1f}" for k in keys]
    )
    for group, values in summary.get("groups", {}).items():
        table.add_row(group, f"{100 * values['pass_rate']:.1f}",
                      *[f"{100 * values['pass@k'][k]:.1f}" if k in values["pass@k"] else "-" for k in keys])  # fmt: skip
    Console().print(table)
    if summary.get("failures"):
        Console().print(
            "failures: " + ", ".join(f"{kind} {count}" for kind, count in summary["failures"].items())
        )
    if summary.get("note"):
        Console().print(summary["note"])
