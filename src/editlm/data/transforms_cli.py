"""``editlm bugs``, ``editlm bugfix-benchmark``, ``editlm directional``, ``editlm fim`` and
``editlm decontaminate``: data transforms (heavy imports stay inside the commands).

The row-level work lives in pure modules (``bug_job``, ``directional``, ``fim_data``); this module
only streams rows in, runs them on all cores and writes resumable output with counted skips.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

_WORKERS = typer.Option(0, "-w", "--workers", help="Worker processes (0: all cores).")
_SCHEDULER = typer.Option(None, "--scheduler", help="Dask scheduler address (instead of local processes).")
_LIMIT = typer.Option(0, "--limit", help="Read at most this many input rows (0: all).")
_SEED = typer.Option(0, "--seed", help="Seed; results are deterministic per seed and input row.")
_ID = typer.Option(None, "--id-column", help="Column with a stable row id (default: the row number).")
_DECONTAMINATE = typer.Option(
    True,
    "--decontaminate/--no-decontaminate",
    help="Skip inputs that contain a 4-Parity or HumanEval/bug-fix benchmark program.",
)
_EXCLUDE = typer.Option(None, "--exclude", help="More protected programs (JSONL/Parquet); repeatable.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _parse_counts(text: str) -> tuple[int, ...]:
    """``1``, ``1-5`` or ``1,2,5``."""
    try:
        counts: list[int] = []
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                counts += range(low, high + 1)
            elif part:
                counts.append(int(part))
    except ValueError:
        raise typer.BadParameter("bug counts look like 1, 1-5 or 1,2,5") from None
    if not counts or min(counts) < 1:
        raise typer.BadParameter("every bug count must be >= 1")
    return tuple(dict.fromkeys(counts))


def _names(text: str | None, known, what: str) -> tuple[str, ...] | None:
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown {what} {unknown}; known: {', '.join(known)}")
    return names


def run_transform(
    input_path: Path,
    output: Path,
    columns: list[str] | None,
    make_item: Callable[[object, dict], tuple],
    worker: Callable[[tuple], tuple],
    *,
    workers: int,
    scheduler: str | None,
    limit: int,
    id_column: str | None,
    label: str,
    extra_summary: dict | None = None,
) -> dict:
    """Stream ``input_path`` through ``worker`` (``item -> (key, rows, skip reason)``) into ``output``.

    Rows already done by an earlier run are not read again; a failure in one row is a counted
    skip, not a crashed job.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from editlm.data.parallel import map_unordered
    from editlm.data.tables import ShardedWriter, TableError, read_rows

    _same_settings(output, extra_summary or {})
    try:
        writer = ShardedWriter(output)
        wanted = (
            None if columns is None else list(dict.fromkeys(columns + ([id_column] if id_column else [])))
        )
        total = _row_count(input_path, limit)

        def items() -> Iterator[tuple]:
            for index, row in enumerate(read_rows(input_path, wanted)):
                if limit and index >= limit:
                    return
                key = row[id_column] if id_column else index
                if isinstance(key, list):
                    key = tuple(key)
                if key not in writer.done:
                    yield make_item(key, row)

        columns_shown = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns_shown, transient=False) as progress:
            task = progress.add_task(label, total=total, completed=len(writer.done))
            guarded = functools.partial(_guarded, worker)
            results = map_unordered(
                guarded, items(), workers=workers or None, scheduler=scheduler, chunksize=4
            )
            for key, rows, reason in results:
                if reason:
                    writer.skip(key, reason)
                else:
                    writer.add(key, rows)
                progress.advance(task)
        summary = writer.finish(extra_summary)
    except TableError as exc:
        _fail(str(exc))
    shown = {k: v for k, v in summary.items() if k not in ("keys", "skips")}
    typer.echo(" ".join(f"{k}={v}" for k, v in shown.items()))
    return summary


TEXT_COLUMNS = ("content", "program", "code", "text", "source")


