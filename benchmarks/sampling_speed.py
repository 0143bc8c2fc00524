"""Sampling speed on CPU: (a) many samples of one prompt, (b) edits of real files with a prediction.

(a) The five 4-Parity diff prompts, 32 samples each, a Llama-shaped model of 10.6M parameters (vocabulary 8192)
(random weights: speed does not depend on them). editlm's engines (transformers with one prefill
per prompt and 32 rows decoded together; CTranslate2 int8) against transformers ``generate``
called once per sample and ``generate(num_return_sequences=32)``. The per-sample baseline is timed
on the first ``--per-sample`` samples of each prompt (its tokens/s does not depend on how many).

(b) Real files (functions of 30-80 lines from the Python standard library), the model asked to
rewrite the function with a small change: ``<NME> file\\n<BEF> {function}\\n<MSG> {message}\\n<DFF>``,
where the output copies the function. The same engine with and without the prediction (the
function), greedy and sampled; tokens/s and the share of drafted tokens accepted. The outputs are
checked to be identical. A model that only ever saw random weights copies nothing, so this part
first trains a small model (about 3M parameters) to copy for ``--train-steps`` steps; its
acceptance is that of a model that copies well, an upper bound for a diff model's changed lines.

    python benchmarks/sampling_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sysconfig
import tempfile
import time
from pathlib import Path

from editlm.generate.engines import SamplingParams, load_engine


def clock():
    return time.perf_counter(), time.process_time()


def since(start) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def build_model(out: Path, tokenizer_dir: Path, **shape) -> Path:
    from editlm.models.loading import load_tokenizer, save_checkpoint
    from editlm.models.presets import count_parameters, init_model

    tokenizer = load_tokenizer(tokenizer_dir)
    model = init_model("small", tokenizer, seed=0, **shape)
    save_checkpoint(model, tokenizer, out)
    print(f"model {out.name}: {count_parameters(model) / 1e6:.1f}M parameters")
    return out


# ---------------------------------------------------------------------------------- (a) many samples


def hf_generate(model_dir: Path, prompts: list[str], n: int, per_sample: int, params: SamplingParams) -> dict:
    import torch

    from editlm.models.loading import load_model, load_tokenizer

    tok, model = load_tokenizer(model_dir), load_model(model_dir).eval()
    eos = tok.eos_token_id
    kwargs = dict(
        do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
        max_new_tokens=params.max_new_tokens, pad_token_id=tok.pad_token_id,
    )  # fmt: skip

    def new_tokens(seq, width):
        ids = seq[width:].tolist()
        return ids.index(eos) + 1 if eos in ids else len(ids)

    out = {}
    with torch.inference_mode():
        for label, batch, repeats in (
            ("hf generate per sample", 1, per_sample),
            ("hf num_return_sequences", n, 1),
        ):
            tokens, start = 0, clock()
            for prompt in prompts:
                enc = tok(prompt, return_tensors="pt")
                for _ in range(repeats):
                    seqs = model.generate(**enc, num_return_sequences=batch, **kwargs)
                    tokens += sum(new_tokens(s, enc["input_ids"].shape[1]) for s in seqs)
            wall, cpu = since(start)
            out[label] = dict(tokens=tokens, wall=wall, cpu=cpu)
    return out


def editlm_paths(model_dir: Path, prompts: list[str], n: int, params: SamplingParams) -> dict:
    out = {}
    for label, name, options in (
        ("editlm transformers", "transformers", dict(batch_size=n)),
        ("editlm ctranslate2 int8", "ctranslate2", dict(compute_type="int8", batch_size=n)),
    ):
        engine = load_engine(name, model_dir, **options)
        engine.sample(prompts[:1], 2, SamplingParams(max_new_tokens=4))  # warm-up (and conversion)
        start = clock()
        samples = engine.sample(prompts, n, params)
        wall, cpu = since(start)
        out[label] = dict(tokens=sum(c.tokens for cs in samples for c in cs), wall=wall, cpu=cpu)
    return out


# --------------------------------------------------------------------------------- (b) real-file edits


def stdlib_functions(limit: int, min_lines: int = 30, max_lines: int = 80) -> list[tuple[str, str]]:
    """(file name, function source) for top-level functions and methods of stdlib modules."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.end_lineno and node.col_offset == 0:
                size = node.end_lineno - node.lineno + 1
                if min_lines <= size <= max_lines:
                    found.append((path.name, "".join(lines[node.lineno - 1 : node.end_lineno])))
                    break
    return found[:limit]


def copy_text(name: str, function: str) -> tuple[str, str]:
    """The rewrite prompt and its target: the function with its first ``return`` made explicit."""
    changed = function.replace("    return ", "    result = ", 1)
    return f"<NME> {name}\n<BEF> {function}\n<MSG> Rewrite {name}\n<DFF> ", changed


