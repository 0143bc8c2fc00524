"""Sampling engines behind one interface: transformers (any device), CTranslate2 (fast CPU), vLLM (GPU).

Every engine answers ``sample(prompts, n, params, predictions=None) -> list[list[Completion]]``:
``n`` completions per prompt. What ``text``, ``tokens``, ``logprob`` (the raw model log-probability,
the same on every engine) and ``finish`` mean is defined once in :mod:`editlm.generate.decoding`.
Stop sequences end decoding (they are not only cut from the text). ``predictions`` (one text or
None per prompt: what the output is expected to copy, e.g. the file before) lets an engine decode
speculatively; the output is the same as without it.

Seeds: in the transformers engine a sample depends only on (prompt, sample index, seed); in
CTranslate2 on (prompt, seed, n and the other settings), see its class.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class EngineUnavailable(RuntimeError):
    """The engine's package, hardware or model family is missing; the message says what to use instead."""


class PromptTooLong(ValueError):
    """The prompt and ``max_new_tokens`` do not fit in the model's context."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))

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

    def sample(
        self, prompts: list[str], n: int, params: SamplingParams, predictions: list[str | None] | None = None
    ) -> list[list[Completion]]: ...


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to the earliest stop sequence, and whether one was found."""
    cut = min((at for at in (text.find(s) for s in stop if s) if at != -1), default=-1)
    return (text, False) if cut == -1 else (text[:cut], True)


def _engine_class(name: str):
    if name == "transformers":
        from editlm.generate.transformers_engine import TransformersEngine

        return TransformersEngine
    if name == "ctranslate2":
        from editlm.generate.ctranslate2_engine import CTranslate2Engine

        return CTranslate2Engine
    if name == "vllm":
        from editlm.generate.vllm_engine import VLLMEngine

        return VLLMEngine
    raise ValueError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}")


ENGINES = ("transformers", "ctranslate2", "vllm")


def __getattr__(name: str):  # the engine classes, imported on first use
    classes = {"TransformersEngine": "transformers", "CTranslate2Engine": "ctranslate2", "VLLMEngine": "vllm"}
    if name in classes:
        return _engine_class(classes[name])
    raise AttributeError(name)


def load_engine(name: str, model_dir: str | Path, *, fallback: bool = True, **options) -> Engine:
    """The engine called ``name`` for the local checkpoint ``model_dir``. ``options`` that the
    engine does not take (say ``compute_type`` for transformers) are ignored, so one set of CLI
    options serves every engine. Where CTranslate2 cannot convert the model's family, ``fallback``
    loads the transformers engine instead, with a warning."""
    cls = _engine_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    try:
        return cls(model_dir, **kwargs)
    except EngineUnavailable as exc:
        if not (fallback and name == "ctranslate2" and getattr(exc, "family", None)):
            raise
        warnings.warn(f"{exc}; falling back to the transformers engine", RuntimeWarning, stacklevel=2)
        return load_engine("transformers", model_dir, fallback=False, **options)
