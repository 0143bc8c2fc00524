"""LintSeq over a table: stream rows in, sample on all cores or a Dask cluster, write resumably.

:func:`lintseq_rows` is the pure part (one input row in, output rows or a skip reason out);
:func:`run_lintseq` is the job: it streams the input with ``read_rows`` (the table is never held or
pickled whole), maps rows with ``map_unordered`` and writes with ``ShardedWriter``, so a rerun
skips rows already written and every skipped program is counted by reason in the summary.
"""

from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from editlm.data.lintseq.sampler import (
    LintSeqError,
    apply_edit_sequence,
    check_program,
    cpu_clock,
    first_unclean_state,
    normalize_program,
    sample_edit_sequence,
    sample_random_chunk_sequence,
    sample_random_edit_sequence,
    sequence_seed,
)
from editlm.edits.edit_sequence import DIFF_SEPARATOR, fenced_code, format_edit_sequence, training_split

# The linters whose sequences promise clean states (checked before a row is written).
CLEAN_LINTERS = ("pyflakes", "pylint")
# --linter: the two clean ones, and two ablations without a linter: "none" (editlm's: the sampler's
# block deletion, no lint) and "random-chunks" (the authors' linter ablation, exactly).
LINTER_CHOICES = (*CLEAN_LINTERS, "none", "random-chunks")
# --export: the authors' LintSeq text; D3's prompt/completion (file state + instruction -> diffs),
# from the empty file or from a partial program (an intermediate state of the sequence).
EXPORTS = ("lintseq", "d3", "d3-partial")
GENERATED = (
    "instruction",
    "program",
    "edits",
    "text",
    "prompt",
    "completion",
    "num_edits",
    "row",
    "sample",
    "seed",
    "program_start",
    "lines_changed",
)


@dataclass(frozen=True)
class LintSeqConfig:
    """Everything a worker needs besides the row; small, so it is cheap to send with every task."""

    samples: int = 5
    seed: int = 0
    linter: str = "pyflakes"  # see LINTER_CHOICES
    missing_imports: bool = False
    time_limit: float | None = 60.0  # CPU seconds per program, all its samples together
    instruction_field: str | None = "instruction"
    program_field: str = "program"
    keep: tuple[str, ...] = field(default_factory=tuple)  # further input columns copied to the output
    export: str = "lintseq"  # see EXPORTS
    closing: bool = True  # the authors' closing "\n<|diff|>\n<|diff|>" (False: editlm's older text)
    unwrap_fenced: bool = False  # take the code out of ```python fences first, as the authors' generator

    def __post_init__(self):
        if self.linter not in LINTER_CHOICES:
            raise ValueError(f"unknown linter {self.linter!r}; choose from {', '.join(LINTER_CHOICES)}")
        if self.export not in EXPORTS:
            raise ValueError(f"unknown export {self.export!r}; choose from {', '.join(EXPORTS)}")
        if self.samples < 1:
            raise ValueError("samples must be >= 1")
        clash = sorted(set(self.keep) & set(GENERATED))
        if clash:
            raise ValueError(
                f"--keep {', '.join(clash)}: the output makes columns of these names; "
                "rename them in the input to keep them"
            )

    def settings(self) -> dict:
        """What the output depends on (resume refuses other settings). The time limit is left out:
        it decides only which programs time out, and those are retried on the next run."""
        out = asdict(self)
        out.pop("time_limit")
        return out


