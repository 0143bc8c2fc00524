"""Sampling speed on CPU: (a) many samples of one prompt, (b) edits of real files with a prediction.

(a) The five 4-Parity diff prompts, 32 samples each, a Llama-shaped model of 10.6M parameters (vocabulary 8192)
(random weights: speed does not depend on them). editlm's engines (transformers with one prefill
per prompt and 32 rows decoded together; CTranslate2 int8) against transformers ``generate``
called once per sample and ``generate(num_return_sequences=32)``. The per-sample baseline is timed
on the first ``--per-sample`` samples of each prompt (its tokens/s does not depend on how many).

(b) Edits of real files: in each held-out standard-library module of 200-800 lines, one function
(5-12 lines) and a small change, renaming one of its names (``Rename X to Y``). The model sees the
function and the instruction and writes the function again (``REWRITE``: ``<NME> file / <BEF>
function / <MSG> message / <AFT>``); the prediction is the function as it was. editlm's
transformers engine with and without the prediction (greedy, and sampled t=0.2 with n=2), and
transformers ``generate`` plain and with its prompt-lookup decoding (``prompt_lookup_num_tokens=10``,
greedy): tokens/s (wall and CPU), the share of drafted tokens accepted, tokens per forward pass; the
outputs with and without the prediction are checked to be identical. A model that copies is needed,
so this part first trains one (``COPIER``: a 1M-parameter Llama-shaped model, editlm's tokenizer
and editlm's SFT on rename rewrites of the other stdlib modules' functions, 10 CPU minutes) and
caches it under ``$EDITLM_CACHE/sampling_speed/KEY``, KEY the hash of its settings; its copy
accuracy (teacher-forced, held-out modules) is printed.

    python benchmarks/sampling_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import hashlib
import io
import json
import keyword
import os
import random
import shutil
import sys
import sysconfig
import tempfile
import time
import tokenize
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
# The task: rename an identifier in one function of a real file. The model sees the function and the
# instruction and writes the function again (``REWRITE``); the prediction is the function as it is.

REPEATS = 3  # every path decodes the cases this many times (one pass is under a second here)
REWRITE = "<NME> {name}\n<BEF> {before}\n<MSG> {message}\n<AFT> "
NEW_NAMES = ("value", "item", "result", "data", "count", "node", "entry", "target", "total", "part")
# The copy model's settings are its cache key (change one and it is trained again): editlm's "tiny"
# shape (4 layers, 4 heads) and tokenizer size, rename rewrites of every function of 2-8 lines in the
# stdlib files (subpackages included) but the held-out top-level modules, 2 packed rows of 1,024
# tokens a step for up to 600 s, the loss on the rewrite only. Measured (held-out copy accuracy,
# teacher-forced, 600 s each): 2 layers and 2 heads, 8 rows of 256 a step (the previous settings)
# 47.1%; 2 rows of 256 52.5%; this shape with 2 rows of 256: 89.9% once (its accuracy jumped after
# ~6,000 steps; the old prompt tokenization), 60.5% and 56.7% (lr 3e-3) in two more runs, 53.9% with
# rows of 512; rows of 1,024 (several rewrites packed in each): 96.3%, the jump after ~1,000 steps, as
# the quickstart's. ``encoding`` names how SFT tokenizes a prompt (its own tokens first, as generation
# feeds them: see ``editlm.train.data``), so a model trained before that change is not reused.
COPIER = dict(
    vocab_size=1024, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, seq_len=1024,
    train_lines=(2, 8), steps=12000, max_time=600.0, batch_size=2, lr=2e-3, full_loss=False,
    held_out_every=10, encoding="prompt tokens alone",
)  # fmt: skip


def stdlib_modules() -> list[Path]:
    return sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))


def functions(text: str, min_lines: int, max_lines: int) -> list[str]:
    """The functions and methods of ``text`` (decorators included) of ``min_lines``-``max_lines`` lines."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines(keepends=True)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if min_lines <= node.end_lineno - first + 1 <= max_lines:
                found.append("".join(lines[first - 1 : node.end_lineno]))
    return found


def _name_tokens(source: str) -> list[tokenize.TokenInfo]:
    try:
        return [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME]
    except (tokenize.TokenError, SyntaxError):
        return []


