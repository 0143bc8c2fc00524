"""``editlm bugs`` and ``editlm bugfix-benchmark``: synthetic bug-fix samples and the benchmark built from them
(heavy imports stay inside the commands)."""

from __future__ import annotations

from pathlib import Path

import typer

from editlm.data.cli_common import (
    DECONTAMINATE,
    EXCLUDE,
    ID_COLUMN,
    LIMIT,
    OVERWRITE,
    SCHEDULER,
    SEED,
    WORKERS,
    ProgressLines,
    check_exclude,
    fail,
    parse_counts,
    parse_names,
    run_transform,
    same_settings,
    text_column,
)


def register(app: typer.Typer) -> None:
    """Add ``bugs`` and ``bugfix-benchmark`` to ``app``."""

    @app.command("bugs")
    def bugs(
        input_path: Path = typer.Argument(
            ..., exists=True, dir_okay=False, help="JSONL/Parquet of programs."
        ),
        output: Path = typer.Option(..., "-o", "--output", help="Output .parquet or .jsonl."),
        column: str = typer.Option(
            None, "--column", help="Column holding the program text (default: content, program, code, ...)."
        ),
        name_column: str = typer.Option(
            None, "--name-column", help="Column with the file name (default: program.py)."
        ),
        counts: str = typer.Option("1", "--bugs", help="Bugs per sample: 1, 1-5 or 1,2,5 (4-Parity: 1-5)."),
        per_count: int = typer.Option(1, "--per-program", help="Samples per program and bug count."),
        classes: str = typer.Option(None, "--classes", help="Comma-separated bug classes (default: all)."),
        template: str = typer.Option(
            "Fix {bug_class}", "--message", help="Commit message; {bug_class} and {n} are filled in."
        ),
        max_chars: int = typer.Option(100_000, "--max-chars", help="Skip longer programs."),
        context: int = typer.Option(3, "--context", help="Context lines around each change in the diff."),
        renamings: int = typer.Option(
            0,
            "--renamings",
            help="Also this many copies of each program with its local names renamed "
            "at random (short names), each with its own bugs: recalling a fixed line no longer pays.",
        ),
        seed: int = SEED,
        workers: int = WORKERS,
        scheduler: str = SCHEDULER,
        limit: int = LIMIT,
        id_column: str = ID_COLUMN,
        decontaminate: bool = DECONTAMINATE,
        exclude: list[Path] = EXCLUDE,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Inject synthetic bugs; write diff-model bug-fix samples (file before = buggy, diff = fix).

        Classes: variable-misuse, wrong-operator, argument-swap, undefined-name, wrong-constant,
        off-by-one. Example: editlm bugs code.parquet -o bugs.parquet --bugs 1-5 --per-program 2
        """
        from editlm.data.bugs.inject import BUG_CLASSES
        from editlm.data.bugs.job import BugJob, bug_worker

        if per_count < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--per-program")
        if context < 0:
            raise typer.BadParameter("must be >= 0", param_hint="--context")
        if renamings < 0:
            raise typer.BadParameter("must be >= 0", param_hint="--renamings")
        try:
            template.format(bug_class="x", n=1, bugs=1)
        except (KeyError, IndexError, ValueError):
            raise typer.BadParameter(
                "only {bug_class} and {n} may be filled in", param_hint="--message"
            ) from None
        job = BugJob(
            counts=parse_counts(counts),
            per_count=per_count,
            kinds=parse_names(classes, BUG_CLASSES, "bug classes") or tuple(BUG_CLASSES),
            template=template,
            seed=seed,
            max_chars=max_chars,
            decontaminate=decontaminate,
            exclude=tuple(str(p) for p in exclude or ()),
            context=context,
            renamings=renamings,
        )
        check_exclude(job.exclude, decontaminate)
        column = text_column(input_path, column)
        columns = [column] + ([name_column] if name_column else [])

        def make_item(key, row):
            name = str(row[name_column]) if name_column and row.get(name_column) else "program.py"
            return (key, row[column], name, job)

        run_transform(
            input_path, output, columns, make_item, bug_worker, workers=workers, scheduler=scheduler,
            limit=limit, id_column=id_column, label="bugs", settings=job, overwrite=overwrite,
            extra_summary={
                "seed": seed, "bugs": list(job.counts), "classes": list(job.kinds), "per_program": per_count,
                "message": template, "context": context, "renamings": renamings,
            },
        )  # fmt: skip

    @app.command("bugfix-benchmark")
    def bugfix_benchmark(
        input_path: Path = typer.Argument(
            None,
            exists=True,
            dir_okay=False,
            help="JSONL/Parquet of programs with tests (program|prompt+canonical_solution, test, "
            "entry_point); default: HumanEval.",
        ),
        output: Path = typer.Option(
            None, "-o", "--output", help="Benchmark JSONL (default: where `editlm evaluate -b bugfix` looks)."
        ),
        counts: str = typer.Option("1", "--bugs", help="Bugs per program: 1, 1-3 or 1,3."),
        per_class: int = typer.Option(
            1, "--per-class", help="Bugs tried per class (per bug count) and program."
        ),
        classes: str = typer.Option(None, "--classes", help="Comma-separated bug classes (default: all)."),
        template: str = typer.Option("Fix {bug_class}", "--message", help="Commit message template."),
        timeout: float = typer.Option(3.0, "--timeout", help="Seconds per test run."),
        seed: int = SEED,
        workers: int = typer.Option(0, "-w", "--workers", help="Sandbox workers (0: all cores)."),
        limit: int = typer.Option(0, "--limit", help="Use only the first N programs (0: all)."),
        allow_unisolated: bool = typer.Option(
            False, "--allow-unisolated", help="Run without network isolation where none is possible (unsafe)."
        ),
    ) -> None:
        """Build the bug-fix benchmark: inject bugs, keep those that make the tests fail (sandboxed).

        Example: editlm bugfix-benchmark   (then: editlm evaluate samples.jsonl -b bugfix -o run/)
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from editlm.data.bugs.benchmark import BuildSettings, build_rows, humaneval_sources, table_sources
        from editlm.data.bugs.inject import BUG_CLASSES
        from editlm.evaluate.benchmarks.bugfix import default_path
        from editlm.evaluate.sandbox import Sandbox, SandboxError
        from editlm.io.tables import ShardedWriter, TableError

        if per_class < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--per-class")
        settings = BuildSettings(
            counts=parse_counts(counts),
            per_class=per_class,
            kinds=parse_names(classes, BUG_CLASSES, "bug classes") or tuple(BUG_CLASSES),
            template=template,
            seed=seed,
            timeout=timeout,
        )
        output = output or default_path()
        recorded = {
            "seed": seed, "bugs": list(settings.counts), "per_class": per_class, "classes": list(settings.kinds),
            "message": template, "timeout": timeout,
        }  # fmt: skip
        same_settings(output, recorded)
        try:
            sources = humaneval_sources() if input_path is None else list(table_sources(input_path))
            if limit:
                sources = sources[:limit]
            writer = ShardedWriter(output, shard_size=200)
            todo = [s for s in sources if s.task_id not in writer.done]
            kept: dict[str, int] = {}

            def on_result(task_id: str, rows: list[dict], reason: str | None) -> None:
                if reason:
                    writer.skip(task_id, reason)
                else:
                    writer.add(task_id, rows)
                    for row in rows:
                        group = " + ".join(sorted(set(row["bug_classes"])))
                        kept[group] = kept.get(group, 0) + 1
                progress.advance(task)
                finished[0] += 1
                lines(finished[0], len(todo))

            columns = (TextColumn("bugfix"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with (
                Sandbox(workers=workers, allow_unisolated=allow_unisolated) as box,
                Progress(*columns) as progress,
            ):
                task = progress.add_task("bugfix", total=len(sources), completed=len(sources) - len(todo))
                lines, finished = ProgressLines(progress.console, "bugfix"), [0]  # a log file's progress
                build_rows(todo, settings, box, on_result)
            summary = writer.finish({**recorded, "kept_this_run": kept})
        except (TableError, SandboxError) as exc:
            fail(str(exc))
        shown = {k: v for k, v in summary.items() if k not in ("keys", "skips")}
        typer.echo(" ".join(f"{k}={v}" for k, v in shown.items()))