def lintseq_rows(key: int, row: dict, config: LintSeqConfig) -> list[dict]:
    """The output rows for one input row (one per sample); raises :class:`LintSeqError` to skip it."""
    if config.program_field not in row:
        raise LintSeqError("missing_field", f"no {config.program_field!r} field")
    program = row[config.program_field]
    if not isinstance(program, str):
        raise LintSeqError("not_text", f"{config.program_field!r} is not a string")
    instruction = row.get(config.instruction_field) if config.instruction_field else ""
    if config.instruction_field and config.instruction_field not in row:
        raise LintSeqError("missing_field", f"no {config.instruction_field!r} field")
    if instruction is None:
        instruction = ""
    if not isinstance(instruction, str):
        raise LintSeqError("not_text", f"{config.instruction_field!r} is not a string")
    _check_utf8({"instruction": instruction, "program": program, **{k: row.get(k) for k in config.keep}})
    if config.unwrap_fenced:
        program = fenced_code(program)
    if DIFF_SEPARATOR in instruction or DIFF_SEPARATOR in program:
        raise LintSeqError("separator_in_text", f"{DIFF_SEPARATOR!r} occurs in the row")
    check_program(program)
    deadline = None if config.time_limit is None else cpu_clock() + config.time_limit
    clean = "".join(line + "\n" for line in normalize_program(program))
    out = []
    for sample in range(config.samples):
        seed = sequence_seed(config.seed, key, sample)
        passed: set[str] = set()  # the texts the linter passed while sampling
        left = None if deadline is None else deadline - cpu_clock()
        if left is not None and left <= 0:
            raise LintSeqError("timeout", "the per-program time limit ran out")
        if config.linter == "none":
            edits = sample_random_edit_sequence(program, seed, time_limit=left)
        elif config.linter == "random-chunks":
            edits = sample_random_chunk_sequence(program, seed)
        else:
            edits = sample_edit_sequence(
                program,
                seed,
                linter=config.linter,
                missing_imports=config.missing_imports,
                time_limit=left,
                check_syntax=False,
                passed=passed if config.linter == "pyflakes" else None,
            )
        if config.linter in CLEAN_LINTERS:
            problem = first_unclean_state(edits, missing_imports=config.missing_imports, passed=passed)
            if problem is not None:  # never written: the promise is that every state is clean
                raise LintSeqError("unclean_state", problem)
        out.append(
            {
                **_export(config, instruction, edits, seed),
                "program": clean,
                "edits": edits,
                "num_edits": len(edits),
                "row": key,
                "sample": sample,
                "seed": seed,
                **{name: row.get(name) for name in config.keep},
            }
        )
    return out


def _export(config: LintSeqConfig, instruction: str, edits: list[str], seed: int) -> dict:
    """The text columns: ``text`` and its ``prompt``/``completion`` split (the loss falls on the
    completion), plus ``program_start`` and ``lines_changed`` for the D3 forms."""
    start = 0
    if config.export == "d3-partial" and len(edits) > 1:
        # start from a partial program: an intermediate state, chosen per sequence seed
        start = random.Random(seed ^ 0x5EED).randrange(1, len(edits))
    program_start = apply_edit_sequence(edits[:start]) if start else ""
    rest = edits[start:]
    if config.export == "lintseq":
        prompt, completion = training_split(instruction, rest, closing=config.closing)
    else:
        prompt = d3_prompt(program_start, instruction)
        completion = format_edit_sequence("", rest, closing=config.closing)
    return {
        "instruction": instruction,
        "text": prompt + completion,
        "prompt": prompt,
        "completion": completion,
        "program_start": program_start,
        "lines_changed": sum(line.startswith("+") for edit in rest for line in edit.split("\n")),
    }


def d3_prompt(program_start: str, instruction: str) -> str:
    """D3's prompt: the file as it stands, then the instruction. (D3's card describes this order and
    its fields; the exact template is not published, so this layout is editlm's.)"""
    return f"<file>\n{program_start}</file>\n{instruction}"


