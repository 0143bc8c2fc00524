"""Repeated sampling on a benchmark: prompts in the model's format, completions out as a samples file
that ``editlm evaluate`` scores. Resumable per task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from editlm.edits.diff_model import NAME_TAG
from editlm.generate.engines import Engine, SamplingParams

KINDS = ("completion", "diff", "edits", "response")  # the payload key says which prompt format made it


def stops_for(kind: str) -> tuple[str, ...]:
    """Where a completion of each format ends, besides the end token."""
    from editlm.evaluate.benchmarks import STOP_SEQUENCES

    return {"completion": tuple(STOP_SEQUENCES), "diff": (NAME_TAG,), "edits": (), "response": ()}[kind]


def sample_benchmark(
    engine: Engine,
    benchmark: str,
    kind: str,
    n: int,
    params: SamplingParams,
    *,
    limit: int | None = None,
    batch_prompts: int = 4,
    skip: set | frozenset = frozenset(),
) -> Iterator[tuple[str, list[dict]]]:
    """Yield ``(task_id, sample rows)`` for each problem: ``n`` samples with ``task_id``, the payload
    under ``kind`` (``completion``, ``diff`` or ``edits``), its log-probability and the sample index."""
    from editlm.evaluate.benchmarks import get_benchmark

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    bench = get_benchmark(benchmark)
    problems = [p for p in list(bench.problems().values())[:limit] if p.task_id not in skip]
    params = SamplingParams(**{**params.__dict__, "stop": params.stop or stops_for(kind)})
    for start in range(0, len(problems), batch_prompts):
        chunk = problems[start : start + batch_prompts]
        prompts = [bench.prompt(p, kind) for p in chunk]
        # a diff copies the file before (its context and - lines): the prediction engines speculate from
        predictions = [getattr(p, "source", None) if kind == "diff" else None for p in chunk]
        for problem, completions in zip(chunk, _sample(engine, prompts, n, params, predictions), strict=True):
            if isinstance(completions, Exception):  # this prompt alone cannot be sampled: say why, per sample
                reason = f"not sampled: {completions}"
                yield (
                    problem.task_id,
                    [{"task_id": problem.task_id, "error": reason, "sample": k} for k in range(n)],
                )
                continue
            yield (
                problem.task_id,
                [
                    {
                        "task_id": problem.task_id,
                        kind: c.text,
                        "logprob": c.logprob,
                        "sample": k,
                        "finish": c.finish,
                        "tokens": c.tokens,
                    }
                    for k, c in enumerate(completions)
                ],
            )


def _sample(engine: Engine, prompts: list[str], n: int, params: SamplingParams, predictions: list) -> list:
    """The engine's samples for each prompt; a prompt longer than the model's context is that prompt's
    failure (an exception in its place), not the whole benchmark's."""
    from editlm.generate.engines import PromptTooLong

    def run(batch: list[str], preds: list) -> list:
        if any(preds):
            return engine.sample(batch, n, params, predictions=preds)
        return engine.sample(batch, n, params)

    try:
        return run(prompts, predictions)
    except PromptTooLong as exc:
        if len(prompts) == 1:
            return [exc]
    out: list = []
    for prompt, prediction in zip(prompts, predictions, strict=True):
        try:
            out += run([prompt], [prediction])
        except PromptTooLong as exc:
            out.append(exc)
    return out


def write_samples(
    out: str | Path,
    engine: Engine,
    benchmark: str,
    kind: str,
    n: int,
    params: SamplingParams,
    *,
    limit: int | None = None,
    on_task: Callable[[str], None] | None = None,
) -> dict:
    """``sample_benchmark`` into a resumable JSONL/Parquet file; returns its summary."""
    from editlm.io.tables import ShardedWriter

    writer = ShardedWriter(out, shard_size=max(n * 4, 64))
    for task_id, rows in sample_benchmark(
        engine, benchmark, kind, n, params, limit=limit, skip=frozenset(writer.done)
    ):
        writer.add(task_id, rows)
        if on_task:
            on_task(task_id)
    return writer.finish({"benchmark": benchmark, "kind": kind, "n": n, "engine": engine.name})
