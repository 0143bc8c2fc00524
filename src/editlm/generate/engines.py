"""Sampling engines behind one interface: transformers (any device), CTranslate2 (fast CPU), vLLM (GPU).

Every engine answers ``sample(prompts, n, params) -> list[list[Completion]]``: ``n`` completions per
prompt, already cut at the stop sequences, with their summed log-probability where the engine gives
it (MBR-exec breaks ties with it). Seeds make sampling repeatable per engine and device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class EngineUnavailable(RuntimeError):
    """The engine's package or hardware is missing; the message says what to install or use instead."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Completion:
    text: str
    logprob: float | None = None
    tokens: int = 0
    finish: str = "length"  # "stop" (a stop sequence or end token) or "length"
    extra: dict = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def sample(self, prompts: list[str], n: int, params: SamplingParams) -> list[list[Completion]]: ...


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to the earliest stop sequence, and whether one was found."""
    cut = min((at for at in (text.find(s) for s in stop if s) if at != -1), default=-1)
    return (text, False) if cut == -1 else (text[:cut], True)


class TransformersEngine:
    """``model.generate`` in batches with left padding; works on CPU and GPU for any causal LM."""

    name = "transformers"

    def __init__(self, model_dir: str | Path, device: str | None = None, batch_size: int = 16):
        import torch

        from editlm.models.loading import load_model, load_tokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(model_dir)
        self.tokenizer.padding_side = "left"
        self.model = load_model(model_dir, device=self.device).eval()
        self.batch_size = batch_size

    def sample(self, prompts: list[str], n: int, params: SamplingParams) -> list[list[Completion]]:
        import torch

        from editlm.models.tokens import prompt_batch  # the BOS rule training uses

        jobs = [(i, prompt) for i, prompt in enumerate(prompts) for _ in range(n)]
        out: list[list[Completion]] = [[] for _ in prompts]
        torch.manual_seed(params.seed)
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start : start + self.batch_size]
            enc = prompt_batch(self.tokenizer, [p for _, p in batch]).to(self.device)
            kwargs = dict(max_new_tokens=params.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
            if params.greedy:
                kwargs.update(do_sample=False)
            else:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
            with torch.no_grad():
                gen = self.model.generate(**enc, **kwargs, output_scores=True, return_dict_in_generate=True)
            new = gen.sequences[:, enc["input_ids"].shape[1] :]
            scores = self.model.compute_transition_scores(gen.sequences, gen.scores, normalize_logits=True)
            for row, (index, _) in enumerate(batch):
                ids = new[row].tolist()
                eos = self.tokenizer.eos_token_id
                ended = eos in ids
                length = ids.index(eos) if ended else len(ids)
                text = self.tokenizer.decode(ids[:length], skip_special_tokens=False)
                text, stopped = cut_at_stop(text, params.stop)
                logprob = float(scores[row, :length].clamp(min=-1e4).sum())
                finish = "stop" if ended or stopped else "length"
                out[index].append(Completion(text, logprob, length, finish))
        return out


class CTranslate2Engine:
    """CTranslate2 generator (int8 on CPU by default): converts the checkpoint once, beside it."""

    name = "ctranslate2"

    def __init__(self, model_dir: str | Path, device: str = "cpu", compute_type: str = "int8"):
        try:
            import ctranslate2
        except ImportError as exc:  # pragma: no cover - ctranslate2 is a core dependency
            raise EngineUnavailable("ctranslate2 is not installed: pip install ctranslate2") from exc
        from editlm.models.loading import load_tokenizer

        self.tokenizer = load_tokenizer(model_dir)
        converted = convert_to_ctranslate2(model_dir, quantization=compute_type)
        self.generator = ctranslate2.Generator(str(converted), device=device, compute_type=compute_type)
        self._ct2 = ctranslate2

    def sample(self, prompts: list[str], n: int, params: SamplingParams) -> list[list[Completion]]:
        from editlm.models.tokens import encode_prompts  # the BOS rule training uses

        self._ct2.set_random_seed(params.seed)
        tokens = [
            self.tokenizer.convert_ids_to_tokens(ids) for ids in encode_prompts(self.tokenizer, prompts)
        ]
        batch = [t for t in tokens for _ in range(n)]
        results = self.generator.generate_batch(
            batch,
            max_length=params.max_new_tokens,
            sampling_topk=1 if params.greedy else 0,
            sampling_topp=1.0 if params.greedy else params.top_p,
            sampling_temperature=1.0 if params.greedy else params.temperature,
            include_prompt_in_result=False,
            return_scores=True,
        )
        out: list[list[Completion]] = [[] for _ in prompts]
        for k, result in enumerate(results):
            ids = result.sequences_ids[0]
            eos = self.tokenizer.eos_token_id
            ended = eos in ids
            ids = ids[: ids.index(eos)] if ended else ids
            text, stopped = cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=False), params.stop)
            # CTranslate2's score is the cumulative log-probability when length_penalty is 0; by default
            # it is normalised by length, so it is scaled back here.
            logprob = float(result.scores[0]) * max(len(ids), 1) if result.scores else None
            out[k // n].append(Completion(text, logprob, len(ids), "stop" if ended or stopped else "length"))
        return out


def convert_to_ctranslate2(model_dir: str | Path, quantization: str = "int8") -> Path:
    """Convert a transformers checkpoint for CTranslate2 once; reuses ``MODEL/ctranslate2-QUANT``."""
    import ctranslate2

    target = Path(model_dir) / f"ctranslate2-{quantization}"
    if (target / "model.bin").exists():
        return target
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    converter = ctranslate2.converters.TransformersConverter(str(model_dir), load_as_float16=False)
    converter.convert(str(tmp), quantization=quantization, force=True)
    os.replace(tmp, target)
    return target


class VLLMEngine:
    """vLLM on a GPU: the `gpu` extra. Refuses with a clear message where vLLM or a GPU is missing."""

    name = "vllm"

    def __init__(self, model_dir: str | Path, **kwargs):
        try:
            import vllm
        except ImportError as exc:
            raise EngineUnavailable(
                "vLLM is not installed (pip install 'editlm[gpu]' on a machine with an NVIDIA GPU); "
                "use --engine transformers or --engine ctranslate2 on CPU"
            ) from exc
        import torch

        if not torch.cuda.is_available():
            raise EngineUnavailable(
                "vLLM needs a CUDA GPU and none is visible; use --engine ctranslate2 on CPU"
            )
        self.llm = vllm.LLM(model=str(model_dir), **kwargs)
        self._vllm = vllm

    def sample(self, prompts: list[str], n: int, params: SamplingParams) -> list[list[Completion]]:
        sampling = self._vllm.SamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=1.0 if params.greedy else params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            logprobs=0,
        )
        out = []
        for request in self.llm.generate(prompts, sampling):
            out.append(
                [
                    Completion(c.text, c.cumulative_logprob, len(c.token_ids), c.finish_reason or "length")
                    for c in request.outputs
                ]
            )
        return out


ENGINES = {"transformers": TransformersEngine, "ctranslate2": CTranslate2Engine, "vllm": VLLMEngine}


def load_engine(name: str, model_dir: str | Path, **kwargs) -> Engine:
    """The engine called ``name`` for the local checkpoint ``model_dir``."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}")
    return ENGINES[name](model_dir, **kwargs)