def _text_column(path: Path, given: str | None) -> str:
    """``given``, or the first of :data:`TEXT_COLUMNS` the table has (from the schema or first row)."""
    if given:
        return given
    from editlm.data.tables import TableError, read_rows

    try:
        if str(path).lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            names = pq.ParquetFile(path).schema_arrow.names
        else:
            names = list(next(read_rows(path), {}))
    except (TableError, OSError, ValueError) as exc:
        _fail(str(exc))
    found = next((c for c in TEXT_COLUMNS if c in names), None)
    if found is None:
        _fail(f"{path}: none of the columns {TEXT_COLUMNS}; name one with --column (it has {names})")
    return found


def _same_settings(output: Path, settings: dict) -> None:
    """A rerun continues a finished or partial output; with other settings it would mix two
    datasets into one file, so that is refused up front."""
    import json

    summary = output.with_name(output.name + ".summary.json")
    if not summary.exists():
        return
    try:
        before = json.loads(summary.read_text())
    except (OSError, ValueError):
        return  # not ours to judge; ShardedWriter reports unusable outputs
    changed = {k: (before[k], v) for k, v in settings.items() if k in before and before[k] != v}
    if changed:
        what = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
        _fail(f"{output} was made with other settings ({what}); remove it or write elsewhere")


def _guarded(worker: Callable[[tuple], tuple], item: tuple) -> tuple:
    """Run ``worker``; an unexpected error in one row becomes that row's counted skip."""
    try:
        return worker(item)
    except Exception as exc:  # noqa: BLE001 - any failure of one input must not end the job
        return item[0], [], f"error: {type(exc).__name__}"


def _row_count(path: Path, limit: int) -> int | None:
    """Rows in a Parquet file from its footer (JSONL is not counted: that would read it twice)."""
    if str(path).lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except Exception:  # damaged files are reported by read_rows with a clear message
            return None
        return min(rows, limit) if limit else rows
    return limit or None


