"""The CTranslate2 engine: int8 (or float32) CPU inference of a converted checkpoint.

- The conversion is cached outside the model directory, keyed by the hash of the weights
  (:func:`editlm.models.convert.ctranslate2_model`): retraining into the same directory converts
  again, and read-only checkpoints work.
- Finish reasons and logprobs come from the end token itself (``return_end_token``) and from the
  per-token raw log-probabilities CTranslate2 reports to the step callback; stop sequences end
  decoding in that callback.
- Seeds: CTranslate2 seeds a thread-local generator once per worker thread
  (``ctranslate2::get_random_generator``), so ``set_random_seed`` only affects the first call of
  a process. Sampling therefore runs each prompt on a fresh generator seeded from (seed, prompt):
  a prompt's samples do not depend on the other prompts, batches or resumes; they do depend on
  ``n`` and the sampling settings (the n rows share one random stream). Greedy decoding reuses
  one generator.
- Predictions are accepted and not used: CTranslate2 has no API to verify draft tokens against
  its KV cache (``score_batch`` recomputes the whole sequence), so speculation would be slower
  than plain decoding here. Use the transformers engine for predicted outputs.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Sequence
from pathlib import Path

from editlm.generate.decoding import finish, prompt_seed, stop_hit
from editlm.generate.engines import Completion, EngineUnavailable, PromptTooLong, SamplingParams


class CTranslate2Engine:
    name = "ctranslate2"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        compute_type: str = "int8",
        batch_size: int = 32,
        cache_dir: str | Path | None = None,
    ):
        try:
            import ctranslate2
        except ImportError as exc:  # pragma: no cover - ctranslate2 is a core dependency
            raise EngineUnavailable("ctranslate2 is not installed: pip install ctranslate2") from exc
        from editlm.models.convert import ConversionUnsupported, ctranslate2_model
        from editlm.models.loading import load_config, load_tokenizer

        self.tokenizer = load_tokenizer(model_dir)
        try:
            self.path = ctranslate2_model(model_dir, quantization=compute_type, cache_dir=cache_dir)
        except ConversionUnsupported as exc:
            error = EngineUnavailable(str(exc))
            error.family = exc.family  # type: ignore[attr-defined]
            raise error from exc
        self.device = device or "cpu"
        self.compute_type = compute_type
        self.batch_size = batch_size
        self._ct2 = ctranslate2
        self.generator = self._new_generator()
        config = load_config(model_dir)
        from editlm.models.tokens import context_length

        self.context = context_length(config)
        eos = self.tokenizer.eos_token_id
        self.end_ids = [eos] if eos is not None else []

    def _new_generator(self):
        return self._ct2.Generator(
            str(self.path), device=self.device, compute_type=self.compute_type, inter_threads=1
        )

    def sample(
        self,
        prompts: list[str],
        n: int,
        params: SamplingParams,
        predictions: Sequence[str | None] | None = None,
    ) -> list[list[Completion]]:
        from editlm.models.tokens import encode_prompts  # the BOS rule training uses

        tokens = [self._tokens(ids, params) for ids in encode_prompts(self.tokenizer, prompts)]
        if params.greedy:
            firsts = self._run(self.generator, tokens, params)
            return [[c] + [copy.deepcopy(c) for _ in range(n - 1)] for c in firsts]
        out = []
        for prompt, toks in zip(prompts, tokens, strict=True):
            self._ct2.set_random_seed(prompt_seed(params.seed, prompt))
            out.append(self._run(self._new_generator(), [toks] * n, params))  # fresh thread, fresh seed
        return out

    def _tokens(self, ids: list[int], params: SamplingParams) -> list[str]:
        ids = ids or self.end_ids[:1]
        if self.context and len(ids) + params.max_new_tokens > self.context:
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens and max_new_tokens is {params.max_new_tokens}, "
                f"but the model's context is {self.context} tokens"
            )
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _run(self, generator, batch: list[list[str]], params: SamplingParams) -> list[Completion]:
        ids: list[list[int]] = [[] for _ in batch]
        logprobs: list[list[float]] = [[] for _ in batch]

        # The callback must not hold the engine: CTranslate2 lets go of it in its own worker thread,
        # after generate_batch has returned, and if that is the engine's last reference the engine's
        # Generator is destroyed there and joins its own thread ("Resource deadlock avoided": the
        # process aborts). Seen in the quickstart, which drops one engine per checkpoint.
        tokenizer, stops = self.tokenizer, params.stop

        def step(result) -> bool:
            ids[result.batch_id].append(result.token_id)
            logprobs[result.batch_id].append(result.log_prob)
            return stop_hit(tokenizer, ids[result.batch_id], stops)

        # The callback (needed only for stop sequences) runs Python in CTranslate2's worker thread;
        # a garbage collection there can free another Generator, whose destructor then joins its
        # own threads from the wrong one and aborts the process ("Resource deadlock avoided").
        collecting = gc.isenabled()
        gc.disable()
        try:
            results = generator.generate_batch(
                batch,
                max_batch_size=self.batch_size,
                max_length=params.max_new_tokens,
                sampling_topk=1 if params.greedy else 0,
                sampling_topp=1.0 if params.greedy else params.top_p,
                sampling_temperature=1.0 if params.greedy else params.temperature,
                include_prompt_in_result=False,
                end_token=self.end_ids or None,
                return_end_token=True,
                return_scores=True,  # with the callback, also each token's raw log-probability
                length_penalty=0,  # the score is then the summed raw log-probability
                callback=step if params.stop else None,
            )
        finally:
            if collecting:
                gc.enable()
        out = []
        for k, result in enumerate(results):
            if params.stop:
                row_ids, row_logprobs = ids[k], logprobs[k]
            else:
                row_ids, row_logprobs = result.sequences_ids[0], None
            text, count, logprob, reason = finish(
                self.tokenizer, row_ids, row_logprobs, self.end_ids, params.stop, params.max_new_tokens
            )
            if row_logprobs is None:
                logprob = float(result.scores[0])
            out.append(Completion(text, logprob, count, reason))
        return out
