"""``editlm quickstart``: the whole pipeline, small, on the embedded default data.

corpus (standard-library functions, HumanEval kept out) -> LintSeq edit sequences -> tokenizer ->
tiny code LM pretrained on the corpus -> fine-tuned on the edit sequences (loss on the edits only) ->
edit sequences sampled for HumanEval problems -> run in the sandbox -> pass@k and a report.

Every stage writes into the run directory and is skipped when its output is already there, so an
interrupted quickstart resumes where it stopped. The numbers of a model this small are near zero;
the point is a pipeline that runs end to end in minutes on a laptop CPU, with the same code that
scales up through the stage commands and recipes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer


def run_quickstart(
    out: Path,
    *,
    programs: int = 400,
    samples_per_program: int = 2,
    pretrain_steps: int = 300,
    sft_steps: int = 300,
    problems: int = 20,
    n: int = 5,
    engine: str = "ctranslate2",
    seed: int = 0,
    say=print,
) -> dict:
    """Run every stage into ``out``; returns the evaluation summary."""
    from editlm.data.corpus import build_corpus
    from editlm.data.lintseq.job import LintSeqConfig, run_lintseq
    from editlm.evaluate.report import write_report
    from editlm.evaluate.run import evaluate_file
    from editlm.generate.engines import SamplingParams, load_engine
    from editlm.generate.samples import write_samples
    from editlm.io.tables import read_rows, write_rows
    from editlm.models.tokenizer import train_tokenizer
    from editlm.train.config import PretrainConfig, SFTConfig
    from editlm.train.run import pretrain, sft

    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def stage(name: str, done: Path, work) -> None:
        if done.exists():
            say(f"[skip] {name}: {done} exists")
            return
        say(f"[....] {name}")
        start = time.perf_counter()
        work()
        timings[name] = round(time.perf_counter() - start, 1)
        say(f"[done] {name} in {timings[name]}s")

    corpus = out / "corpus.jsonl"
    stage("corpus of standard-library functions", corpus,
          lambda: write_rows(corpus, build_corpus(limit=programs, seed=seed)))  # fmt: skip

    edits = out / "lintseq.parquet"
    stage("LintSeq edit sequences", edits, lambda: run_lintseq(
        corpus, edits, LintSeqConfig(samples=samples_per_program, seed=seed), progress=False))  # fmt: skip

    tokenizer = out / "tokenizer"

    def make_tokenizer() -> None:
        texts = [r["program"] for r in read_rows(corpus)] + [r["instruction"] for r in read_rows(corpus)]
        train_tokenizer(texts, tokenizer, vocab_size=4096)

    stage("byte-level BPE tokenizer", tokenizer / "tokenizer.json", make_tokenizer)

    base = out / "pretrained"
    stage("pretraining a tiny code LM", base / "config.json", lambda: pretrain(PretrainConfig(
        output_dir=str(base), model="tiny", tokenizer=str(tokenizer), data=str(corpus), text_field="program",
        seq_len=512, batch_size=8, max_steps=pretrain_steps, lr=2e-3, warmup_steps=30, seed=seed,
        tensorboard=False, save_steps=10**9, eval_steps=10**9)))  # fmt: skip

    tuned = out / "lintseq-model"
    stage("fine-tuning on edit sequences", tuned / "config.json", lambda: sft(SFTConfig(
        output_dir=str(tuned), model=str(base), data=str(edits), seq_len=512, batch_size=8,
        max_steps=sft_steps, lr=1e-3, seed=seed, overlong="truncate", tensorboard=False,
        save_steps=10**9, eval_steps=10**9)))  # fmt: skip

    samples = out / "samples.jsonl"
    stage(f"sampling {n} edit sequences for {problems} HumanEval problems ({engine})", samples,
          lambda: write_samples(samples, load_engine(engine, tuned), "humaneval", "edits", n,
                                SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=256, seed=seed),
                                limit=problems))  # fmt: skip

    evaluation = out / "evaluation"
    stage("running the samples in the sandbox", evaluation / "summary.json",
          lambda: evaluate_file(samples, "humaneval", evaluation, progress=False, metrics=True))  # fmt: skip
    stage("report", out / "report.md", lambda: write_report(out))
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return json.loads((evaluation / "summary.json").read_text())


def register(app: typer.Typer) -> None:
    @app.command()
    def quickstart(
        out: Path = typer.Option(Path("runs/quickstart"), "-o", "--out", help="Run directory (resumable)."),
        programs: int = typer.Option(400, help="Programs in the corpus."),
        pretrain_steps: int = typer.Option(300),
        sft_steps: int = typer.Option(300),
        problems: int = typer.Option(20, help="HumanEval problems to sample (164 for all)."),
        n: int = typer.Option(5, "-n", help="Samples per problem."),
        engine: str = typer.Option("ctranslate2", help="Sampling engine: ctranslate2, transformers or vllm."),
        seed: int = typer.Option(0),
    ) -> None:
        """Run the whole pipeline on the embedded default data with a tiny model."""
        summary = run_quickstart(out, programs=programs, pretrain_steps=pretrain_steps, sft_steps=sft_steps,
                                 problems=problems, n=n, engine=engine, seed=seed, say=typer.echo)  # fmt: skip
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "per_task"}, indent=2)[:2000])
        typer.echo(f"report: {out / 'report.md'}")
