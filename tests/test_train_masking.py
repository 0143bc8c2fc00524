"""Loss masks and packing: labels, gradients and attention are exactly what the sample format says."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.edits.diff import make_diff
from editlm.edits.diff_model import DiffSample
from editlm.edits.edit_sequence import edit_sequence_prompt, format_edit_sequence
from editlm.models.presets import init_model
from editlm.train.data import (
    IGNORE,
    DataError,
    DataReport,
    collator,
    encode_documents,
    encode_sft,
    load_records,
    mask_labels,
    pack,
)


def samples_of(row: dict) -> list[tuple[list[int], list[int]]]:
    """The samples of a packed row, cut at its ``seq_lengths``."""
    out, at = [], 0
    for n in row["seq_lengths"]:
        out.append((row["input_ids"][at : at + n], row["labels"][at : at + n]))
        at += n
    assert at == len(row["input_ids"])
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok(code_tokenizer_dir):
    from editlm.models.loading import load_tokenizer

    return load_tokenizer(code_tokenizer_dir)


@pytest.fixture(scope="module")
def model(tok):
    return init_model("test", tok, seed=0).eval()


def diff_sample(i: int) -> DiffSample:
    before = f"def f{i}(x):\n    return x + {i}\n"
    after = f"def f{i}(x):\n    y = x * {i + 2}\n    return y + {i}\n"
    return DiffSample(f"m{i}.py", before, f"Scale by {i + 2}", make_diff(before, after, headers=False))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=30), st.integers(0, 150))
def test_mask_labels_is_exactly_the_prompt(lengths, loss_start):
    ends = [sum(lengths[: i + 1]) for i in range(len(lengths))]
    offsets = [(end - n, end) for end, n in zip(ends, lengths, strict=True)]
    ids = list(range(100, 100 + len(lengths)))
    labels = mask_labels(ids, offsets, loss_start)
    assert labels[0] == IGNORE
    for i in range(1, len(ids)):
        assert labels[i] == (ids[i] if offsets[i][1] > loss_start else IGNORE)


def test_labels_are_ignored_exactly_on_the_prompt_tokens(tok):
    sample = diff_sample(3)
    record = {"prompt": sample.prompt(), "completion": sample.completion(), "loss_start": sample.loss_start}
    (ids, labels), = encode_sft(tok, [record], seq_len=512)  # fmt: skip
    text = sample.text()
    prompt_ids = tok(text[: sample.loss_start], add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids  # the boundary falls between tokens in this format
    assert labels[:n] == [IGNORE] * n
    assert labels[n:] == ids[n:]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(labels[n:-1]) == text[sample.loss_start :]
    assert tok.decode(labels[n:-1]).startswith("<DFF> ")


def test_loss_start_defaults_to_the_completion_and_a_marker_moves_it(tok):
    sample = diff_sample(1)
    record = {"prompt": sample.prompt(), "completion": sample.completion()}
    (_, plain), = encode_sft(tok, [record], seq_len=512)  # fmt: skip
    (_, marked), = encode_sft(tok, [record], seq_len=512, marker="<DFF>")  # fmt: skip
    completion = tok.decode([t for t in plain if t != IGNORE])
    assert completion == sample.completion() + tok.eos_token
    assert tok.decode([t for t in marked if t != IGNORE]) == "<DFF>" + sample.completion() + tok.eos_token


def test_lintseq_and_full_loss(tok):
    instruction = "Write a function that adds one."
    diffs = ["@@ -0,0 +1 @@\n+def f(x):", "@@ -1 +1,2 @@\n def f(x):\n+    return x + 1"]
    text = format_edit_sequence(instruction, diffs)
    prompt = edit_sequence_prompt(instruction)
    record = {"prompt": prompt, "completion": text[len(prompt) :]}
    (ids, labels), = encode_sft(tok, [record], seq_len=512)  # fmt: skip
    assert tok.decode([t for t in labels if t != IGNORE]) == text[len(prompt) :] + tok.eos_token
    (ids2, full), = encode_sft(tok, [record], seq_len=512, full_loss=True)  # fmt: skip
    assert ids2 == ids and full[0] == IGNORE and full[1:] == ids[1:]


def test_overlong_samples_are_counted_and_skipped_or_truncated(tok):
    long = {"prompt": "x = 1\n" * 200, "completion": "y = 2\n"}
    short = {"prompt": "a", "completion": " = 1\n"}
    report = DataReport()
    segments = encode_sft(tok, [long, short, long], seq_len=64, report=report)
    assert len(segments) == 1 and report.skipped_overlong == 2 and report.used == 1
    report = DataReport()
    tail_long = {"prompt": "a", "completion": "x = 1\n" * 200}
    segments = encode_sft(tok, [tail_long, long], seq_len=64, overlong="truncate", report=report)
    # The truncated prompt-only sample has no loss left: counted, not trained on.
    assert [len(ids) for ids, _ in segments] == [64]
    assert report.truncated == 2 and report.skipped_no_loss == 1


def test_missing_fields_and_empty_data_are_clear_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "a", "answer": "b"}) + "\n")
    with pytest.raises(DataError, match="completion"):
        load_records(path, required=("prompt", "completion"))
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_records(empty)
    with pytest.raises(DataError, match="no such"):
        load_records(tmp_path / "missing.jsonl")


def _hand_loss(model, ids: list[int], labels: list[int]) -> torch.Tensor:
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    terms = [-logp[t - 1, labels[t]] for t in range(1, len(ids)) if labels[t] != IGNORE]
    return torch.stack(terms).mean()


def test_completion_only_gradient_matches_a_hand_computation(tok, model):
    sample = diff_sample(2)
    record = {"prompt": sample.prompt(), "completion": sample.completion(), "loss_start": sample.loss_start}
    (ids, labels), = encode_sft(tok, [record], seq_len=512)  # fmt: skip
    batch = collator(tok.pad_token_id)(pack([(ids, labels)], 512))
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    hand = _hand_loss(model, ids, labels)
    hand.backward()
    assert torch.allclose(loss, hand, atol=1e-5)
    for name, param in model.named_parameters():
        assert torch.allclose(got[name], param.grad, atol=1e-6, rtol=1e-4), name
    model.zero_grad()


def test_trl_fused_head_on_labelled_positions_equals_the_full_logits_loss(tok, model):
    """TRL's fused LM head (projects only positions with a label) gives the stock loss and gradients."""
    import copy

    from trl.trainer.utils import add_fused_lm_head

    records = [
        {"prompt": diff_sample(i).prompt(), "completion": diff_sample(i).completion()} for i in range(6)
    ]
    batch = collator(tok.pad_token_id)(pack(encode_sft(tok, records, seq_len=256), 256))
    fused = copy.deepcopy(model)
    add_fused_lm_head(fused)
    n = int((batch["labels"][:, 1:] != IGNORE).sum())
    grads = []
    for m, compute in (
        (model, lambda: model(**batch, use_cache=False).loss),  # a KV cache would ignore the packing
        (fused, lambda: -fused(**batch, fused_lm_head=True).log_probs.sum() / n),
    ):
        m.zero_grad()
        loss = compute()
        loss.backward()
        grads.append((loss.detach(), {k: p.grad.clone() for k, p in m.named_parameters()}))
    (a, ga), (b, gb) = grads
    assert torch.allclose(a, b, atol=1e-6)
    for name in ga:
        assert torch.allclose(ga[name], gb[name], atol=1e-7, rtol=1e-4), name
    model.zero_grad()


