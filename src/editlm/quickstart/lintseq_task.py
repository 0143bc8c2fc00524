"""``editlm quickstart --task lintseq``: the LintSeq pipeline, small, on the embedded default data.

corpus (standard-library functions, HumanEval kept out) -> LintSeq edit sequences -> tokenizer ->
tiny code LM pretrained on the corpus -> fine-tuned on the edit sequences (loss on the edits only) ->
edit sequences sampled for HumanEval problems -> run in the sandbox -> pass@k and a report.

Every stage writes into the run directory and is skipped when its output is already there, so an
interrupted quickstart resumes where it stopped. pass@k of a model this small is near zero, so the
report adds what a small run can show honestly: the share of sampled edit sequences that decode,
and the syntactic validity and diversity of the decoded programs.
"""

from __future__ import annotations

import json
from pathlib import Path

from editlm.quickstart.stages import Stages


def run_lintseq_quickstart(
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
    from editlm.evaluate.run import evaluate_file
    from editlm.generate.engines import SamplingParams, load_engine
    from editlm.generate.samples import write_samples
    from editlm.io.tables import read_rows, write_rows
    from editlm.models.tokenizer import train_tokenizer
    from editlm.train.config import PretrainConfig, SFTConfig
    from editlm.train.run import pretrain, sft

    stage = Stages(out, say).run

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

    def evaluate() -> None:
        from editlm.evaluate.cli import add_failure_kinds

        summary = evaluate_file(samples, "humaneval", evaluation, progress=False, metrics=True)
        add_failure_kinds(evaluation, summary)

    stage("running the samples in the sandbox", evaluation / "summary.json", evaluate)

    from editlm.quickstart.report import write_lintseq_report

    stage("report", out / "report.md", lambda: write_lintseq_report(out))
    return json.loads((evaluation / "summary.json").read_text())
