"""The transformers engine: any causal LM on any device, with its own decoding loop.

Written by hand around ``model.forward`` and transformers' ``DynamicCache`` rather than calling
``model.generate``, because ``generate`` cannot (a) key the randomness of each row separately (one
global generator: a sample depends on its batch), (b) verify drafts taken from a prediction that is
not in the prompt, or in a batch (its prompt lookup is batch size 1 over the prompt only), or (c)
compute the prompt once for ``n`` samples. ``generate`` stays the reference: the tests check that
greedy output here equals ``model.generate`` token for token.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path

from editlm.generate.decoding import Drafter, choose_tokens, finish, sample_key, stop_hit
from editlm.generate.engines import Completion, PromptTooLong, SamplingParams


class TransformersEngine:
    """Batches of samples of one or more prompts; each distinct prompt is prefilled once and its
    KV cache shared by its samples. With a ``prediction`` and at most ``speculate_up_to`` distinct
    samples, each sample is decoded speculatively: up to ``draft_tokens`` tokens copied from the
    prediction are verified in one forward pass (more samples are faster decoded as one batch)."""

    name = "transformers"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        batch_size: int = 16,
        dtype: str | None = None,
        draft_tokens: int = 32,
        speculate_up_to: int = 4,
        min_draft_tokens: int = 4,
    ):
        import torch

        from editlm.models.loading import load_model, load_tokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(model_dir)
        torch_dtype = getattr(torch, dtype) if dtype and dtype != "auto" else None
        self.model = load_model(model_dir, dtype=torch_dtype, device=self.device).eval()
        self.batch_size = max(1, batch_size)
        self.draft_tokens = draft_tokens
        self.min_draft_tokens = min_draft_tokens
        self.speculate_up_to = speculate_up_to
        config = self.model.config
        eos = self.model.generation_config.eos_token_id
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        self.end_ids = sorted({eos} if isinstance(eos, int) else set(eos or ()))
        self.context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        self.stats = {"drafted": 0, "accepted": 0, "forward": 0}
        # transformers 5.x renamed the forward argument ``past_key_values`` to ``cache``
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        )

    # -- the interface -------------------------------------------------------------------------
    def sample(
        self,
        prompts: list[str],
        n: int,
        params: SamplingParams,
        predictions: Sequence[str | None] | None = None,
    ) -> list[list[Completion]]:
        import torch

        from editlm.models.tokens import encode_prompts  # the BOS rule training uses

        encoded = [self._check(ids, params) for ids in encode_prompts(self.tokenizer, prompts)]
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        # greedy samples of one prompt are all the same: decode once, copy
        copies = 1 if params.greedy else n
        with torch.inference_mode():
            plain = []
            for i, prompt in enumerate(prompts):
                prediction = predictions[i] if predictions is not None else None
                # speculation decodes one row at a time: for many samples a batch is faster
                if prediction and copies <= self.speculate_up_to:
                    pred_ids = self.tokenizer(prediction, add_special_tokens=False)["input_ids"]
                    for k, done in enumerate(self._speculate(prompt, encoded[i], pred_ids, copies, params)):
                        out[i][k] = done
                else:
                    plain += [(i, k) for k in range(copies)]
            for start in range(0, len(plain), self.batch_size):
                chunk = plain[start : start + self.batch_size]
                rows = [(encoded[i], sample_key(params.seed, prompts[i], k)) for i, k in chunk]
                for (i, k), done in zip(chunk, self._decode(rows, params), strict=True):
                    out[i][k] = done
        if copies == 1:
            for row in out:
                row[1:] = [copy.deepcopy(row[0]) for _ in row[1:]]
        return out  # type: ignore[return-value]

    # -- helpers ---------------------------------------------------------------------------------
    def _check(self, ids: list[int], params: SamplingParams) -> list[int]:
        if not ids:
            ids = [self.end_ids[0]] if self.end_ids else [0]
        if self.context and len(ids) + params.max_new_tokens > self.context:
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens and max_new_tokens is {params.max_new_tokens}, "
                f"but the model's context is {self.context} tokens"
            )
        return ids

    def _forward(self, ids, mask, positions, cache):
        self.stats["forward"] += 1
        kwargs = {self._cache_arg: cache}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        return out.logits.float(), cache

    def _prefill(self, prompts: list[list[int]]):
        """One forward pass over distinct left-padded prompts: last-position logits, cache, mask."""
        import torch

        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        logits, cache = self._forward(ids, mask, positions, DynamicCache(config=self.model.config))
        return logits[:, -1, :], cache, mask

    def _decode(self, rows: list[tuple[list[int], int]], params: SamplingParams) -> list[Completion]:
        """Plain decoding of ``rows`` ((prompt ids, sample key)) in one batch."""
        import torch

        distinct: dict[tuple[int, ...], int] = {}
        for ids, _ in rows:
            distinct.setdefault(tuple(ids), len(distinct))
        logits, cache, mask = self._prefill([list(p) for p in distinct])
        select = torch.tensor([distinct[tuple(ids)] for ids, _ in rows], device=self.device)
        logits, mask = logits[select], mask[select]
        cache.batch_select_indices(select)
        keys = [key for _, key in rows]
        generated: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        alive = list(range(len(rows)))
        ends = set(self.end_ids)
        for step in range(params.max_new_tokens):
            raw = logits.log_softmax(-1)
            tokens = choose_tokens(
                logits, params.temperature, params.top_p, [keys[r] for r in alive], [step] * len(alive)
            )
            chosen = raw.gather(-1, tokens[:, None])[:, 0].tolist()
            keep = []
            for j, r in enumerate(alive):
                token = int(tokens[j])
                generated[r].append(token)
                logprobs[r].append(chosen[j])
                if token not in ends and not stop_hit(self.tokenizer, generated[r], params.stop):
                    keep.append(j)
            if not keep or step + 1 == params.max_new_tokens:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, tokens = mask[index], tokens[index]
                alive = [alive[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
            positions = mask.sum(-1, keepdim=True) - 1
            logits, cache = self._forward(tokens[:, None], mask, positions, cache)
            logits = logits[:, -1, :]
        return [self._completion(generated[r], logprobs[r], params) for r in range(len(rows))]

    def _speculate(
        self, prompt: str, prompt_ids: list[int], pred_ids: list[int], copies: int, params: SamplingParams
    ):
        """Samples of one prompt decoded one at a time with drafts from the prediction, all from one
        prefill of the prompt. Yields each Completion.

        Each step feeds the last token and up to ``width`` drafted tokens in one forward pass over the
        KV cache, draws the token at every fed position with the plain decoder's rule, keeps the drafts
        up to the first one that differs from the drawn token (plus the drawn token there), and crops
        the rejected drafts from the cache. ``width`` adapts: doubled (up to ``draft_tokens``) after a
        draft accepted whole, halved after a rejection."""
        import torch

        logits0, cache0, _ = self._prefill([prompt_ids])
        ends = set(self.end_ids)
        low = min(self.min_draft_tokens, self.draft_tokens)
        for k in range(copies):
            key = sample_key(params.seed, prompt, k)
            cache = copy.deepcopy(cache0) if k + 1 < copies else cache0
            drafter = Drafter(pred_ids)
            generated: list[int] = []
            logprobs: list[float] = []
            pending = logits0  # (positions, vocab): logits for the fed positions
            drafts: list[int] = []
            width = self.draft_tokens
            while True:
                at = len(generated)
                tokens = choose_tokens(
                    pending,
                    params.temperature,
                    params.top_p,
                    [key] * len(pending),
                    range(at, at + len(pending)),
                ).tolist()
                accepted = 0
                while accepted < len(drafts) and tokens[accepted] == drafts[accepted]:
                    accepted += 1
                take = tokens[: accepted + 1]
                chosen = pending[: len(take)].log_softmax(-1)
                chosen = chosen.gather(-1, torch.tensor(take, device=chosen.device)[:, None])[:, 0].tolist()
                done = False
                for token, logprob in zip(take, chosen, strict=True):
                    generated.append(token)
                    logprobs.append(logprob)
                    if (
                        token in ends
                        or len(generated) >= params.max_new_tokens
                        or (params.stop and stop_hit(self.tokenizer, generated, params.stop))
                    ):
                        done = True
                        break
                if drafts:
                    self.stats["accepted"] += accepted
                    drafter.advance(accepted)
                    width = (
                        min(width * 2, self.draft_tokens) if accepted == len(drafts) else max(low, width // 2)
                    )
                if done:
                    break
                # the cache holds the prompt and every generated token but the last: crop rejected drafts
                past = len(prompt_ids) + len(generated) - 1
                extra = cache.get_seq_length() - past
                if extra > 0:
                    cache.crop(-extra)  # transformers 5 takes only a count to drop here
                budget = params.max_new_tokens - len(generated) - 1
                drafts = drafter.draft(prompt_ids + generated, min(width, budget))
                self.stats["drafted"] += len(drafts)
                feed = [generated[-1], *drafts]
                ids = torch.tensor([feed], device=self.device)
                mask = torch.ones(1, past + len(feed), dtype=torch.long, device=self.device)
                positions = torch.arange(past, past + len(feed), device=self.device)[None]
                pending, cache = self._forward(ids, mask, positions, cache)
                pending = pending[0]
            yield self._completion(generated, logprobs, params)

    def _completion(self, ids: list[int], logprobs: list[float], params: SamplingParams) -> Completion:
        text, tokens, logprob, reason = finish(
            self.tokenizer, ids, logprobs, self.end_ids, params.stop, params.max_new_tokens
        )
        return Completion(text, logprob, tokens, reason)
