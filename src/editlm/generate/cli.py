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

    @app.command("edit")
    def edit(
        file: Path = typer.Argument(..., help="The file to edit (any language the model knows)."),
        message: str = typer.Option(..., "-m", "--message", help="What to change, as a commit message."),
        model: Path = typer.Option(
            ..., "--model", envvar="EDITLM_MODEL", help="A local diff-model directory."
        ),
        lines: str | None = typer.Option(None, "--lines", help="Only lines A-B (1-based), e.g. 10-24."),
        n: int = typer.Option(4, "-n", help="Diffs to sample."),
        apply: bool = typer.Option(False, "--apply", help="Write the chosen edit (a backup is kept)."),
        pick: int | None = typer.Option(None, "--pick", help="With --apply: which proposal (1 = best)."),
        engine: str = typer.Option("transformers", help="transformers, ctranslate2 or vllm."),
        temperature: float | None = typer.Option(None, help="Default: 0 (greedy) for -n 1, else 0.8."),
        top_p: float = typer.Option(0.95),
        max_new_tokens: int = typer.Option(512),
        seed: int = typer.Option(0),
        device: str | None = typer.Option(None),
    ) -> None:
        """Propose edits of FILE with a diff model: shows each diff that applies (and, for Python,
        parses) with where its hunks landed; --apply writes the chosen one atomically."""
        from rich.console import Console
        from rich.syntax import Syntax

        from editlm.generate.edit import EditRequestError, parse_lines, propose, write_atomically
        from editlm.generate.engines import EngineUnavailable, PromptTooLong, SamplingParams, load_engine

        console = Console(highlight=False)
        if not file.is_file():
            raise typer.BadParameter(f"{file}: no such file", param_hint="FILE")
        try:
            source = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise typer.BadParameter(f"{file}: not UTF-8 text", param_hint="FILE") from None
        temp = temperature if temperature is not None else (0.0 if n == 1 else 0.8)
        try:
            span = parse_lines(lines)
            eng = load_engine(engine, model, device=device)
            proposals = propose(
                eng,
                file.name,
                source,
                message,
                n,
                SamplingParams(temp, top_p, max_new_tokens, (), seed),
                span,
            )
        except EngineUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--engine") from None
        except (EditRequestError, PromptTooLong) as exc:
            raise typer.BadParameter(str(exc)) from None
        good = [p for p in proposals if p.ok]
        dropped = len(proposals) - len(good)
        for k, p in enumerate(good, 1):
            logprob = f"{p.logprob:.2f}" if p.logprob is not None else "-"
            console.rule(f"proposal {k}  (logprob {logprob})")
            console.print(Syntax(p.diff.rstrip("\n"), "diff", theme="ansi_dark", background_color="default"))
            for line in p.placements:
                console.print(f"  [dim]{line}[/dim]")
        reasons = sorted({p.error for p in proposals if not p.ok})
        console.print(
            f"{len(good)} of {n} sampled diffs apply"
            + (f"; {dropped} distinct dropped: " + "; ".join(r[:120] for r in reasons[:3]) if dropped else "")
        )
        if not good:
            raise typer.Exit(1)
        if apply:
            choice = pick or 1
            if not 1 <= choice <= len(good):
                raise typer.BadParameter(f"--pick must be between 1 and {len(good)}", param_hint="--pick")
            backup = write_atomically(file, good[choice - 1].program)
            console.print(f"applied proposal {choice} to {file}" + (f" (backup: {backup})" if backup else ""))