def test_prompt_side_targets_get_no_gradient(tok, model):
    sample = diff_sample(4)
    record = {"prompt": sample.prompt(), "completion": sample.completion(), "loss_start": sample.loss_start}
    (ids, labels), = encode_sft(tok, [record], seq_len=512)  # fmt: skip
    logits = model(input_ids=torch.tensor([ids])).logits.detach().requires_grad_(True)
    loss = model.loss_function(logits=logits, labels=torch.tensor([labels]), vocab_size=logits.shape[-1])
    loss.backward()
    n_prompt = labels.index(next(t for t in labels if t != IGNORE))
    # Position t predicts token t + 1: every position that predicts a prompt token has zero gradient.
    assert torch.count_nonzero(logits.grad[0, : n_prompt - 1]) == 0
    assert torch.count_nonzero(logits.grad[0, n_prompt - 1 :]) > 0
    # So the prompt-side targets can be anything: with full-loss labels scrambled there, the
    # completion-only loss is unchanged, while the full loss moves.
    (_, full), = encode_sft(tok, [record], seq_len=512, full_loss=True)  # fmt: skip
    scrambled = [(t * 7 + 3) % len(tok) if i < n_prompt else t for i, t in enumerate(full)]
    scrambled[0] = IGNORE
    with torch.no_grad():

        def masked_loss(lab):
            kept = [t if labels[i] != IGNORE else IGNORE for i, t in enumerate(lab)]
            return model.loss_function(
                logits=logits, labels=torch.tensor([kept]), vocab_size=logits.shape[-1]
            )

        def full_loss(lab):
            return model.loss_function(logits=logits, labels=torch.tensor([lab]), vocab_size=logits.shape[-1])

        assert masked_loss(scrambled).item() == pytest.approx(loss.item(), rel=1e-6)
        assert masked_loss(full).item() == pytest.approx(loss.item(), rel=1e-6)
        # (an untrained model is near uniform, so the move is small but far above float noise)
        assert full_loss(scrambled).item() != pytest.approx(full_loss(full).item(), rel=1e-5)