def register(app: typer.Typer) -> None:
    """Add ``bugs``, ``bugfix-benchmark``, ``directional``, ``fim`` and ``decontaminate`` to ``app``."""

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
        seed: int = _SEED,
        workers: int = _WORKERS,
        scheduler: str = _SCHEDULER,
        limit: int = _LIMIT,
        id_column: str = _ID,
        decontaminate: bool = _DECONTAMINATE,
        exclude: list[Path] = _EXCLUDE,
    ) -> None:
        """Inject synthetic bugs; write diff-model bug-fix samples (file before = buggy, diff = fix).

        Classes: variable-misuse, wrong-operator, argument-swap, undefined-name, wrong-constant,
        off-by-one. Example: editlm bugs code.parquet -o bugs.parquet --bugs 1-5 --per-program 2
        """
        from editlm.data.bug_job import BugJob, bug_worker
        from editlm.data.bugs import BUG_CLASSES

        if per_count < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--per-program")
        try:
            template.format(bug_class="x", n=1, bugs=1)
        except (KeyError, IndexError, ValueError):
            raise typer.BadParameter(
                "only {bug_class} and {n} may be filled in", param_hint="--message"
            ) from None
        job = BugJob(
            counts=_parse_counts(counts),
            per_count=per_count,
            kinds=_names(classes, BUG_CLASSES, "bug classes") or tuple(BUG_CLASSES),
            template=template,
            seed=seed,
            max_chars=max_chars,
            decontaminate=decontaminate,
            exclude=tuple(str(p) for p in exclude or ()),
        )
        _check_exclude(job.exclude, decontaminate)
        column = _text_column(input_path, column)
        columns = [column] + ([name_column] if name_column else [])

        def make_item(key, row):
            name = str(row[name_column]) if name_column and row.get(name_column) else "program.py"
            return (key, row[column], name, job)

        run_transform(
            input_path, output, columns, make_item, bug_worker, workers=workers, scheduler=scheduler,
            limit=limit, id_column=id_column, label="bugs",
            extra_summary={
                "seed": seed, "bugs": list(job.counts), "classes": list(job.kinds), "per_program": per_count,
                "message": template,
            },
        )  # fmt: skip

    @app.command("directional")
    def directional(
        input_path: Path = typer.Argument(
            ..., exists=True, dir_okay=False, help="JSONL/Parquet of edits (e.g. mined commits)."
        ),
        output: Path = typer.Option(..., "-o", "--output", help="Output .parquet or .jsonl."),
        before_column: str = typer.Option("before", "--before-column"),
        after_column: str = typer.Option(
            "after", "--after-column", help="Column with the code after; '' to use --diff-column."
        ),
        diff_column: str = typer.Option(
            None, "--diff-column", help="Column with the diff before -> after (instead of the code after)."
        ),
        message_column: str = typer.Option("message", "--message-column"),
        name_column: str = typer.Option(None, "--name-column", help="File name, for the diff-model text."),
        tasks: str = typer.Option(
            None, "--tasks", help="Comma-separated: intermediate, mask-unchanged, delete, insert, mask (all)."
        ),
        max_steps: int = typer.Option(
            3, "--max-steps", help="Random intermediate versions per edit (+ t=0)."
        ),
        max_chars: int = typer.Option(100_000, "--max-chars", help="Skip longer edits (before + after)."),
        seed: int = _SEED,
        workers: int = _WORKERS,
        scheduler: str = _SCHEDULER,
        limit: int = _LIMIT,
        id_column: str = _ID,
        decontaminate: bool = _DECONTAMINATE,
        exclude: list[Path] = _EXCLUDE,
    ) -> None:
        """DivoT5 directional data: intermediate versions and noised old code, each -> the new code.

        Example: editlm directional commits.parquet -o directional.parquet --max-steps 3
        """
        from editlm.data.directional import TASKS, DirectionalJob, directional_worker

        if max_steps < 0:
            raise typer.BadParameter("must be >= 0", param_hint="--max-steps")
        if not after_column and not diff_column:
            raise typer.BadParameter("give --after-column or --diff-column")
        job = DirectionalJob(
            tasks=_names(tasks, TASKS, "tasks") or TASKS,
            max_steps=max_steps,
            seed=seed,
            max_chars=max_chars,
            decontaminate=decontaminate,
            exclude=tuple(str(p) for p in exclude or ()),
        )
        _check_exclude(job.exclude, decontaminate)
        use_after = bool(after_column) and not diff_column
        columns = [before_column, message_column, after_column if use_after else diff_column]
        columns += [name_column] if name_column else []

        def make_item(key, row):
            name = str(row[name_column]) if name_column and row.get(name_column) else "program.py"
            after = row[after_column] if use_after else None
            diff = None if use_after else row[diff_column]
            return (key, row[before_column], after, row[message_column], name, diff, job)

        run_transform(
            input_path, output, columns, make_item, directional_worker, workers=workers,
            scheduler=scheduler, limit=limit, id_column=id_column, label="directional",
            extra_summary={"seed": seed, "tasks": list(job.tasks), "max_steps": max_steps, "max_chars": max_chars},
        )  # fmt: skip

    @app.command("fim")
    def fim(
        input_path: Path = typer.Argument(
            ..., exists=True, dir_okay=False, help="JSONL/Parquet code corpus."
        ),
        output: Path = typer.Option(..., "-o", "--output", help="Output .parquet or .jsonl."),
        rate: float = typer.Option(0.5, "--rate", help="Fraction of documents turned into FIM samples."),
        spm_rate: float = typer.Option(0.5, "--spm-rate", help="Fraction of FIM samples in SPM order."),
        column: str = typer.Option(
            None, "--column", help="Column holding the document text (default: content, program, code, ...)."
        ),
        max_chars: int = typer.Option(1_000_000, "--max-chars", help="Skip longer documents."),
        seed: int = _SEED,
        workers: int = _WORKERS,
        scheduler: str = _SCHEDULER,
        limit: int = _LIMIT,
        id_column: str = _ID,
        decontaminate: bool = _DECONTAMINATE,
        exclude: list[Path] = _EXCLUDE,
    ) -> None:
        """Fill-in-the-middle: cut documents into prefix/middle/suffix, written as PSM or SPM text.

        Example: editlm fim code.parquet -o fim.parquet --rate 0.5 --spm-rate 0.5
        """
        from editlm.data.fim_data import FimJob, fim_worker

        try:
            job = FimJob(rate, spm_rate, seed, max_chars, decontaminate, tuple(str(p) for p in exclude or ()))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        _check_exclude(job.exclude, decontaminate)
        column = _text_column(input_path, column)
        run_transform(
            input_path, output, [column], lambda key, row: (key, row[column], job), fim_worker,
            workers=workers, scheduler=scheduler, limit=limit, id_column=id_column, label="fim",
            extra_summary={"seed": seed, "rate": rate, "spm_rate": spm_rate},
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
        seed: int = _SEED,
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

        from editlm.data.bugfix_benchmark import BuildSettings, build_rows, humaneval_sources, table_sources
        from editlm.data.bugs import BUG_CLASSES
        from editlm.data.tables import ShardedWriter, TableError
        from editlm.evaluate.benchmarks.bugfix import default_path
        from editlm.evaluate.sandbox import Sandbox, SandboxError

        if per_class < 1:
            raise typer.BadParameter("must be >= 1", param_hint="--per-class")
        settings = BuildSettings(
            counts=_parse_counts(counts),
            per_class=per_class,
            kinds=_names(classes, BUG_CLASSES, "bug classes") or tuple(BUG_CLASSES),
            template=template,
            seed=seed,
            timeout=timeout,
        )
        output = output or default_path()
        recorded = {
            "seed": seed, "bugs": list(settings.counts), "per_class": per_class, "classes": list(settings.kinds),
            "message": template, "timeout": timeout,
        }  # fmt: skip
        _same_settings(output, recorded)
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

            columns = (TextColumn("bugfix"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with (
                Sandbox(workers=workers, allow_unisolated=allow_unisolated) as box,
                Progress(*columns) as progress,
            ):
                task = progress.add_task("bugfix", total=len(sources), completed=len(sources) - len(todo))
                build_rows(todo, settings, box, on_result)
            summary = writer.finish({**recorded, "kept_this_run": kept})
        except (TableError, SandboxError) as exc:
            _fail(str(exc))
        shown = {k: v for k, v in summary.items() if k not in ("keys", "skips")}
        typer.echo(" ".join(f"{k}={v}" for k, v in shown.items()))

    @app.command("decontaminate")
    def decontaminate_cmd(
        input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL/Parquet table."),
        output: Path = typer.Option(..., "-o", "--output", help="The rows that pass (.parquet or .jsonl)."),
        columns: str = typer.Option("content", "--columns", help="Comma-separated text columns to check."),
        n: int = typer.Option(10, "--ngram", help="Token n-gram length."),
        threshold: float = typer.Option(
            0.5, "--threshold", help="Drop a row containing this fraction of a protected program's n-grams."
        ),
        workers: int = _WORKERS,
        scheduler: str = _SCHEDULER,
        limit: int = _LIMIT,
        id_column: str = _ID,
        exclude: list[Path] = _EXCLUDE,
    ) -> None:
        """Drop rows that contain a 4-Parity, HumanEval/bug-fix or --exclude program (n-gram overlap).

        Example: editlm decontaminate train.parquet -o clean.parquet --columns before,after
        """
        from editlm.data.contamination import check_worker

        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not names:
            raise typer.BadParameter("name at least one column", param_hint="--columns")
        paths = tuple(str(p) for p in exclude or ())
        _check_exclude(paths, True)
        try:
            from editlm.data.contamination import ContaminationIndex

            ContaminationIndex(n, threshold)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        run_transform(
            input_path, output, None, lambda key, row: (key, row, tuple(names), paths, n, threshold),
            check_worker, workers=workers, scheduler=scheduler, limit=limit, id_column=id_column,
            label="decontaminate", extra_summary={"columns": names, "ngram": n, "threshold": threshold},
        )  # fmt: skip


def _check_exclude(paths: tuple[str, ...], decontaminate: bool) -> None:
    """Read the protected tables once up front, so a bad --exclude fails before any work."""
    if not decontaminate:
        return
    from editlm.data.contamination import default_index
    from editlm.data.tables import TableError

    try:
        default_index(paths)
    except (TableError, KeyError) as exc:
        _fail(f"--exclude: {exc}")
