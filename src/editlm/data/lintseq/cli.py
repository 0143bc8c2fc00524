"""``editlm lintseq`` (synthetic edit sequences) and ``editlm data corpus`` (the default corpus).

Thin layers over :func:`editlm.data.lintseq.job.run_lintseq` and
:func:`editlm.data.corpus.build_corpus`; heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

DATA_HELP = "Datasets: the default corpus and other data utilities."


def _data_app(app: typer.Typer) -> typer.Typer:
    """The ``editlm data`` group, shared with other stages: reuse it when one is registered."""
    for group in app.registered_groups:
        if group.name == "data" and group.typer_instance is not None:
            return group.typer_instance
    sub = typer.Typer(help=DATA_HELP, no_args_is_help=True)
    app.add_typer(sub, name="data")
    return sub


def register(app: typer.Typer) -> None:
    @app.command("lintseq")
    def lintseq(
        input: Path = typer.Argument(..., help="JSONL or Parquet with an instruction and a program field."),
        output: Path = typer.Option(..., "-o", "--output", help="Output .parquet or .jsonl (by extension)."),
        samples: int = typer.Option(5, "--samples", "-n", min=1, help="Edit sequences per program."),
        seed: int = typer.Option(0, help="Run seed; each (row, sample) gets its own seed from it."),
        workers: int = typer.Option(0, help="Processes (0: all cores; 1: in this process)."),
        scheduler: str = typer.Option(None, help="Dask scheduler address (tcp://host:8786) instead."),
        time_limit: float = typer.Option(
            60.0,
            help="CPU seconds per program (all samples); 0: none. Timed-out programs are retried by a rerun.",
        ),
        linter: str = typer.Option(
            "pyflakes",
            help=(
                "Which errors a state may not have. pyflakes: pyflakes' errors + the compiler's, in process "
                "(fast; weaker than the reference: see README). pylint: the reference's filter, exactly "
                "(~20x slower). none: editlm's ablation (blocks deleted, no lint). random-chunks: the "
                "authors' linter ablation, exactly (random chunks of lines)."
            ),
        ),
        export: str = typer.Option(
            "lintseq",
            help=(
                "lintseq: the authors' training text. d3: D3's prompt (file state + instruction) -> "
                "diff sequence, from the empty file. d3-partial: the same from a partial program."
            ),
        ),
        closing: bool = typer.Option(True, help="End with the authors' closing '\\n<|diff|>\\n<|diff|>'."),
        unwrap_fenced: bool = typer.Option(
            False, help="Take programs out of ```python fences first (the authors' generator does)."
        ),
        overwrite: bool = typer.Option(False, help="Replace an output made with other settings."),
        missing_imports: bool = typer.Option(
            False, help="Treat imports of modules not installed here as errors (the reference does)."
        ),
        instruction_field: str = typer.Option("instruction", help="Instruction column ('' for none)."),
        program_field: str = typer.Option("program", help="Program column."),
        keep: list[str] = typer.Option([], help="Further input columns to copy (repeatable)."),
        limit: int = typer.Option(None, help="Only the first N input rows."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Turn programs into LintSeq edit sequences (resumable: rerun to continue)."""
        from rich.console import Console

        from editlm.data.lintseq.job import LintSeqConfig, run_lintseq
        from editlm.io.tables import TableError

        console = Console(stderr=True)
        try:
            config = LintSeqConfig(
                samples=samples,
                seed=seed,
                linter=linter,
                missing_imports=missing_imports,
                time_limit=time_limit or None,
                instruction_field=instruction_field or None,
                program_field=program_field,
                keep=tuple(keep),
                export=export,
                closing=closing,
                unwrap_fenced=unwrap_fenced,
            )
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        try:
            summary = run_lintseq(
                input,
                output,
                config,
                workers=workers or None,
                scheduler=scheduler,
                limit=limit,
                progress=progress,
                overwrite=overwrite,
            )
        except TableError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        skipped = ", ".join(f"{k}: {v}" for k, v in summary["skipped"].items()) or "none"
        retry = summary["this_run"].get("timeouts_to_retry", 0)
        if retry:
            skipped += f"; {retry} timed out (rerun to retry them, --time-limit to give them longer)"
        console.print(
            f"{summary['rows']} sequences from {summary['inputs_written']} "
            f"programs -> {output}; skipped {skipped}"
        )

    data = _data_app(app)

    @data.command("corpus")
    def corpus(
        output: Path = typer.Option(..., "-o", "--output", help="Output .jsonl or .parquet."),
        limit: int = typer.Option(1000, help="Number of programs (0: all)."),
        seed: int = typer.Option(0, help="Seed for the choice of modules and functions."),
        min_lines: int = typer.Option(3, help="Shortest program, in lines (editlm.data.corpus.MIN_LINES)."),
        max_lines: int = typer.Option(300, help="Longest program, in lines."),
        per_module: int = typer.Option(8, help="At most this many programs from one module."),
        keep_humaneval: bool = typer.Option(
            False, help="Do not drop programs that overlap HumanEval's canonical solutions."
        ),
        methods: bool = typer.Option(False, help="Class methods too, each made a self-contained function."),
        undocumented: bool = typer.Option(False, help="Functions without a docstring too."),
    ) -> None:
        """Write the embedded default corpus: self-contained standard-library functions."""
        from rich.console import Console

        from editlm.data.corpus import CorpusError, build_corpus
        from editlm.io.tables import write_rows

        console = Console(stderr=True)
        try:
            with console.status("collecting standard-library functions"):
                rows = build_corpus(
                    limit or None,
                    seed,
                    min_lines=min_lines,
                    max_lines=max_lines,
                    per_module=per_module,
                    exclude_humaneval=not keep_humaneval,
                    methods=methods,
                    documented=not undocumented,
                )
        except CorpusError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        write_rows(output, rows)
        console.print(f"{len(rows)} programs -> {output}")
