"""``editlm mine``: git repositories into a diff-model dataset (one row per changed file of each commit)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``editlm mine`` to ``app``."""

    @app.command("mine")
    def mine(
        repositories: list[Path] = typer.Argument(
            ..., help="Local git repositories (working trees or bare)."
        ),
        output: Path = typer.Option(..., "--output", "-o", help="Output .parquet or .jsonl file."),
        filter: str = typer.Option(
            "carperai",
            "--filter",
            help="Preset: carperai (seed 001), commitpackft (OctoPack's CommitPackFT rules) or none.",
        ),
        max_tokens: int | None = typer.Option(
            None, "--max-tokens", help="Drop samples longer than this (carperai: 2048 unless given)."
        ),
        tokenizer: str = typer.Option(
            "chars/4",
            "--tokenizer",
            help="How --max-tokens counts: chars/4 (estimate), a local tokenizer directory or tokenizer.json.",
        ),
        min_pair_tokens: int | None = typer.Option(
            None,
            "--min-pair-tokens",
            help="commitpackft: fewest tokens of before+after (default 50; 0: none).",
        ),
        max_pair_tokens: int | None = typer.Option(
            None,
            "--max-pair-tokens",
            help="commitpackft: most tokens of before+after (default 768; 0: none).",
        ),
        crop_context: int | None = typer.Option(
            None, "--crop-context", help="Crop the file before to the changed lines plus K lines around them."
        ),
        max_file_bytes: int = typer.Option(1_000_000, help="Skip files larger than this (counted as huge)."),
        rev: str = typer.Option("HEAD", help="Mine the history reachable from this revision."),
        seed: int = typer.Option(0, help="Seed for the commitpackft version-bump sampling."),
        workers: int | None = typer.Option(
            None,
            help="Worker processes; 0: all cores; default: one process below 800 commits, else one "
            "per 800 commits up to all cores.",
        ),
        scheduler: str | None = typer.Option(None, help="Dask scheduler address (tcp://host:8786)."),
        batch_size: int = typer.Option(32, help="Commits per work item."),
        helper: bool | None = typer.Option(
            None,
            "--helper/--no-helper",
            help="In one process, make the diffs ahead in a second one (the same rows); default: on "
            "Linux with 2+ cores and 200+ commits.",
        ),
        verify: bool = typer.Option(
            True, "--verify/--no-verify", help="Check that every row's diff turns before into after."
        ),
        overwrite: bool = typer.Option(
            False,
            "--overwrite",
            help="Replace an output made with other options (a rerun resumes otherwise).",
        ),
    ) -> None:
        """Mine git history into diff-model rows; resumable (rerun the same command to continue)."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        from editlm.data.cli_common import ProgressLines
        from editlm.data.mining.allocator import keep_freed_memory
        from editlm.data.mining.commits import MiningError, MiningOptions, open_repository
        from editlm.data.mining.job import run_mining
        from editlm.io.parallel import Interrupted, check_workers
        from editlm.io.tables import TableError, table_format

        console = Console(stderr=True)
        keep_freed_memory()  # this process is ours: see editlm.data.mining.allocator
        if workers is not None:
            try:
                check_workers(workers)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--workers") from None
        if batch_size < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--batch-size")
        try:
            table_format(output)
            options = MiningOptions(
                filter=filter,
                max_tokens=max_tokens,
                tokenizer=tokenizer,
                crop_context=crop_context,
                max_file_bytes=max_file_bytes,
                seed=seed,
                verify=verify,
                min_pair_tokens=min_pair_tokens,
                max_pair_tokens=max_pair_tokens,
            )
            if options.counts_tokens:
                from editlm.data.mining.filters import token_counter

                token_counter(tokenizer)  # fail now on a bad tokenizer, not in every worker
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        bad = []
        for path in repositories:
            try:
                open_repository(path)
            except MiningError as exc:
                bad.append(str(exc))
        if bad:
            for reason in bad:
                console.print(f"[red]error:[/red] {reason}", markup=True, highlight=False)
            raise typer.Exit(2)

        columns = (TextColumn("mining commits"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        # Refreshed from here, not by rich's refresh thread: with no other thread, the diff helper
        # starts as a fork at once (editlm.data.mining.ahead) instead of through a fork server (0.25 s).
        with Progress(*columns, console=console, transient=False, auto_refresh=False) as bar:
            task = bar.add_task("mine", total=None)
            shown = [0.0]  # last refresh
            lines = ProgressLines(console, "mining commits")  # a log file's progress

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                refresh = done == total or now - shown[0] > 0.1
                if refresh:
                    shown[0] = now
                bar.update(task, completed=done, total=total, refresh=refresh)
                lines(done, total)

            try:
                summary = run_mining(
                    repositories,
                    output,
                    options,
                    rev=rev,
                    workers=workers,
                    scheduler=scheduler,
                    batch_size=batch_size,
                    overwrite=overwrite,
                    progress=progress,
                    helper=helper,
                )
            except TableError as exc:
                console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(2) from None
            except KeyboardInterrupt as exc:  # SIGTERM (Interrupted) too: the workers are stopped by now
                why = str(exc) if isinstance(exc, Interrupted) else "interrupted"
                console.print(f"{why}; finished commits are kept: rerun the same command to resume")
                raise typer.Exit(130) from None
            except (OSError, TimeoutError) as exc:
                if scheduler is None:
                    raise
                console.print(f"[red]error:[/red] cannot use the Dask scheduler {scheduler}: {exc}")
                raise typer.Exit(1) from None

        console.print(f"{summary['rows']} rows -> {summary['output']}")
        if summary["skipped"]:
            table = Table()
            table.add_column("dropped because")
            table.add_column("count", justify="right")
            for reason, count in summary["skipped"].items():
                table.add_row(reason, str(count))
            console.print(table)
        else:
            console.print("nothing dropped")
        console.print(f"summary: {output.with_name(output.name + '.summary.json')}")