def train_copier(model_dir: Path, steps: int, seq: int = 256) -> None:
    """Teach the model to copy: functions of the standard library, each as prompt + rewrite."""
    import torch

    from editlm.models.loading import load_model, load_tokenizer, save_checkpoint

    tok, model = load_tokenizer(model_dir), load_model(model_dir)
    model.train()
    texts = [p + t for p, t in (copy_text(n, f) for n, f in stdlib_functions(400, 8, 40))]
    rows = [ids[:seq] for ids in (tok(t)["input_ids"] for t in texts) if len(ids) >= 64]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    rng = random.Random(0)
    start = clock()
    for step in range(steps):
        batch = rng.sample(rows, 8)
        width = max(len(r) for r in batch)
        ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in batch])
        labels = ids.masked_fill(ids == tok.pad_token_id, -100)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        for group in opt.param_groups:
            group["lr"] = 3e-3 * (1 - step / steps)
        if step % 100 == 0 or step == steps - 1:
            print(f"  copy training step {step}: loss {loss.item():.3f}")
    print(f"  trained {steps} steps in {since(start)[0]:.0f} s")
    save_checkpoint(model.eval(), tok, model_dir)


def edits(model_dir: Path, files: int, max_new_tokens: int) -> dict:
    engine = load_engine("transformers", model_dir)
    cases = [(copy_text(n, f), f) for n, f in stdlib_functions(files)]
    out = {}
    for label, params, n in (
        ("greedy", SamplingParams(temperature=0, max_new_tokens=max_new_tokens), 1),
        ("sampled t=0.2, n=2", SamplingParams(temperature=0.2, top_p=0.95, max_new_tokens=max_new_tokens), 2),
    ):
        rows = {}
        texts = {}
        for mode in ("plain", "prediction"):
            engine.stats.update(drafted=0, accepted=0)
            tokens, start = 0, clock()
            got = []
            for (prompt, _), function in cases:
                predictions = [function] if mode == "prediction" else None
                samples = engine.sample([prompt], n, params, predictions=predictions)[0]
                tokens += sum(c.tokens for c in samples)
                got.append([c.text for c in samples])
            wall, cpu = since(start)
            texts[mode] = got
            rows[mode] = dict(tokens=tokens, wall=wall, cpu=cpu, **engine.stats)
        rows["identical"] = texts["plain"] == texts["prediction"]
        out[label] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--per-sample", type=int, default=None, help="Samples per prompt timed for the baseline."
    )
    parser.add_argument("--train-steps", type=int, default=None)
    args = parser.parse_args()
    new_tokens = 32 if args.quick else 64
    per_sample = args.per_sample or (2 if args.quick else 6)
    steps = args.train_steps or (200 if args.quick else 600)
    from editlm.evaluate.benchmarks import get_benchmark
    from editlm.models.tokenizer import stdlib_texts, train_tokenizer

    bench = get_benchmark("parity")
    prompts = [bench.prompt(p, "diff") for p in bench.problems().values()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_tokenizer(stdlib_texts(limit=60), tmp / "tok", vocab_size=8192)
        big = build_model(tmp / "m14", tmp / "tok", hidden_size=320, intermediate_size=960)
        params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=new_tokens, seed=0)
        a = {**hf_generate(big, prompts, 32, per_sample, params), **editlm_paths(big, prompts, 32, params)}
        rate = lambda r: r["tokens"] / r["wall"]  # noqa: E731
        print(f"\n(a) 4-Parity diff prompts x 32 samples, {new_tokens} new tokens, the model above, CPU")
        print(f"{'path':<28}{'tokens':>8}{'wall s':>9}{'cpu s':>9}{'tok/s':>9}")
        for label, r in a.items():
            print(f"{label:<28}{r['tokens']:>8}{r['wall']:>9.1f}{r['cpu']:>9.1f}{rate(r):>9.0f}")
        copier = build_model(tmp / "copier", tmp / "tok", hidden_size=192, intermediate_size=576,
                             num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=1024)  # fmt: skip
        train_copier(copier, steps)
        b = edits(copier, 4 if args.quick else 10, 128 if args.quick else 256)

    fastest = max(("editlm transformers", "editlm ctranslate2 int8"), key=lambda k: rate(a[k]))
    print(
        f"\n(b) rewrites of {4 if args.quick else 10} stdlib functions (30-80 lines), copy-trained 3M model"
    )
    print(f"{'sampling':<22}{'mode':<12}{'tokens':>8}{'wall s':>9}{'tok/s':>9}{'accepted':>10}")
    for label, rows in b.items():
        for mode in ("plain", "prediction"):
            r = rows[mode]
            share = f"{r['accepted'] / r['drafted']:.0%}" if r["drafted"] else "-"
            print(f"{label:<22}{mode:<12}{r['tokens']:>8}{r['wall']:>9.1f}{rate(r):>9.0f}{share:>10}")
        print(f"{'':<22}outputs identical with and without the prediction: {rows['identical']}")
    summary = {
        "benchmark": "sampling_speed",
        "quick": args.quick,
        "a_fastest": fastest,
        "a_vs_per_sample": round(rate(a[fastest]) / rate(a["hf generate per sample"]), 2),
        "a_vs_num_return_sequences": round(rate(a[fastest]) / rate(a["hf num_return_sequences"]), 2),
        "a_tok_s": {k: round(rate(r)) for k, r in a.items()},
        "b_speedup": {k: round(rate(r["prediction"]) / rate(r["plain"]), 2) for k, r in b.items()},
        "b_acceptance": {
            k: round(r["prediction"]["accepted"] / max(r["prediction"]["drafted"], 1), 3)
            for k, r in b.items()
        },
        "b_identical": all(r["identical"] for r in b.values()),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