def _check_utf8(values: dict) -> None:
    """Text that cannot be written as UTF-8 (a lone surrogate from a JSON escape) is a skip of this
    row, found before any work is done, never a crash when the shard is written."""
    for name, value in values.items():
        for text in _strings(value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise LintSeqError("not_utf8", f"{name!r}: {exc.reason} at {exc.start}") from None


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _work(config: LintSeqConfig, item: tuple[int, dict | None, str | None]):
    """Top-level worker (picklable with functools.partial): never raises for a bad program."""
    key, row, reason = item
    if row is None:
        return key, None, reason
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
    items = ((key, row, None) for key, row in enumerate(rows))
    for _key, rows_out, reason in _map(functools.partial(_work, config), items, workers, None, 4):
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
    overwrite: bool = False,
) -> dict:
    """Run LintSeq on every row of ``input_path`` (JSONL or Parquet) into ``output_path``.

    Returns the summary (also written to ``OUTPUT.summary.json``): rows written, inputs done and
    skipped programs counted by reason (a malformed JSON line, a row without the program field,
    text that is not UTF-8 are skips too). Rerunning with the same settings resumes; other settings
    raise :class:`editlm.io.tables.SettingsMismatch` unless ``overwrite``. Programs that timed out
    are not marked done, so a rerun (with a larger ``time_limit`` if need be) retries them.
    """
    from editlm.io.tables import ShardedWriter

    config = config or LintSeqConfig()
    columns = [config.program_field]
    if config.instruction_field:
        columns.append(config.instruction_field)
    columns += [c for c in config.keep if c not in columns]
    settings = {**config.settings(), "input": str(Path(input_path).resolve())}
    writer = ShardedWriter(
        output_path,
        shard_size=shard_size,
        settings=settings,
        overwrite=overwrite,
        schema=_schema(input_path, config),
    )
    total = _count_rows(input_path, limit)
    todo = max(0, total - len(writer.done)) if total is not None else None

    def pending() -> Iterator[tuple[int, dict | None, str | None]]:
        for key, row, reason in input_rows(input_path, columns):
            if limit is not None and key >= limit:
                return
            if key not in writer.done:
                yield key, row, reason

    started = time.monotonic()
    new_rows, new_skips = 0, Counter()
    results = _map(functools.partial(_work, config), pending(), workers, scheduler, chunksize)
    for key, rows, reason in _progress(results, todo, progress):
        if rows is None:
            new_skips[reason] += 1
            if reason != "timeout":  # a timeout is retried by the next run
                writer.skip(key, reason)
        else:
            writer.add(key, rows)
            new_rows += len(rows)
    return writer.finish(
        {
            "config": asdict(config),
            "this_run": {
                "rows": new_rows,
                "skipped": dict(new_skips),
                "timeouts_to_retry": new_skips.get("timeout", 0),
                "seconds": round(time.monotonic() - started, 3),
            },
        }
    )


def input_rows(path: str | Path, columns: list[str]) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(key, row, None)`` per input row, or ``(key, None, reason)`` for a JSONL line that is not a
    JSON object (``bad_json``, ``not_an_object``) or not UTF-8 (``not_utf8``): one bad line is a
    counted skip, not the end of the job. Keys count the non-blank lines (rows), from 0. A first row
    without the program column is a :class:`TableError` (a wrong ``--program-field``, most likely)."""
    import gzip
    import json

    from editlm.io.tables import TableError, read_rows, table_format

    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file")
    if table_format(path) == "parquet":
        for key, row in enumerate(read_rows(path, columns)):
            yield key, row, None
        return
    opener = gzip.open if str(path).endswith(".gz") else open
    key = 0
    checked = False
    with opener(path, "rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield key, None, "not_utf8"
            except ValueError:
                yield key, None, "bad_json"
            else:
                if not isinstance(row, dict):
                    yield key, None, "not_an_object"
                else:
                    if not checked and columns[0] not in row:
                        raise TableError(
                            f"{path}:{key + 1}: missing field {columns[0]!r}; it has {sorted(row)}"
                        )
                    checked = True
                    yield key, {c: row[c] for c in columns if c in row}, None
            key += 1


def _schema(input_path: str | Path, config: LintSeqConfig):
    """The output's Parquet schema, so that a run whose every program was skipped still has all its
    columns; kept columns take their type from a Parquet input (from JSONL it is unknown: None)."""
    import pyarrow as pa

    fields = [
        ("instruction", pa.string()),
        ("text", pa.string()),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("program_start", pa.string()),
        ("lines_changed", pa.int64()),
        ("program", pa.string()),
        ("edits", pa.list_(pa.string())),
        ("num_edits", pa.int64()),
        ("row", pa.int64()),
        ("sample", pa.int64()),
        ("seed", pa.int64()),
    ]
    if config.keep:
        from editlm.io.tables import table_format

        if table_format(input_path) != "parquet":
            return None
        import pyarrow.parquet as pq

        try:
            source = pq.read_schema(input_path)
        except Exception:  # read_rows reports a bad input with a clear error
            return None
        fields += [(name, source.field(name).type) for name in config.keep if name in source.names]
    return pa.schema(fields)


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

    from editlm.data.cli_common import ProgressLines

    columns = (TextColumn("lintseq"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("lintseq", total=total)
        lines = ProgressLines(bar.console, "lintseq")  # a log file's progress
        for done, result in enumerate(results, 1):
            bar.advance(task)
            lines(done, total)
            yield result
