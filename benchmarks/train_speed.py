"""Training speed: useful (non-padding) tokens per second on a diff-format dataset.

editlm's packed training (best-fit rows, attention within each sample only, LM head run only on the
positions that carry loss) against the usual padded batches
(transformers' ``DataCollatorForSeq2Seq``, which pads every batch to its longest sample), both with
the same model, tokenized samples, loss masks, Trainer and device. Runs alternate so that machine noise
hits all alike; a run's rate is its median step, and the best run of each kind counts.

    .venv/bin/python benchmarks/train_speed.py [--quick]

The last line is one JSON object with the figures; ``ratio`` = editlm tokens/s / the faster baseline's
(padded batches of the same sample count, or of as many positions as editlm's rows).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainerCallback

from editlm.edits.diff import make_diff
from editlm.edits.diff_model import DiffSample
from editlm.models.presets import init_model
from editlm.models.tokenizer import read_source, stdlib_files, train_tokenizer
from editlm.train.config import SFTConfig, make_config
from editlm.train.data import IGNORE, DataReport, PackedCollator, encode_sft, pack
from editlm.train.run import training_arguments
from editlm.train.trainer import MaskedLMTrainer, use_segment_attention


def diff_dataset(n: int, seed: int) -> list[dict]:
    """Diff-model rows from windows of stdlib files with a random edit (lengths vary like real commits)."""
    rng = random.Random(seed)
    files = [f for f in stdlib_files() if "test" not in f.parts]
    rows = []
    while len(rows) < n:
        lines = read_source(rng.choice(files)).splitlines(keepends=True)
        if len(lines) < 10:
            continue
        size = min(len(lines), int(rng.lognormvariate(3.2, 0.8)) + 3)
        start = rng.randrange(0, len(lines) - size + 1)
        before = lines[start : start + size]
        after = list(before)
        at = rng.randrange(len(after))
        kind = rng.choice(["insert", "replace", "delete"])
        if kind == "insert":
            after.insert(at, "    result = compute(value)  # added\n")
        elif kind == "replace":
            after[at] = after[at].replace("self", "other") if "self" in after[at] else "pass\n"
        else:
            del after[at]
        diff = make_diff("".join(before), "".join(after), headers=False)
        if not diff:
            continue
        sample = DiffSample(f"file{len(rows)}.py", "".join(before), f"Apply a {kind} edit", diff)
        rows.append(
            {"prompt": sample.prompt(), "completion": sample.completion(), "loss_start": sample.loss_start}
        )
    return rows


class Clock(TrainerCallback):
    """Times every optimizer step after the first few (warm-up) and counts its non-padding tokens.

    The rate is the median of the per-step rates, so that a step slowed by other work on the machine
    does not decide the figure."""

    def __init__(self, skip: int):
        self.skip, self.rates, self.tokens, self.seconds = skip, [], 0, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.t0, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.skip:
            seconds = time.perf_counter() - self.t0
            tokens = state.num_input_tokens_seen - self.tokens0
            self.rates.append(tokens / seconds)
            self.tokens += tokens
            self.seconds += seconds

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def run(tok, train, collator, config, skip: int, trainer_class=Trainer) -> tuple[float, int, float]:
    model = init_model(config.model, tok, seed=0, max_position_embeddings=config.seq_len)
    model.config.use_cache = False
    if trainer_class is MaskedLMTrainer:
        assert use_segment_attention(model)
    with tempfile.TemporaryDirectory() as out:
        config.output_dir = out
        args = training_arguments(config, has_eval=False, save_strategy="no")
        clock = Clock(skip)
        trainer = trainer_class(
            model=model, args=args, train_dataset=train, data_collator=collator, processing_class=tok,
            callbacks=[clock],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return clock.rate, clock.tokens, clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--model", default="tiny", help="model preset")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8, help="rows (editlm) or samples (baseline) per step")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = parser.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    steps, samples, repeats = (8, 300, 1) if a.quick else (30, 1500, a.repeats)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_tokenizer((read_source(p) for p in stdlib_files()[:200]), Path(tmp), vocab_size=4096)
    rows = diff_dataset(samples, seed=0)
    report = DataReport()
    segments = encode_sft(tok, rows, seq_len=a.seq_len, report=report)
    packed = pack(segments, a.seq_len, report)
    padded = [{"input_ids": i, "attention_mask": [1] * len(i), "labels": lab} for i, lab in segments]
    config = make_config(
        SFTConfig,
        dict(model=a.model, seq_len=a.seq_len, batch_size=a.batch, max_steps=steps, warmup_steps=2, progress=False,
             tensorboard=False, logging_steps=1000, lr=1e-3),
    )  # fmt: skip
    # Share of real tokens in the baseline's padded batches (random batches of `batch` samples), and a
    # second baseline whose batches hold as many positions as editlm's rows (same per-step overhead).
    rng = random.Random(0)
    lengths = [len(ids) for ids, _ in segments]
    fills, widths = [], []
    for _ in range(200):
        batch = rng.sample(lengths, a.batch)
        fills.append(sum(batch) / (a.batch * max(batch)))
        widths.append(max(batch))
    baseline_fill = sum(fills) / len(fills)
    matched = max(a.batch, round(a.batch * a.seq_len / (sum(widths) / len(widths))))
    seq2seq = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE)
    pc = PackedCollator(tok.pad_token_id)
    runs = {
        f"baseline: padded batches of {a.batch} (DataCollatorForSeq2Seq)": (padded, seq2seq, a.batch, Trainer),
        f"baseline: padded batches of {matched} (as many positions)": (padded, seq2seq, matched, Trainer),
        f"packing only: rows of {a.seq_len}, {a.batch} per batch, stock Trainer": (packed, pc, a.batch, Trainer),
        "editlm: packed, per-sample attention, logits on loss positions": (packed, pc, a.batch, MaskedLMTrainer),
    }  # fmt: skip
    best = {name: (0.0, 0, 0.0) for name in runs}
    for _ in range(repeats):  # alternate, so that machine noise hits every run alike; keep the best
        for name, (data, collator, batch_size, trainer_class) in runs.items():
            config.batch_size = batch_size
            result = run(tok, data, collator, config, skip=2, trainer_class=trainer_class)
            if result[0] > best[name][0]:
                best[name] = result
    table = Table(title=f"Training speed, diff-format data ({a.model} preset, seq_len {a.seq_len})")
    for col in ("run", "useful tokens/s", "tokens timed", "seconds", "non-padding share"):
        table.add_column(col, justify="right")
    names = list(runs)
    for name in names:
        fill = baseline_fill if name.startswith("baseline") else report.fill
        tps, tokens, seconds = best[name]
        table.add_row(name, f"{tps:,.0f}", f"{tokens:,}", f"{seconds:.1f}", f"{fill:.1%}")
    console.print(table)
    console.print(
        f"samples {report.used} (skipped as too long: {report.skipped_overlong}), rows {len(packed)}"
    )
    editlm_tps = best[names[3]][0]
    baseline_tps = max(best[names[0]][0], best[names[1]][0])  # the stronger baseline counts
    print(
        json.dumps(
            {
                "benchmark": "train_speed",
                "quick": a.quick,
                "model": a.model,
                "seq_len": a.seq_len,
                "batch": a.batch,
                "baseline_matched_batch": matched,
                "threads": torch.get_num_threads(),
                "samples": report.used,
                "editlm_tokens_per_s": round(editlm_tps, 1),
                "baseline_tokens_per_s": round(best[names[0]][0], 1),
                "baseline_matched_tokens_per_s": round(best[names[1]][0], 1),
                "editlm_fill": round(report.fill, 4),
                "baseline_fill": round(baseline_fill, 4),
                "ratio": round(editlm_tps / baseline_tps, 3),
                "ratio_same_batch": round(editlm_tps / best[names[0]][0], 3),
                "packing_only_tokens_per_s": round(best[names[2]][0], 1),
                "ratio_packing_only": round(best[names[2]][0] / baseline_tps, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