def rename(source: str, old: str, new: str) -> str:
    """``source`` with the name ``old`` (as a token: not inside strings or comments) spelled ``new``."""
    lines = source.splitlines(keepends=True)
    for token in reversed([t for t in _name_tokens(source) if t.string == old]):
        row, col = token.start
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][col + len(old) :]
    return "".join(lines)


def rename_task(name: str, function: str, rng: random.Random) -> dict | None:
    """A small change: one name used at least twice in ``function`` (not a keyword, builtin or self)."""
    counts: dict[str, int] = {}
    for token in _name_tokens(function):
        word = token.string
        if len(word) > 1 and word != "self" and not keyword.iskeyword(word) and not hasattr(builtins, word):
            counts[word] = counts.get(word, 0) + 1
    names = [w for w, c in counts.items() if c >= 2]
    if not names:
        return None
    old = rng.choice(names)
    new = rng.choice([w for w in NEW_NAMES if w not in counts])
    return dict(
        name=name, before=function, message=f"Rename {old} to {new}", after=rename(function, old, new)
    )


def rename_tasks(paths: list[Path], lines: tuple[int, int], seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [t for path in paths for f in functions(path.read_text(encoding="utf-8", errors="replace"), *lines)
            if (t := rename_task(path.name, f, rng))]  # fmt: skip


def copier_dir(settings: dict) -> Path:
    from editlm.models.convert import cache_dir

    key = json.dumps({**settings, "python": sys.version.split()[0], "task": REWRITE}, sort_keys=True)
    return cache_dir() / "sampling_speed" / hashlib.sha256(key.encode()).hexdigest()[:16]


def copy_accuracy(model_dir: Path, tasks: list[dict], seq_len: int) -> dict:
    """Teacher-forced next-token accuracy on the rewrites of held-out functions: the share of the
    target's tokens that are the model's argmax given the prompt and the target so far."""
    import torch

    from editlm.models.loading import load_model, load_tokenizer

    tok, model = load_tokenizer(model_dir), load_model(model_dir).eval()
    right = total = copied_right = copied = 0
    with torch.inference_mode():
        for task in tasks:
            prompt = tok(REWRITE.format(**task), add_special_tokens=False)["input_ids"]
            target = tok(task["after"], add_special_tokens=False)["input_ids"]
            if len(prompt) + len(target) > seq_len:
                continue
            guess = model(torch.tensor([prompt + target])).logits[0, len(prompt) - 1 : -1].argmax(-1).tolist()
            before = set(tok(task["before"], add_special_tokens=False)["input_ids"])
            for g, t in zip(guess, target, strict=True):
                right, total = right + (g == t), total + 1
                if t in before:  # a token the function already has (mostly copies)
                    copied_right, copied = copied_right + (g == t), copied + 1
    return dict(
        accuracy=right / max(total, 1), tokens=total, samples=len(tasks),
        accuracy_on_copied=copied_right / max(copied, 1),
    )  # fmt: skip


def train_copier(settings: dict) -> tuple[Path, dict]:
    """The copy model: a small Llama-shaped model fine-tuned with editlm's training API on rename
    rewrites of functions from the standard library (files held out for the benchmark excluded).
    Cached under ``$EDITLM_CACHE/sampling_speed/KEY`` (KEY: the settings), so reruns load it."""
    from editlm.models.loading import load_model, load_tokenizer, save_checkpoint
    from editlm.models.presets import count_parameters, init_model
    from editlm.models.tokenizer import stdlib_files, stdlib_texts, train_tokenizer
    from editlm.train import SFTConfig, make_config, sft

    out = copier_dir(settings)
    report = out / "copier.json"
    if report.is_file():
        return out, json.loads(report.read_text())
    work = out.with_name(f".{out.name}-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = clock()
    modules = stdlib_modules()
    held = set(modules[:: settings["held_out_every"]])
    rows = rename_tasks([p for p in stdlib_files() if p not in held], settings["train_lines"], seed=3)
    with open(work / "train.jsonl", "w", encoding="utf-8") as fh:
        for task in rows:
            fh.write(json.dumps(dict(prompt=REWRITE.format(**task), completion=task["after"])) + "\n")
    train_tokenizer(stdlib_texts(limit=60), work / "tok", vocab_size=settings["vocab_size"])
    tok = load_tokenizer(work / "tok")
    shape = {k: settings[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads")}
    model = init_model("tiny", tok, seed=0, intermediate_size=3 * settings["hidden_size"],
                       max_position_embeddings=settings["seq_len"], **shape)  # fmt: skip
    init = save_checkpoint(model, tok, work / "init")
    config = make_config(SFTConfig, dict(
        model=str(init), data=str(work / "train.jsonl"), output_dir=str(work / "model"),
        seq_len=settings["seq_len"], batch_size=settings["batch_size"], lr=settings["lr"], warmup_steps=10,
        max_steps=settings["steps"], max_time=settings["max_time"], full_loss=settings["full_loss"],
        weight_decay=0.0, save_steps=10**6, logging_steps=20, progress=False, tensorboard=False, resume=False,
    ))  # fmt: skip
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine one thread trains faster than two that spin
    try:
        sft(config)
    finally:
        torch.set_num_threads(threads)
    wall, cpu = since(start)
    trained = json.loads((work / "model" / "editlm_train.json").read_text())
    held_tasks = rename_tasks(sorted(held), settings["train_lines"], seed=1)[:60]
    info = dict(
        parameters=count_parameters(load_model(work / "model")), train_rows=len(rows), train_wall=wall,
        train_cpu=cpu,
        steps=json.loads((work / "model" / "metrics.jsonl").read_text().splitlines()[-1])["step"],
        train_loss=trained["metrics"].get("train_loss"), **copy_accuracy(work / "model", held_tasks, settings["seq_len"]),
    )  # fmt: skip
    (work / "model" / "copier.json").write_text(json.dumps(info, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(work / "model", out)
    shutil.rmtree(work, ignore_errors=True)
    return out, info


def hf_lookup(model_dir: Path, cases: list[dict], params: SamplingParams, lookup: int | None) -> dict:
    """transformers ``generate``, plain or with its prompt-lookup decoding (``prompt_lookup_num_tokens``)."""
    import torch
    from transformers import set_seed

    from editlm.models.loading import load_model, load_tokenizer
    from editlm.models.tokens import prompt_batch

    tok, model = load_tokenizer(model_dir), load_model(model_dir).eval()
    sampling = dict(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
    kwargs = dict(pad_token_id=tok.pad_token_id, **(sampling if not params.greedy else dict(do_sample=False)))
    if lookup:
        kwargs["prompt_lookup_num_tokens"] = lookup
    tokens, start, texts = 0, clock(), []
    with torch.inference_mode():
        for case in cases * REPEATS:
            set_seed(0)
            enc = prompt_batch(tok, [case["prompt"]])
            seq = model.generate(**enc, max_new_tokens=case["max_new_tokens"], **kwargs)
            new = seq[0, enc["input_ids"].shape[1] :].tolist()
            new = new[: new.index(tok.eos_token_id) + 1] if tok.eos_token_id in new else new
            tokens += len(new)
            texts.append(tok.decode(new, skip_special_tokens=True))
    wall, cpu = since(start)
    return dict(tokens=tokens, wall=wall, cpu=cpu, texts=texts[: len(cases)])


def edits(model_dir: Path, cases: list[dict]) -> dict:
    """Each setting: editlm plain and with the prediction, transformers plain and with prompt lookup.
    One torch thread for every path: a model this small gains nothing from two, and on a loaded
    machine two threads that spin make each forward pass up to tens of times slower."""
    import torch

    torch.set_num_threads(1)
    engine = load_engine("transformers", model_dir)
    engine.sample([cases[0]["prompt"]], 1, SamplingParams(max_new_tokens=4))  # warm-up
    out = {}
    for label, params, n in (
        ("greedy", SamplingParams(temperature=0), 1),
        ("t=0.2 n=2", SamplingParams(temperature=0.2, top_p=0.95), 2),
    ):
        rows, texts = {}, {}
        # "own output": the prediction is the plain decoder's first sample itself, what a model that
        # copies perfectly would accept: the ceiling of the verification path on this model and CPU
        for mode in ("plain", "prediction", "own output"):
            engine.stats.update(drafted=0, accepted=0, forward=0)
            tokens, start, got = 0, clock(), []
            for i, case in list(enumerate(cases)) * REPEATS:
                own = mode == "own output"
                predictions = [texts["plain"][i][0] if own else case["before"]] if mode != "plain" else None
                each = dataclasses.replace(params, max_new_tokens=case["max_new_tokens"])
                samples = engine.sample([case["prompt"]], n, each, predictions=predictions)[0]
                tokens += sum(c.tokens for c in samples)
                got.append([c.text for c in samples])
            wall, cpu = since(start)
            texts[mode] = got[: len(cases)]
            rows[f"editlm {mode}"] = dict(tokens=tokens, wall=wall, cpu=cpu, **engine.stats)
        rows["identical"] = texts["plain"] == texts["prediction"] == texts["own output"]
        rows["exact"] = sum(t == case["after"] for got, case in zip(texts["plain"], cases, strict=True)
                            for t in got[:1])  # fmt: skip
        if n == 1:  # transformers generate: one sample per prompt
            rows["hf generate"] = hf_lookup(model_dir, cases, params, None)
            rows["hf prompt lookup"] = hf_lookup(model_dir, cases, params, 10)
            if params.greedy:
                rows["hf_identical"] = rows["hf generate"].pop("texts") == rows["hf prompt lookup"].pop(
                    "texts"
                )
            for key in ("hf generate", "hf prompt lookup"):
                rows[key].pop("texts", None)
        out[label] = rows
    return out


def edit_cases(quick: bool, settings: dict) -> list[dict]:
    """One rename per held-out stdlib module of 200-800 lines, in a function that fits the model."""
    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(copier_dir(settings))
    held = stdlib_modules()[:: settings["held_out_every"]]
    files = [
        p for p in held if 200 <= len(p.read_text(encoding="utf-8", errors="replace").splitlines()) <= 800
    ]
    cases = []
    for task in rename_tasks(files, (5, settings["train_lines"][1] + 4), seed=2):
        prompt = REWRITE.format(**task)
        size = len(tok(prompt)["input_ids"]) + len(tok(task["after"])["input_ids"])
        if size + 8 <= settings["seq_len"] and all(c["name"] != task["name"] for c in cases):
            # room for twice the rewrite (a model that does not stop writes on to this limit)
            room = min(
                2 * len(tok(task["after"])["input_ids"]) + 16,
                settings["seq_len"] - len(tok(prompt)["input_ids"]),
            )
            cases.append({**task, "prompt": prompt, "max_new_tokens": room})
    return cases[: 6 if quick else 12]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def part_a(quick: bool, per_sample: int) -> tuple[dict, dict]:
    from editlm.evaluate.benchmarks import get_benchmark
    from editlm.models.tokenizer import stdlib_texts, train_tokenizer

    new_tokens = 32 if quick else 64
    bench = get_benchmark("parity")
    prompts = [bench.prompt(p, "diff") for p in bench.problems().values()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_tokenizer(stdlib_texts(limit=60), tmp / "tok", vocab_size=8192)
        big = build_model(tmp / "m14", tmp / "tok", hidden_size=320, intermediate_size=960)
        params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=new_tokens, seed=0)
        before = load()
        a = {**hf_generate(big, prompts, 32, per_sample, params), **editlm_paths(big, prompts, 32, params)}
    print(f"\n(a) 4-Parity diff prompts x 32 samples, {new_tokens} new tokens, the model above, CPU")
    print(f"    load average before {before}, after {load()}")
    print(f"{'path':<28}{'tokens':>8}{'wall s':>9}{'cpu s':>9}{'tok/s':>9}{'tok/cpu s':>11}")
    for label, r in a.items():
        print(
            f"{label:<28}{r['tokens']:>8}{r['wall']:>9.1f}{r['cpu']:>9.1f}{rate(r):>9.0f}{cpu_rate(r):>11.0f}"
        )
    fastest = max(("editlm transformers", "editlm ctranslate2 int8"), key=lambda k: rate(a[k]))
    summary = {
        "a_fastest": fastest,
        "a_vs_per_sample": round(rate(a[fastest]) / rate(a["hf generate per sample"]), 2),
        "a_vs_num_return_sequences": round(rate(a[fastest]) / rate(a["hf num_return_sequences"]), 2),
        "a_tok_s": {k: round(rate(r)) for k, r in a.items()},
        "a_tok_per_cpu_s": {k: round(cpu_rate(r)) for k, r in a.items()},
        "a_load": before,
    }
    return a, summary


def part_b(quick: bool, steps: int | None = None) -> dict:
    settings = dict(COPIER)
    if steps is not None:  # a smoke test of this part: a model that has not learnt to copy
        settings.update(steps=steps, max_time=0.0)
    model_dir, info = train_copier(settings)
    print(
        f"\ncopy model {model_dir}: {info['parameters'] / 1e6:.2f}M parameters, {info['steps']} steps on "
        f"{info['train_rows']} rename rewrites ({info['train_cpu']:.0f} CPU s to build); copy accuracy "
        f"(teacher-forced, held-out modules) {info['accuracy']:.1%} of {info['tokens']} target tokens"
    )
    cases = edit_cases(quick, settings)
    before = load()
    b = edits(model_dir, cases)
    print(f"\n(b) rename one function of {len(cases)} held-out stdlib modules of 200-800 lines; the model")
    print(
        f"    rewrites the function; prediction = the function before. load average before {before}, after {load()}"
    )
    print(f"{'sampling':<12}{'path':<20}{'tokens':>8}{'wall s':>9}{'cpu s':>8}{'tok/s':>8}{'tok/cpu s':>10}"
          f"{'accepted':>10}{'per pass':>9}")  # fmt: skip
    for label, rows in b.items():
        for path, r in rows.items():
            if not isinstance(r, dict):
                continue
            share = f"{r['accepted'] / r['drafted']:.0%}" if r.get("drafted") else "-"
            per_pass = f"{r['tokens'] / r['forward']:.1f}" if r.get("forward") else "-"
            print(f"{label:<12}{path:<20}{r['tokens']:>8}{r['wall']:>9.1f}{r['cpu']:>8.1f}{rate(r):>8.0f}"
                  f"{cpu_rate(r):>10.0f}{share:>10}{per_pass:>9}")  # fmt: skip
        print(f"{'':<12}outputs identical with and without a prediction: {rows['identical']}; "
              f"first sample = the intended rewrite in {rows['exact']}/{len(cases)}")  # fmt: skip
    speed = lambda rows, a, b: round(rate(rows[a]) / rate(rows[b]), 2)  # noqa: E731
    return {
        "b_copy_accuracy": round(info["accuracy"], 3),
        "b_speedup": {k: speed(r, "editlm prediction", "editlm plain") for k, r in b.items()},
        "b_speedup_own_output": {k: speed(r, "editlm own output", "editlm plain") for k, r in b.items()},
        "b_speedup_cpu": {
            k: round(cpu_rate(r["editlm prediction"]) / cpu_rate(r["editlm plain"]), 2) for k, r in b.items()
        },
        "b_hf_prompt_lookup_speedup": speed(b["greedy"], "hf prompt lookup", "hf generate"),
        "b_vs_hf_prompt_lookup": speed(b["greedy"], "editlm prediction", "hf prompt lookup"),
        "b_acceptance": {
            k: round(r["editlm prediction"]["accepted"] / max(r["editlm prediction"]["drafted"], 1), 3)
            for k, r in b.items()
        },
        "b_identical": all(r["identical"] for r in b.values()),
        "b_load": before,
    }


def rate(r: dict) -> float:
    return r["tokens"] / r["wall"]


def cpu_rate(r: dict) -> float:
    return r["tokens"] / max(r["cpu"], 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument(
        "--per-sample", type=int, default=None, help="Samples per prompt timed for the baseline."
    )
    parser.add_argument(
        "--copier-steps", type=int, default=None, help="Train the copy model this many steps."
    )
    args = parser.parse_args()
    summary: dict = {"benchmark": "sampling_speed", "quick": args.quick}
    if args.part in ("a", "both"):
        summary.update(part_a(args.quick, args.per_sample or (2 if args.quick else 6))[1])
    if args.part in ("b", "both"):
        summary.update(part_b(args.quick, args.copier_steps))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
