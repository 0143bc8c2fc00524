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
        seed: int = typer.Option(0, help="A sample depends only on (prompt, sample index, seed)."),
        stop: list[str] = typer.Option(
            [], "--stop", help="Stop sequence (repeatable); default: the format's own (e.g. <NME>)."
        ),
        batch_size: int = typer.Option(16, help="Rows decoded together."),
        device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda if visible)."),
        compute_type: str = typer.Option(
            "int8", help="CTranslate2 compute type: int8 (fast) or float32 (agrees with transformers)."
        ),
        dtype: str | None = typer.Option(None, help="transformers / vLLM weights dtype (float32, bfloat16)."),
        tensor_parallel_size: int = typer.Option(1, help="vLLM: GPUs per model."),
        max_model_len: int | None = typer.Option(None, help="vLLM: context length to reserve."),
        gpu_memory_utilization: float = typer.Option(0.9, help="vLLM: share of GPU memory to use."),
    ) -> None:
        """Sample N completions per problem; score them with `editlm evaluate`."""
        from rich.progress import Progress

        from editlm.evaluate.benchmarks import get_benchmark
        from editlm.generate.engines import EngineUnavailable, SamplingParams, load_engine
        from editlm.generate.samples import write_samples

        params = SamplingParams(temperature, top_p, max_new_tokens, tuple(stop), seed)
        options = dict(
            batch_size=batch_size,
            device=device,
            compute_type=compute_type,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        try:
            eng = load_engine(engine, model, **options)
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
