"""``editlm directional``, ``editlm fim`` and ``editlm decontaminate``: table-to-table transforms
(heavy imports stay inside the commands; the row-level work lives in the pure modules beside this one)."""

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
    check_exclude,
    fail,
    parse_names,
    run_transform,
    text_column,
)

# The text columns of editlm's own outputs (samples, corpora, mined commits, bug fixes), checked by default.
DECONTAMINATE_COLUMNS = (
    "prompt",
    "completion",
    "text",
    "content",
    "program",
    "before",
    "after",
    "diff",
    "code",
)


def table_columns(path: Path) -> list[str]:
    """Column names of a Parquet table (its schema) or a JSONL table (its first row)."""
    from editlm.io.tables import TableError, read_rows

    try:
        if str(path).lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(next(read_rows(path), {}))
    except (TableError, OSError, ValueError) as exc:
        fail(str(exc))


def check_columns(path: Path, given: str | None) -> list[str]:
    """The columns to check: every one named must exist (a missing column would check nothing and
    report success); by default, those of :data:`DECONTAMINATE_COLUMNS` the table has, at least one."""
    have = table_columns(path)
    if given is not None:
        names = [c.strip() for c in given.split(",") if c.strip()]
        if not names:
            raise typer.BadParameter("name at least one column", param_hint="--columns")
        missing = [c for c in names if c not in have]
        if missing and have:
            fail(f"{path} has no column {', '.join(map(repr, missing))} (it has {', '.join(have)})")
        return names
    names = [c for c in DECONTAMINATE_COLUMNS if c in have]
    if not names and have:
        fail(
            f"{path}: none of the text columns {DECONTAMINATE_COLUMNS}; name them with --columns (it has {have})"
        )
    return names or list(DECONTAMINATE_COLUMNS)


def register(app: typer.Typer) -> None:
    """Add ``directional``, ``fim`` and ``decontaminate`` to ``app``."""

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
        form: str = typer.Option(
            "divot5",
            "--form",
            help="divot5 (snippet-level @@ segments, one noised task per edit, task "
            "tokens, as the released DivoT5 code) or whole-file (every task on whole files).",
        ),
        tasks: str = typer.Option(
            None,
            "--tasks",
            help="Comma-separated; divot5: dif, ksm, ade, etg; whole-file: intermediate, "
            "mask-unchanged, delete, insert, mask (default: all of the form's).",
        ),
        context: int = typer.Option(3, "--context", help="divot5: context lines around each @@ segment."),
        max_steps: int = typer.Option(
            3, "--max-steps", help="Random intermediate versions per edit (+ t=0)."
        ),
        max_chars: int = typer.Option(100_000, "--max-chars", help="Skip longer edits (before + after)."),
        seed: int = SEED,
        workers: int = WORKERS,
        scheduler: str = SCHEDULER,
        limit: int = LIMIT,
        id_column: str = ID_COLUMN,
        decontaminate: bool = DECONTAMINATE,
        exclude: list[Path] = EXCLUDE,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """DivoT5 directional data: intermediate versions and noised old code, each -> the new code.

        Example: editlm directional commits.parquet -o directional.parquet --max-steps 3
        """
        from editlm.data.transforms import divot5
        from editlm.data.transforms.directional import FORMS, TASKS, DirectionalJob, directional_worker

        if form not in FORMS:
            raise typer.BadParameter(f"unknown form {form!r}; known: {', '.join(FORMS)}", param_hint="--form")
        known = divot5.TASKS if form == "divot5" else TASKS
        if max_steps < 0:
            raise typer.BadParameter("must be >= 0", param_hint="--max-steps")
        if not after_column and not diff_column:
            raise typer.BadParameter("give --after-column or --diff-column")
        job = DirectionalJob(
            tasks=parse_names(tasks, known, "tasks") or known,
            max_steps=max_steps,
            form=form,
            context=context,
            seed=seed,
            max_chars=max_chars,
            decontaminate=decontaminate,
            exclude=tuple(str(p) for p in exclude or ()),
        )
        check_exclude(job.exclude, decontaminate)
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
            scheduler=scheduler, limit=limit, id_column=id_column, label="directional", settings=job,
            overwrite=overwrite,
            extra_summary={"seed": seed, "form": form, "tasks": list(job.tasks), "max_steps": max_steps, "max_chars": max_chars},
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
        seed: int = SEED,
        workers: int = WORKERS,
        scheduler: str = SCHEDULER,
        limit: int = LIMIT,
        id_column: str = ID_COLUMN,
        decontaminate: bool = DECONTAMINATE,
        exclude: list[Path] = EXCLUDE,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Fill-in-the-middle: cut documents into prefix/middle/suffix, written as PSM or SPM text.

        Example: editlm fim code.parquet -o fim.parquet --rate 0.5 --spm-rate 0.5
        """
        from editlm.data.transforms.fim import FimJob, fim_worker

        try:
            job = FimJob(rate, spm_rate, seed, max_chars, decontaminate, tuple(str(p) for p in exclude or ()))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        check_exclude(job.exclude, decontaminate)
        column = text_column(input_path, column)
        run_transform(
            input_path, output, [column], lambda key, row: (key, row[column], job), fim_worker,
            workers=workers, scheduler=scheduler, limit=limit, id_column=id_column, label="fim", settings=job,
            overwrite=overwrite,
            extra_summary={"seed": seed, "rate": rate, "spm_rate": spm_rate},
        )  # fmt: skip

    @app.command("decontaminate")
    def decontaminate_cmd(
        input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL/Parquet table."),
        output: Path = typer.Option(..., "-o", "--output", help="The rows that pass (.parquet or .jsonl)."),
        columns: str = typer.Option(
            None,
            "--columns",
            help="Comma-separated text columns to check (default: those of DECONTAMINATE_COLUMNS the table has).",
        ),
        n: int = typer.Option(10, "--ngram", help="Token n-gram length."),
        threshold: float = typer.Option(
            0.5, "--threshold", help="Drop a row containing this fraction of a protected program's n-grams."
        ),
        workers: int = WORKERS,
        scheduler: str = SCHEDULER,
        limit: int = LIMIT,
        id_column: str = ID_COLUMN,
        exclude: list[Path] = EXCLUDE,
        overwrite: bool = OVERWRITE,
    ) -> None:
        """Drop rows that contain a 4-Parity, HumanEval/bug-fix or --exclude program (n-gram overlap).

        Example: editlm decontaminate train.parquet -o clean.parquet --columns before,after
        """
        from editlm.data.transforms.contamination import check_worker

        names = check_columns(input_path, columns)
        paths = tuple(str(p) for p in exclude or ())
        check_exclude(paths, True)
        try:
            from editlm.data.transforms.contamination import ContaminationIndex

            ContaminationIndex(n, threshold)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        run_transform(
            input_path, output, None, lambda key, row: (key, row, tuple(names), paths, n, threshold),
            check_worker, workers=workers, scheduler=scheduler, limit=limit, id_column=id_column,
            label="decontaminate", overwrite=overwrite,
            extra_summary={"columns": names, "ngram": n, "threshold": threshold},
        )  # fmt: skip
