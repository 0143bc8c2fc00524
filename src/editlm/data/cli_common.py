"""What the data stages' commands share: option declarations, argument parsing, and
:func:`run_transform`, which streams a table through a row worker on all cores into resumable output
with counted skips. Only typer loads here; the rest inside the functions."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

WORKERS = typer.Option(0, "-w", "--workers", help="Worker processes (0: all cores).")
SCHEDULER = typer.Option(None, "--scheduler", help="Dask scheduler address (instead of local processes).")
LIMIT = typer.Option(0, "--limit", help="Read at most this many input rows (0: all).")
SEED = typer.Option(0, "--seed", help="Seed; results are deterministic per seed and input row.")
ID_COLUMN = typer.Option(None, "--id-column", help="Column with a stable row id (default: the row number).")
DECONTAMINATE = typer.Option(
    True,
    "--decontaminate/--no-decontaminate",
    help="Skip inputs that contain a 4-Parity or HumanEval/bug-fix benchmark program.",
)
EXCLUDE = typer.Option(None, "--exclude", help="More protected programs (JSONL/Parquet); repeatable.")
OVERWRITE = typer.Option(
    False,
    "--overwrite",
    help="Replace an existing output made with other settings (by default a rerun resumes it, and only "
    "with the same settings).",
)


PROGRESS_LINE_S = 10.0  # seconds between progress lines on a console that is not a terminal


class ProgressLines:
    """``label done/total`` as a plain line every :data:`PROGRESS_LINE_S` seconds, on a console that is
    not a terminal (a log file, a pipe), where rich draws its bar once, at the end; on a terminal,
    nothing (the bar is there)."""

    def __init__(self, console, label: str) -> None:
        self.console, self.label = console, label
        self.last = time.monotonic()

    def __call__(self, done: int, total: int | None = None) -> None:
        if self.console.is_terminal or (total is not None and done >= total):
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_LINE_S:
            self.last = now
            self.console.print(f"{self.label} {done}/{'?' if total is None else total}")


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def parse_counts(text: str) -> tuple[int, ...]:
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


def parse_names(text: str | None, known, what: str) -> tuple[str, ...] | None:
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
    settings: dict | None = None,
    overwrite: bool = False,
) -> dict:
    """Stream ``input_path`` through ``worker`` (``item -> (key, rows, skip reason)``) into ``output``.

    Rows already done by an earlier run are not read again; a failure in one row is a counted
    skip, not a crashed job. The output resumes only when it was made by the same command on the same
    input with the same ``settings`` (default: ``extra_summary``); ``overwrite`` replaces it instead.
    SIGTERM or Ctrl-C stops the workers and keeps what was flushed (exit code 130; rerun to resume).
    """
    import contextlib
    import dataclasses

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from editlm.io.parallel import Interrupted, check_workers, map_unordered
    from editlm.io.tables import ShardedWriter, TableError, read_rows

    if dataclasses.is_dataclass(settings):
        settings = dataclasses.asdict(settings)
    recorded = {
        "command": label,
        "input": str(Path(input_path).resolve()),
        "columns": columns,
        "id_column": id_column,
        **(settings if settings is not None else extra_summary or {}),
    }
    try:
        check_workers(workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--workers") from None
    writer = None
    try:
        writer = ShardedWriter(output, settings=recorded, overwrite=overwrite)
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
            lines, done = ProgressLines(progress.console, label), len(writer.done)
            guarded = functools.partial(_guarded, worker)
            results = map_unordered(
                guarded, items(), workers=workers or None, scheduler=scheduler, chunksize=4
            )
            with contextlib.closing(results):
                for key, rows, reason in results:
                    if reason:
                        writer.skip(key, reason)
                    else:
                        writer.add(key, rows)
                    progress.advance(task)
                    done += 1
                    lines(done, total)
        summary = writer.finish(extra_summary)
    except TableError as exc:
        fail(str(exc))
    except KeyboardInterrupt as exc:  # Interrupted (SIGTERM) included: the workers are gone by now
        if writer is not None:
            writer.flush()
        why = str(exc) if isinstance(exc, Interrupted) else "interrupted"
        typer.secho(f"{why}; finished work is kept: rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    shown = {k: v for k, v in summary.items() if k not in ("settings", "columns")}
    typer.echo(" ".join(f"{k}={v}" for k, v in shown.items()))
    return summary


TEXT_COLUMNS = ("content", "program", "code", "text", "source")


def text_column(path: Path, given: str | None) -> str:
    """``given``, or the first of :data:`TEXT_COLUMNS` the table has (from the schema or first row)."""
    if given:
        return given
    from editlm.io.tables import TableError, read_rows

    try:
        if str(path).lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            names = pq.ParquetFile(path).schema_arrow.names
        else:
            names = list(next(read_rows(path), {}))
    except (TableError, OSError, ValueError) as exc:
        fail(str(exc))
    found = next((c for c in TEXT_COLUMNS if c in names), None)
    if found is None:
        fail(f"{path}: none of the columns {TEXT_COLUMNS}; name one with --column (it has {names})")
    return found


def same_settings(output: Path, settings: dict) -> None:
    """A rerun continues a finished or partial output; with other settings it would mix two
    datasets into one file, so that is refused up front. (Commands writing through
    :func:`run_transform` or ``ShardedWriter(settings=...)`` get this check there.)"""
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
        fail(f"{output} was made with other settings ({what}); remove it or write elsewhere")


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


def check_exclude(paths: tuple[str, ...], decontaminate: bool) -> None:
    """Read the protected tables once up front, so a bad --exclude fails before any work."""
    if not decontaminate:
        return
    from editlm.data.transforms.contamination import default_index
    from editlm.io.tables import TableError

    try:
        default_index(paths)
    except (TableError, KeyError) as exc:
        fail(f"--exclude: {exc}")