def test_packing_keeps_every_sample_and_its_masks(tok):
    records = [
        {"prompt": diff_sample(i).prompt(), "completion": diff_sample(i).completion()} for i in range(12)
    ]
    report = DataReport()
    segments = encode_sft(tok, records, seq_len=256, report=report)
    rows = pack(segments, 256, report)
    assert len(rows) < len(segments)
    seen = [sample for row in rows for sample in samples_of(row)]
    assert all(len(row["input_ids"]) == len(row["labels"]) <= 256 for row in rows)
    assert sorted(seen) == sorted((list(ids), list(labels)) for ids, labels in segments)
    # Best fit never leaves two rows that are both at most half full (they would have been one).
    assert sum(1 for row in rows if len(row["input_ids"]) <= 128) <= 1
    assert report.rows == len(rows)


def test_packed_rows_do_not_attend_across_samples(tok, model):
    """The loss and logits of a padding-free packed batch equal those of each sample run alone."""
    records = [
        {"prompt": diff_sample(i).prompt(), "completion": diff_sample(i).completion()} for i in range(5)
    ]
    segments = encode_sft(tok, records, seq_len=512)
    rows = pack(segments, 512)
    assert len(rows) == 1 and len(rows[0]["input_ids"]) < 512
    rows.append(pack(segments[:1], 512)[0])  # a second row: the batch is both rows end to end
    batch = collator(tok.pad_token_id)(rows)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(**batch, use_cache=False)
        total, count, at = 0.0, 0, 0
        in_row_order = [sample for row in rows for sample in samples_of(row)]
        assert sorted(in_row_order) == sorted([*segments, segments[0]])
        for ids, labels in in_row_order:
            alone = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            assert torch.allclose(packed.logits[0, at : at + len(ids)], alone.logits[0], atol=1e-4)
            n = sum(1 for t in labels[1:] if t != IGNORE)
            total, count, at = total + alone.loss.item() * n, count + n, at + len(ids)
    assert packed.loss.item() == pytest.approx(total / count, rel=1e-5)


