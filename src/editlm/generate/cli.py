"""``editlm generate``: sample completions, diffs or edit sequences for a benchmark's problems."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate(
        model: Path = typer.Argument(..., help="A local Hugging Face causal LM directory."),
        benchmark: str = typer.Option(
            "humaneval", "-b", "--benchmark", help="Benchmark name (editlm evaluate)."
        ),
        kind: str = typer.Option(
            "completion",
            "--kind",
            help="Prompt format: completion (plain), diff (diff model), edits (LintSeq).",
        ),
        output: Path = typer.Option(
            ..., "-o", "--output", help="Samples file (.jsonl or .parquet); resumable."
        ),
        n: int = typer.Option(10, "-n", help="Samples per problem."),
        engine: str = typer.Option(
            "transformers", help="transformers, ctranslate2 (fast CPU) or vllm (GPU)."
        ),
        temperature: float = typer.Option(0.8, help="0 for greedy decoding."),
        top_p: float = typer.Option(0.95),
        max_new_tokens: int = typer.Option(256),
        limit: int | None = typer.Option(None, help="Only the first N problems."),
        seed: int = typer.Option(0),
    ) -> None:
        """Sample N completions per problem; score them with `editlm evaluate`."""
        from rich.progress import Progress

        from editlm.evaluate.benchmarks import get_benchmark
        from editlm.generate.engines import EngineUnavailable, SamplingParams, load_engine
        from editlm.generate.samples import write_samples

        params = SamplingParams(temperature, top_p, max_new_tokens, (), seed)
        try:
            eng = load_engine(engine, model)
        except EngineUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--engine") from None
        total = len(get_benchmark(benchmark).problems())
        total = min(total, limit) if limit else total
        with Progress() as progress:
            bar = progress.add_task(f"sampling {benchmark} ({kind}, n={n})", total=total)
            summary = write_samples(
                output, eng, benchmark, kind, n, params, limit=limit, on_task=lambda _: progress.advance(bar)
            )
        typer.echo(f"{summary['rows']} samples for {summary['inputs_written']} problems -> {output}")
