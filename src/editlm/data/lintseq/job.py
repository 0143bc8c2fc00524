"""LintSeq over a table: stream rows in, sample on all cores or a Dask cluster, write resumably.

:func:`lintseq_rows` is the pure part (one input row in, output rows or a skip reason out);
:func:`run_lintseq` is the job: it streams the input with ``read_rows`` (the table is never held or
pickled whole), maps rows with ``map_unordered`` and writes with ``ShardedWriter``, so a rerun
skips rows already written and every skipped program is counted by reason in the summary.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from editlm.data.lintseq.sampler import (
    LintSeqError,
    check_program,
    first_unclean_state,
    normalize_program,
    sample_edit_sequence,
    sample_random_edit_sequence,
    sequence_seed,
)
from editlm.edits.edit_sequence import DIFF_SEPARATOR, edit_sequence_prompt, format_edit_sequence

# The linters whose sequences promise clean states (checked before a row is written).
CLEAN_LINTERS = ("pyflakes", "pylint")


@dataclass(frozen=True)
class LintSeqConfig:
    """Everything a worker needs besides the row; small, so it is cheap to send with every task."""

    samples: int = 5
    seed: int = 0
    linter: str = "pyflakes"  # "pyflakes", "pylint" (the reference's choice of errors) or "none"
    missing_imports: bool = False
    time_limit: float | None = 60.0  # seconds per program, all its samples together
    instruction_field: str | None = "instruction"
    program_field: str = "program"
    keep: tuple[str, ...] = field(default_factory=tuple)  # further input columns copied to the output


def lintseq_rows(key: int, row: dict, config: LintSeqConfig) -> list[dict]:
    """The output rows for one input row (one per sample); raises :class:`LintSeqError` to skip it."""
    program = row.get(config.program_field)
    if not isinstance(program, str):
        raise LintSeqError("not_text", f"{config.program_field!r} is not a string")
    instruction = row.get(config.instruction_field) if config.instruction_field else ""
    if instruction is None:
        instruction = ""
    if not isinstance(instruction, str):
        raise LintSeqError("not_text", f"{config.instruction_field!r} is not a string")
    if DIFF_SEPARATOR in instruction or DIFF_SEPARATOR in program:
        raise LintSeqError("separator_in_text", f"{DIFF_SEPARATOR!r} occurs in the row")
    check_program(program)
    deadline = None if config.time_limit is None else time.monotonic() + config.time_limit
    clean = "".join(line + "\n" for line in normalize_program(program))
    out = []
    for sample in range(config.samples):
        seed = sequence_seed(config.seed, key, sample)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise LintSeqError("timeout", "the per-program time limit ran out")
        if config.linter == "none":
            edits = sample_random_edit_sequence(program, seed, time_limit=left)
        else:
            edits = sample_edit_sequence(
                program,
                seed,
                linter=config.linter,
                missing_imports=config.missing_imports,
                time_limit=left,
                check_syntax=False,
            )
        if config.linter in CLEAN_LINTERS:
            problem = first_unclean_state(edits, missing_imports=config.missing_imports)
            if problem is not None:  # never written: the promise is that every state is clean
                raise LintSeqError("unclean_state", problem)
        text = format_edit_sequence(instruction, edits)
        prompt = edit_sequence_prompt(instruction)
        out.append(
            {
                "instruction": instruction,
                "program": clean,
                "edits": edits,
                "text": text,
                # the same text split for `editlm train sft`: the loss falls on the edits only
                "prompt": prompt,
                "completion": text[len(prompt) :],
                "num_edits": len(edits),
                "row": key,
                "sample": sample,
                "seed": seed,
                **{name: row.get(name) for name in config.keep},
            }
        )
    return out


def _work(config: LintSeqConfig, item: tuple[int, dict]) -> tuple[int, list[dict] | None, str | None]:
    """Top-level worker (picklable with functools.partial): never raises for a bad program."""
    key, row = item
    try:
        return key, lintseq_rows(key, row, config), None
    except LintSeqError as exc:
        return key, None, exc.reason
    except RecursionError:
        return key, None, "too_deep"


def lintseq_records(
    rows: Iterable[dict], config: LintSeqConfig | None = None, *, workers: int | None = 1
) -> tuple[list[dict], Counter]:
    """In memory, for small data (the quickstart): output rows in input order, and skips by reason."""
    config = config or LintSeqConfig()
    out: list[dict] = []
    skipped: Counter = Counter()
    for _key, rows_out, reason in _map(functools.partial(_work, config), enumerate(rows), workers, None, 4):
        if rows_out is None:
            skipped[reason] += 1
        else:
            out += rows_out
    out.sort(key=lambda r: (r["row"], r["sample"]))
    return out, skipped


def run_lintseq(
    input_path: str | Path,
    output_path: str | Path,
    config: LintSeqConfig | None = None,
    *,
    workers: int | None = None,
    scheduler=None,
    limit: int | None = None,
    progress: bool = True,
    chunksize: int = 4,
    shard_size: int = 1000,
) -> dict:
    """Run LintSeq on every row of ``input_path`` (JSONL or Parquet) into ``output_path``.

    Returns the summary (also written to ``OUTPUT.summary.json``): rows written, inputs done and
    skipped programs counted by reason. Rerunning with the same arguments resumes.
    """
    from editlm.io.tables import ShardedWriter, read_rows

    config = config or LintSeqConfig()
    columns = [config.program_field]
    if config.instruction_field:
        columns.append(config.instruction_field)
    columns += [c for c in config.keep if c not in columns]
    writer = ShardedWriter(output_path, shard_size=shard_size)
    total = _count_rows(input_path, limit)
    todo = max(0, total - len(writer.done)) if total is not None else None

    def pending() -> Iterator[tuple[int, dict]]:
        for key, row in enumerate(read_rows(input_path, columns)):
            if limit is not None and key >= limit:
                return
            if key not in writer.done:
                yield key, row

    started = time.monotonic()
    new_rows, new_skips = 0, Counter()
    results = _map(functools.partial(_work, config), pending(), workers, scheduler, chunksize)
    for key, rows, reason in _progress(results, todo, progress):
        if rows is None:
            writer.skip(key, reason)
            new_skips[reason] += 1
        else:
            writer.add(key, rows)
            new_rows += len(rows)
    return writer.finish(
        {
            "config": asdict(config),
            "this_run": {
                "rows": new_rows,
                "skipped": dict(new_skips),
                "seconds": round(time.monotonic() - started, 3),
            },
        }
    )


def _map(fn, items: Iterable, workers: int | None, scheduler, chunksize: int) -> Iterator:
    from editlm.io.parallel import map_unordered

    return map_unordered(fn, items, workers=workers, scheduler=scheduler, chunksize=chunksize)


def _count_rows(path: str | Path, limit: int | None) -> int | None:
    """Rows in the input, for the progress bar: Parquet metadata, or one pass over a JSONL file."""
    import gzip

    from editlm.io.tables import table_format

    try:
        if table_format(path) == "parquet":
            import pyarrow.parquet as pq

            count = pq.ParquetFile(path).metadata.num_rows
        else:
            opener = gzip.open if str(path).endswith(".gz") else open
            with opener(path, "rb") as handle:
                count = sum(1 for line in handle if line.strip())
    except Exception:  # read_rows reports a bad input with a clear error; the bar just has no total
        return None
    return count if limit is None else min(count, limit)


def _progress(results: Iterator, total: int | None, show: bool) -> Iterator:
    if not show:
        yield from results
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("lintseq"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("lintseq", total=total)
        for result in results:
            bar.advance(task)
            yield result