def test_pretraining_documents_are_cut_at_seq_len(tok):
    docs = ["def a():\n    return 1\n" * 30, "x = 2\n", "import os\n" * 50]
    report = DataReport()
    segments = encode_documents(tok, docs, seq_len=64, report=report)
    flat = [t for ids, _ in segments for t in ids]
    assert flat == [
        t for d in docs for t in tok(d, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ]
    assert all(len(ids) <= 64 for ids, _ in segments) and sum(len(i) == 64 for i, _ in segments) > 3
    for ids, labels in segments:
        assert labels[0] == IGNORE and labels[1:] == ids[1:]
    rows = pack(segments, 64)
    assert sorted(s for row in rows for s in samples_of(row)) == sorted(
        (list(i), list(lab)) for i, lab in segments
    )


def test_segment_attention_matches_the_block_masked_model(tok, model):
    """editlm's per-sample attention gives the logits, loss and gradients of the stock block mask."""
    import copy

    from editlm.train.trainer import SEGMENT_ATTENTION, use_segment_attention

    records = [
        {"prompt": diff_sample(i).prompt(), "completion": diff_sample(i).completion()} for i in range(7)
    ]
    rows = pack(encode_sft(tok, records, seq_len=300), 300)
    batch = collator(tok.pad_token_id)(rows)
    assert len(rows) > 1 and (batch["labels"] == IGNORE).any()
    fast = copy.deepcopy(model)
    assert use_segment_attention(fast) and fast.config._attn_implementation == SEGMENT_ATTENTION
    results = []
    for m in (model, fast):
        m.train()
        m.zero_grad()
        out = m(**batch, use_cache=False)
        out.loss.backward()
        results.append(
            (out.logits.detach(), out.loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters()})
        )
        m.eval()
    (la, a, ga), (lb, b, gb) = results
    assert torch.allclose(la, lb, atol=1e-5)
    assert torch.allclose(a, b, atol=1e-6)
    for name in ga:
        assert torch.allclose(ga[name], gb[name], atol=1e-6, rtol=1e-4), name
    model.zero_grad()


@pytest.mark.parametrize("prompt", ["Rewrite it:\n<AFT> ", "Answer: "])
def test_a_prompt_is_trained_on_the_tokens_generation_feeds(tok, prompt):
    # "<AFT> " + "def" tokenized as one text gives " def" (and "  " + "def" gives " " + " def"): the model
    # would learn to continue a prompt that generation never gives it (the prompt alone ends in " ")
    completion = "def f(x):\n    return x\n"
    joint = tok(prompt + completion, add_special_tokens=False)["input_ids"]
    alone = tok(prompt, add_special_tokens=False)["input_ids"]
    assert joint[: len(alone)] != alone  # the case this is about
    report = DataReport()
    (ids, labels), = encode_sft(tok, [{"prompt": prompt, "completion": completion}], seq_len=512, report=report)  # fmt: skip
    from editlm.models.tokens import encode_prompts

    fed = encode_prompts(tok, [prompt])[0]  # what the engines feed for this prompt
    assert ids[: len(fed)] == fed
    assert labels[: len(fed)] == [IGNORE] * len(fed)
    assert tok.decode(labels[len(fed) : -1]) == completion and ids[-1] == tok.eos_token_id
    assert report.boundary_retokenized == 1 and report.boundary_kept == 0
    # no token across the boundary: one tokenization, as before
    report = DataReport()
    encode_sft(
        tok, [{"prompt": "Rewrite it:\n<AFT>", "completion": " " + completion}], seq_len=512, report=report
    )
    assert report.boundary_retokenized == 0


def test_a_tokenizer_that_adds_a_leading_space_keeps_one_tokenization(tok):
    # tokenized alone, the completion would gain a space ("def" -> " def"): the text must not change
    import copy

    from tokenizers import pre_tokenizers

    spaced = copy.deepcopy(tok)
    spaced.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    report = DataReport()
    record = {"prompt": "Answer: ", "completion": "def f(x):\n"}
    (ids, _), = encode_sft(spaced, [record], seq_len=512, report=report)  # fmt: skip
    assert spaced.decode(ids[:-1]) == spaced.decode(
        spaced(record["prompt"] + record["completion"])["input_ids"]
    )
    assert report.boundary_kept == 1 and report.boundary_retokenized == 0
