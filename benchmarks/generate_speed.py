"""Sampling speed on CPU: editlm's engines (CTranslate2 int8, its transformers loop) against
transformers ``generate`` (the peer, called directly with left-padded batches).

A Llama-shaped model of about 14M parameters (REFERENCE.md section 3 quotes HF 63 / 257 tok/s and
CTranslate2 int8 104 / 445 tok/s at batch 1 / 16 on a 2-core CPU), randomly initialised: speed does
not depend on the weights. Both engines generate the same number of new tokens per prompt.

    python benchmarks/generate_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from editlm.generate.engines import SamplingParams, load_engine


def build_model(out: Path) -> Path:
    from editlm.models.loading import save_checkpoint
    from editlm.models.presets import count_parameters, init_model
    from editlm.models.tokenizer import stdlib_texts, train_tokenizer

    tokenizer = train_tokenizer(stdlib_texts(limit=60), out / "tok", vocab_size=8192)
    model = init_model("small", tokenizer, seed=0, hidden_size=320, intermediate_size=960)
    save_checkpoint(model, tokenizer, out / "model")
    print(f"model: {count_parameters(model) / 1e6:.1f}M parameters")
    return out / "model"


class HFGenerate:
    """transformers ``generate`` as it is, batched with left padding: the peer."""

    name = "hf generate"

    def __init__(self, model_dir: Path):
        from editlm.models.loading import load_model, load_tokenizer

        self.tokenizer = load_tokenizer(model_dir)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model_dir).eval()

    def sample(self, prompts, n, params):
        import torch

        from editlm.generate.engines import Completion

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            seqs = self.model.generate(
                **enc, do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0,
                max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
            )  # fmt: skip
        eos = self.tokenizer.eos_token_id
        out = []
        for row in seqs[:, enc["input_ids"].shape[1] :].tolist():
            out.append([Completion("", None, row.index(eos) + 1 if eos in row else len(row))])
        return out


def tokens_per_second(engine, batch: int, new_tokens: int, repeats: int) -> float:
    prompts = [f"def function_{i}(x, y):\n    " for i in range(batch)]
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=new_tokens)
    engine.sample(prompts[:1], 1, SamplingParams(max_new_tokens=4))  # warm-up
    total, start = 0, time.perf_counter()
    for r in range(repeats):
        params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=new_tokens, seed=r)
        total += sum(c.tokens for cs in engine.sample(prompts, 1, params) for c in cs)
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    new_tokens, repeats = (32, 1) if args.quick else (128, 3)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp))
        engines = {
            "hf generate": HFGenerate(model),
            "editlm transformers": load_engine("transformers", model, batch_size=16),
            "ctranslate2-int8": load_engine("ctranslate2", model, compute_type="int8"),
        }
        results = {
            (name, batch): tokens_per_second(engine, batch, new_tokens, repeats)
            for name, engine in engines.items()
            for batch in (1, 16)
        }
    print(f"\n{'engine':<20}{'batch 1 tok/s':>15}{'batch 16 tok/s':>16}")
    for name in engines:
        print(f"{name:<20}{results[name, 1]:>15.0f}{results[name, 16]:>16.0f}")
    summary = {
        "benchmark": "generate_speed",
        "new_tokens": new_tokens,
        "ratio_batch1": round(results["ctranslate2-int8", 1] / results["hf generate", 1], 2),
        "ratio_batch16": round(results["ctranslate2-int8", 16] / results["hf generate", 16], 2),
        "editlm_transformers_vs_hf_batch1": round(
            results["editlm transformers", 1] / results["hf generate", 1], 2
        ),
        "editlm_transformers_vs_hf_batch16": round(
            results["editlm transformers", 16] / results["hf generate", 16], 2
        ),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
