"""Training speed: useful (non-padding) tokens per second and peak memory on a diff-format dataset.

Every run is TRL's ``SFTTrainer`` on the same model, tokenized samples, loss masks (completion-only) and
device; they differ in how batches are formed and how attention is computed:

- ``padded``: one sample per row, padded to the longest of the batch (the usual baseline);
- ``trl padding-free``: TRL's ``padding_free=True`` (a batch is its samples end to end, no padding);
- ``trl packed``: TRL's best-fit packing into rows of ``seq_len``, padding-free (TRL's recommended setup);
- ``editlm``: TRL's packing plus editlm's per-sample attention (editlm's default);
- ``editlm padding-free``: TRL's padding-free batches plus editlm's per-sample attention.

Each run is its own process, so its peak memory (max RSS on CPU, ``max_memory_allocated`` on a GPU) is
its own; runs alternate so that machine noise hits all alike; a run's rate is its median step (wall
and CPU time), and the best repeat of each counts.

    .venv/bin/python benchmarks/train_speed.py [--quick]

The last line is one JSON object; ``ratio_vs_trl`` = editlm tokens/s over the faster TRL run's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = {
    "padded": dict(packing=False, padding_free=False, segments=False),
    "trl padding-free": dict(packing=False, padding_free=True, segments=False),
    "trl packed": dict(packing=True, padding_free=True, segments=False),
    "editlm": dict(packing=True, padding_free=True, segments=True),
    "editlm padding-free": dict(packing=False, padding_free=True, segments=True),
}


def diff_dataset(n: int, seed: int) -> list[dict]:
    """Diff-model rows from windows of stdlib files with a random edit (lengths vary like real commits)."""
    from editlm.edits.diff import make_diff
    from editlm.edits.diff_model import DiffSample
    from editlm.models.tokenizer import read_source, stdlib_files

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


def child(a) -> None:
    """One run in this process: print its figures as one JSON line."""
    import torch
    from transformers import PrinterCallback, TrainerCallback

    from editlm.models.loading import load_tokenizer
    from editlm.models.presets import init_model
    from editlm.train.config import SFTConfig, make_config
    from editlm.train.data import DataReport, encode_sft, pack_dataset, to_dataset
    from editlm.train.run import sft_arguments
    from editlm.train.trainer import EditlmTrainer, use_segment_attention

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    spec = RUNS[a.run]
    tok = load_tokenizer(a.tokenizer)
    report = DataReport()
    segments = encode_sft(tok, diff_dataset(a.samples, seed=0), seq_len=a.seq_len, report=report)
    data = pack_dataset(segments, a.seq_len) if spec["packing"] else to_dataset(segments)
    model = init_model(a.model, tok, seed=0, max_position_embeddings=a.seq_len)
    model.config.use_cache = False
    if spec["segments"]:
        assert use_segment_attention(model)
    gpu = torch.cuda.is_available()
    if gpu:
        model = model.cuda()
        torch.cuda.reset_peak_memory_stats()

    class Clock(TrainerCallback):
        """Wall and CPU time of every optimizer step after the first two, and its non-padding tokens."""

        def __init__(self):
            self.rates, self.cpu_rates, self.tokens, self.positions = [], [], 0, 0

        def on_step_begin(self, args, state, control, **kwargs):
            self.t0, self.c0, self.n0 = time.perf_counter(), time.process_time(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > 2:
                tokens = state.num_input_tokens_seen - self.n0
                self.rates.append(tokens / (time.perf_counter() - self.t0))
                self.cpu_rates.append(tokens / max(time.process_time() - self.c0, 1e-9))
                self.tokens += tokens

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as out:
        config = make_config(
            SFTConfig,
            dict(output_dir=out, model=a.model, seq_len=a.seq_len, batch_size=a.batch, max_steps=a.steps,
                 warmup_steps=2, progress=False, tensorboard=False, logging_steps=1000, lr=1e-3,
                 packing=spec["packing"]),
        )  # fmt: skip
        args = sft_arguments(
            config, has_eval=False, bf16=gpu and torch.cuda.is_bf16_supported(), save_strategy="no",
            padding_free=spec["padding_free"],
        )  # fmt: skip
        clock = Clock()
        trainer = EditlmTrainer(
            model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[clock]
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    peak = (
        torch.cuda.max_memory_allocated()
        if gpu
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        json.dumps(
            {
                "run": a.run, "tokens_per_s": statistics.median(clock.rates),
                "tokens_per_cpu_s": statistics.median(clock.cpu_rates), "tokens": clock.tokens,
                "peak_bytes": peak, "rss_before_train_bytes": rss0 * 1024, "device": "cuda" if gpu else "cpu",
                "samples": report.used, "skipped": report.skipped_overlong, "rows": len(data),
            }
        )
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--model", default="tiny", help="model preset")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8, help="rows (packed) or samples per step")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of the runs")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.run:
        return child(a)
    from rich.console import Console
    from rich.table import Table

    from editlm.models.tokenizer import read_source, stdlib_files, train_tokenizer

    steps, samples, repeats = (8, 300, 1) if a.quick else (30, 1500, a.repeats)
    names = [n.strip() for n in a.runs.split(",") if n.strip()]
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer((read_source(p) for p in stdlib_files()[:200]), Path(tmp), vocab_size=4096)
        for _ in range(repeats):  # alternate, so that machine noise hits every run alike; keep the best
            for name in names:
                cmd = [sys.executable, __file__, "--run", name, "--tokenizer", tmp, "--steps", str(steps),
                       "--samples", str(samples), "--model", a.model, "--seq-len", str(a.seq_len),
                       "--batch", str(a.batch), "--threads", str(a.threads)]  # fmt: skip
                done = subprocess.run(
                    cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"}
                )
                if done.returncode:
                    raise SystemExit(f"run {name!r} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(result), file=sys.stderr, flush=True)  # each run as it ends
                if result["tokens_per_s"] > best.get(name, {}).get("tokens_per_s", 0):
                    best[name] = result
    load = os.getloadavg()[0]
    table = Table(
        title=f"Training speed, diff-format data ({a.model} preset, seq_len {a.seq_len}, batch {a.batch})"
    )
    for col in ("run", "useful tokens/s", "tokens/CPU-s", "peak memory MiB", "rows"):
        table.add_column(col, justify="right")
    for name in names:
        r = best[name]
        table.add_row(name, f"{r['tokens_per_s']:,.0f}", f"{r['tokens_per_cpu_s']:,.0f}",
                      f"{r['peak_bytes'] / 2**20:,.0f}", f"{r['rows']:,}")  # fmt: skip
    console = Console(width=150)
    console.print(table)
    first = best[names[0]]
    console.print(
        f"samples {first['samples']} (skipped as too long: {first['skipped']}); load average {load:.1f}"
    )
    trl = max((best[n]["tokens_per_s"] for n in names if n.startswith("trl")), default=None)
    editlm = best["editlm"]["tokens_per_s"] if "editlm" in best else None
    summary = {
        "benchmark": "train_speed", "quick": a.quick, "model": a.model, "seq_len": a.seq_len, "batch": a.batch,
        "device": first["device"], "load_average": round(load, 2),
        **{f"{n.replace(' ', '_').replace('-', '_')}_tokens_per_s": round(best[n]["tokens_per_s"], 1) for n in names},
        **{f"{n.replace(' ', '_').replace('-', '_')}_peak_mib": round(best[n]["peak_bytes"] / 2**20, 1) for n in names},
    }  # fmt: skip
    if trl and editlm:
        summary["ratio_vs_trl"] = round(editlm / trl, 3)
    if editlm and "padded" in best:
        summary["ratio_vs_padded"] = round(editlm / best["padded"]["tokens_per_s"], 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
