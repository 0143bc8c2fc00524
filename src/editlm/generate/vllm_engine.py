"""The vLLM engine (GPU, the ``gpu`` extra). Written against vLLM's documented API and read, not run:
no GPU is available where editlm is tested, so the tests check only its refusal and its requests.

- Greedy with ``n > 1``: vLLM rejects it; one greedy request is made and copied ``n`` times.
- Seeds: one request per sample with its own seed derived from (seed, prompt, sample index), so a
  sample depends on nothing else; prefix caching computes a prompt once for its ``n`` requests.
- ``skip_special_tokens=False``: the default strips ``<|diff|>`` and LintSeq outputs lose their
  separators.
- ``logprobs_mode="raw_logprobs"`` (the engine default in recent vLLM) and ``logprobs=0``: the
  cumulative logprob is the raw model log-probability of the sampled tokens, as in every engine.
- Predictions: vLLM's n-gram speculative decoding (``speculative_config={"method": "ngram"}``)
  drafts from the prompt, which holds the prediction in the diff-model and rewrite prompts.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path

from editlm.generate.decoding import sample_key
from editlm.generate.engines import Completion, EngineUnavailable, SamplingParams


def vllm_options(
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    draft_tokens: int = 0,
) -> dict:
    """The ``vllm.LLM`` keyword arguments for these settings (pure, so it is tested without vLLM)."""
    options = dict(
        tensor_parallel_size=tensor_parallel_size,
        dtype=dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        enable_prefix_caching=True,
        logprobs_mode="raw_logprobs",
    )
    if max_model_len:
        options["max_model_len"] = max_model_len
    if draft_tokens:
        options["speculative_config"] = {
            "method": "ngram",
            "num_speculative_tokens": draft_tokens,
            "prompt_lookup_max": 4,
            "prompt_lookup_min": 1,
        }
    return options


def request_params(params: SamplingParams, prompt: str, index: int, end_ids: Sequence[int]) -> dict:
    """The ``vllm.SamplingParams`` keyword arguments of sample ``index`` of ``prompt``."""
    return dict(
        n=1,
        temperature=0.0 if params.greedy else params.temperature,
        top_p=1.0 if params.greedy else params.top_p,
        max_tokens=params.max_new_tokens,
        stop=list(params.stop) or None,
        stop_token_ids=list(end_ids) or None,
        seed=None if params.greedy else sample_key(params.seed, prompt, index) & 0x7FFFFFFF,
        logprobs=0,
        skip_special_tokens=False,
        spaces_between_special_tokens=False,
    )


class VLLMEngine:
    """Refuses with a clear message where vLLM or a GPU is missing."""

    name = "vllm"

    def __init__(
        self,
        model_dir: str | Path,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        draft_tokens: int = 0,
    ):
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
        options = vllm_options(
            tensor_parallel_size, dtype, max_model_len, gpu_memory_utilization, draft_tokens
        )
        try:
            self.llm = vllm.LLM(model=str(model_dir), **options)
        except TypeError as exc:  # a vLLM older than logprobs_mode
            if "logprobs_mode" not in str(exc):
                raise
            warnings.warn(
                "this vLLM has no logprobs_mode: its logprobs may be those of the temperature/top-p "
                "processed distribution, not the raw model logprobs the other engines report",
                RuntimeWarning,
                stacklevel=2,
            )
            options.pop("logprobs_mode")
            self.llm = vllm.LLM(model=str(model_dir), **options)
        self.end_ids = [self.llm.get_tokenizer().eos_token_id]
        self._vllm = vllm

    def sample(
        self,
        prompts: list[str],
        n: int,
        params: SamplingParams,
        predictions: Sequence[str | None] | None = None,
    ) -> list[list[Completion]]:
        copies = 1 if params.greedy else n
        jobs = [(i, k) for i in range(len(prompts)) for k in range(copies)]
        requests = [
            self._vllm.SamplingParams(**request_params(params, prompts[i], k, self.end_ids)) for i, k in jobs
        ]
        results = self.llm.generate([prompts[i] for i, _ in jobs], requests)
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), request in zip(jobs, results, strict=True):
            c = request.outputs[0]
            finish = "stop" if c.finish_reason == "stop" else "length"
            out[i].append(Completion(c.text, c.cumulative_logprob, len(c.token_ids), finish))
        if copies == 1:
            out = [[row[0]] + [copy.deepcopy(row[0]) for _ in range(n - 1)] for row in out]
        return out
