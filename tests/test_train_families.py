"""Training on the model families users bring: tiny random models built from transformers' own config
classes, with tokenizers shaped like each family's (BOS added by the post-processor or not; EOS, PAD
present or missing), checked against computations that do not share editlm's or TRL's code paths."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch

from editlm.train.config import SFTConfig, make_config
from editlm.train.data import IGNORE, DataReport, collator, encode_sft, pack

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENDOFTEXT = "<|endoftext|>"
# Special tokens as each family's real tokenizer has them (bos_prefix: its post-processor adds BOS).
TOKENS = {
    "gpt2": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
    "starcoder": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
    "starcoder2": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
    "codellama": dict(bos="<s>", eos="</s>", unk="<unk>", bos_prefix=True),
    # A Llama tokenizer saved with add_eos_token=True: its post-processor also appends </s>.
    "codellama-add-eos": dict(bos="<s>", eos="</s>", unk="<unk>", bos_prefix=True, eos_suffix=True),
    "deepseek": dict(bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>", pad="<｜end▁of▁sentence｜>",
                     bos_prefix=True),
    "qwen2": dict(eos=ENDOFTEXT, pad=ENDOFTEXT),
    "pythia": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
    "codegen": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
    "phi": dict(bos=ENDOFTEXT, eos=ENDOFTEXT, unk=ENDOFTEXT),
}  # fmt: skip
FAMILIES = [f for f in TOKENS if f != "codellama-add-eos"]
CONTEXT = 96
WINDOW = 12  # sliding window of the Starcoder2 and Qwen2 models: shorter than most samples


def model_config(family: str, vocab: int):
    """A tiny config of the family's own class (2 layers, width 32; grouped or multi-query attention and
    sliding windows where the family has them)."""
    import transformers as t

    llama = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=CONTEXT, vocab_size=vocab)  # fmt: skip
    gpt = dict(n_embd=32, n_layer=2, n_head=4, n_positions=CONTEXT, vocab_size=vocab)
    return {
        "gpt2": lambda: t.GPT2Config(**gpt),
        "starcoder": lambda: t.GPTBigCodeConfig(**gpt, multi_query=True),
        "starcoder2": lambda: t.Starcoder2Config(**llama, sliding_window=WINDOW),
        "codellama": lambda: t.LlamaConfig(**llama),
        "codellama-add-eos": lambda: t.LlamaConfig(**llama),
        "deepseek": lambda: t.LlamaConfig(**{**llama, "num_key_value_heads": 4}),
        "qwen2": lambda: t.Qwen2Config(**llama, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1),
        "pythia": lambda: t.GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, max_position_embeddings=CONTEXT, vocab_size=vocab),
        "codegen": lambda: t.CodeGenConfig(**gpt, n_ctx=CONTEXT, rotary_dim=4),
        "phi": lambda: t.PhiConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   max_position_embeddings=CONTEXT, vocab_size=vocab),
    }[family]()  # fmt: skip


@functools.cache
def _base_bpe() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from editlm.models.tokenizer import stdlib_texts

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(stdlib_texts(limit=8), trainer=trainer)
    return tok.to_str()


def family_tokenizer(family: str, **drop: bool):
    """A byte-level BPE tokenizer with the family's special tokens and post-processor; ``eos=False`` or
    ``pad=False`` leave that token out (a tokenizer "without specials")."""
    from tokenizers import AddedToken, Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    spec = {k: v for k, v in TOKENS[family].items() if drop.get(k, True)}
    bos_prefix = spec.pop("bos_prefix", False)
    eos_suffix = spec.pop("eos_suffix", False)
    tok = Tokenizer.from_str(_base_bpe())
    tok.add_special_tokens([AddedToken(t, special=True) for t in dict.fromkeys(spec.values())])
    if bos_prefix:
        bos, end = spec["bos"], f" {spec['eos']}" if eos_suffix else ""
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A{end}", pair=f"{bos} $A {bos} $B{end}",
                                          special_tokens=[(t, tok.token_to_id(t)) for t in {bos, spec.get("eos")} if t]),
        ])  # fmt: skip
    names = {"bos": "bos_token", "eos": "eos_token", "unk": "unk_token", "pad": "pad_token"}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{names[k]: v for k, v in spec.items()})


def family_model(family: str, tokenizer, seed: int = 0):
    from transformers import AutoModelForCausalLM

    config = model_config(family, len(tokenizer))
    config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


@functools.cache
def _checkpoint(family: str, dtype: str, root: str):
    from pathlib import Path

    tok = family_tokenizer(family)
    model = family_model(family, tok).to(getattr(torch, dtype))
    out = Path(root) / f"{family}-{dtype}"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("families"))
    return lambda family, dtype="float32": _checkpoint(family, dtype, root)


def records(n: int = 10) -> list[dict]:
    out = []
    for i in range(n):
        body = "".join(f"    y{j} = x * {j + i}\n" for j in range(i % 4 + 1))
        out.append(
            {
                "prompt": f"<BEF> def f{i}(x):\n{body}<DFF>",
                "completion": f" @@ -1 +1 @@\n-    y0\n+    z{i}\n",
            }
        )
    return out


def write_data(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def hand_loss(model, segments) -> torch.Tensor:
    """Mean next-token NLL over labelled positions, each sample run alone with eager attention."""
    model = copy.deepcopy(model)
    model.set_attn_implementation("eager")
    terms = []
    for ids, labels in segments:
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        terms += [-logp[t - 1, labels[t]] for t in range(1, len(ids)) if labels[t] != IGNORE]
    return torch.stack(terms).mean()


def trl_loss(model, batch) -> torch.Tensor:
    """The training loss as TRL's SFTTrainer computes it (its fused LM head, its normalisation)."""
    from trl.trainer.utils import add_fused_lm_head

    model = copy.deepcopy(model)
    add_fused_lm_head(model)
    out = model(**batch, use_cache=False, fused_lm_head=True)
    return -out.log_probs.sum() / out.label_mask.sum()


@pytest.mark.parametrize("family", FAMILIES)
def test_packed_and_padded_loss_equal_an_independent_computation(family):
    from editlm.train.trainer import use_segment_attention

    tok = family_tokenizer(family)
    model = family_model(family, tok).train()
    model.config.attention_dropout = 0.0
    segments = encode_sft(tok, records(), seq_len=CONTEXT, marker="<DFF>")
    assert max(len(ids) for ids, _ in segments) > WINDOW  # the sliding windows matter
    expected = hand_loss(model.eval(), segments)
    padded = collator(tok.pad_token_id or 0, padding_free=False)(
        [{"input_ids": i, "labels": lab} for i, lab in segments]
    )
    assert padded["attention_mask"].sum() < padded["attention_mask"].numel()  # there is padding
    packed = collator(tok.pad_token_id or 0)(pack(segments, CONTEXT))
    segmented = copy.deepcopy(model)
    assert use_segment_attention(segmented)  # every family here takes editlm's per-sample attention
    with torch.no_grad():
        assert trl_loss(model, padded).item() == pytest.approx(expected.item(), rel=1e-4)
        assert trl_loss(model, packed).item() == pytest.approx(expected.item(), rel=1e-4)
        assert trl_loss(segmented, packed).item() == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.parametrize("family", [*FAMILIES, "codellama-add-eos"])
def test_bos_is_the_same_in_training_and_sampling(family, checkpoints):
    from editlm.generate.engines import SamplingParams, TransformersEngine
    from editlm.models.loading import load_tokenizer
    from editlm.models.tokens import encode_prompts, special_prefix

    # As saved and loaded back (transformers may load a family's own tokenizer class for it).
    tok = load_tokenizer(checkpoints(family))
    prompt = records(1)[0]["prompt"]
    own = tok(prompt)["input_ids"]  # the tokenizer's post-processor, as the family ships it
    bos = [tok.bos_token_id] if TOKENS[family].get("bos_prefix") else []
    assert special_prefix(tok) == bos and own[: len(bos)] == bos
    if TOKENS[family].get("eos_suffix"):
        assert own[-1] == tok.eos_token_id  # which a prompt must not carry
    (ids, _), = encode_sft(tok, [{"prompt": prompt, "completion": " x"}], seq_len=CONTEXT)  # fmt: skip
    prompt_ids = encode_prompts(tok, [prompt])[0]
    assert ids[: len(prompt_ids)] == prompt_ids == bos + tok(prompt, add_special_tokens=False)["input_ids"]
    engine = TransformersEngine(checkpoints(family), device="cpu")
    seen = []  # what the model is first run on (the prompt's prefill), however the engine decodes
    engine.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0] if args else kwargs["input_ids"]).tolist()),
        with_kwargs=True,
    )
    engine.sample([prompt], 1, SamplingParams(temperature=0, max_new_tokens=1))
    assert seen[0][0] == prompt_ids


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_all_linear_fits_every_family(family):
    from editlm.train.run import _lora

    tok = family_tokenizer(family)
    config = make_config(SFTConfig, {"lora_r": 2})
    model = _lora(family_model(family, tok), config)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("lm_head" in n or "embed_out" in n for n in trainable)
    ids = torch.tensor([tok("def f(x):\n    return x", add_special_tokens=False)["input_ids"]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(model.get_parameter(n).grad is not None for n in trainable if "lora_B" in n)


def test_lora_targets_that_match_nothing_are_a_clear_error():
    from editlm.train.config import ConfigError
    from editlm.train.run import _lora

    tok = family_tokenizer("gpt2")
    with pytest.raises(ConfigError, match="c_attn"):  # names GPT-2's own layers
        _lora(
            family_model("gpt2", tok),
            make_config(SFTConfig, {"lora_r": 2, "lora_target_modules": ["q_proj"]}),
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_context_length_is_read_from_every_family(family):
    from editlm.models.tokens import ContextLengthError, check_context, context_length

    config = model_config(family, 300)
    assert context_length(config) == CONTEXT
    check_context(config, CONTEXT)
    with pytest.raises(ContextLengthError, match=f"context of {CONTEXT}"):
        check_context(config, CONTEXT + 1)


def sft_config(tmp_path, model, data, **extra):
    settings = dict(output_dir=str(tmp_path / "out"), model=str(model), data=data, seq_len=CONTEXT,
                    batch_size=4, max_steps=3, lr=3e-5, warmup_steps=0, progress=False, tensorboard=False,
                    save_steps=100, loss_from_marker="<DFF>")  # fmt: skip
    return make_config(SFTConfig, {**settings, **extra})


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_checkpoint_trains_with_fp32_master_weights(family, checkpoints, tmp_path):
    """After 3 steps at lr 3e-5 virtually every weight of a bf16 checkpoint moves (pure bf16 moved 22%)."""
    from editlm.models.loading import load_model
    from editlm.train.run import sft

    base = checkpoints(family, "bfloat16")
    data = write_data(tmp_path / "d.jsonl", records())
    out = sft(sft_config(tmp_path, base, data, torch_dtype="float32", packing=family != "pythia"))
    before = load_model(base, dtype=torch.float32).state_dict()
    after = load_model(out).state_dict()
    assert next(iter(after.values())).dtype == torch.float32
    moved = sum(int((before[k] != after[k]).sum()) for k in before if after[k].dtype.is_floating_point)
    total = sum(before[k].numel() for k in before if after[k].dtype.is_floating_point)
    assert moved / total > 0.95, f"only {moved / total:.1%} of the weights changed"


def test_saved_dtype_follows_the_checkpoint_or_the_setting(checkpoints, tmp_path):
    from editlm.models.loading import checkpoint_dtype, load_config
    from editlm.train.run import sft

    base = checkpoints("deepseek", "bfloat16")
    data = write_data(tmp_path / "d.jsonl", records(4))
    out = sft(sft_config(tmp_path, base, data, max_steps=1))
    assert checkpoint_dtype(load_config(out)) == torch.bfloat16  # "auto": the checkpoint's own
    summary = json.loads((out / "editlm_train.json").read_text())
    assert summary["saved_dtype"] == "bfloat16" and summary["attention"] == "editlm segments"
    out16 = sft(
        sft_config(tmp_path, base, data, max_steps=1, output_dir=str(tmp_path / "f16"), torch_dtype="float16")
    )
    assert checkpoint_dtype(load_config(out16)) == torch.float16


@pytest.mark.parametrize(
    "family, missing",
    [("gpt2", dict(eos=False, bos=False, unk=False)), ("deepseek", dict(eos=False))],
    ids=["gpt2-no-specials", "deepseek-pad-but-no-eos"],
)
def test_tokenizers_without_specials_get_them_added_and_said(family, missing, tmp_path):
    from editlm.models.loading import load_tokenizer
    from editlm.train.run import sft

    tok = family_tokenizer(family, **missing)
    assert tok.eos_token_id is None
    base = tmp_path / "base"
    family_model(family, tok).save_pretrained(base)
    tok.save_pretrained(base)
    data = write_data(tmp_path / "d.jsonl", records(4))
    out = sft(sft_config(tmp_path, base, data, max_steps=2, packing=False))
    summary = json.loads((out / "editlm_train.json").read_text())
    assert any("no EOS token: added" in note for note in summary["notes"])
    trained = load_tokenizer(out)
    assert trained.eos_token == "<|endoftext|>" and trained.pad_token_id is not None
    segments = encode_sft(trained, records(2), seq_len=CONTEXT)
    assert all(
        ids[-1] == trained.eos_token_id and labels[-1] == trained.eos_token_id for ids, labels in segments
    )
    from editlm.models.loading import load_model

    assert load_model(out).get_input_embeddings().weight.shape[0] >= len(trained)


def test_context_overflow_stops_before_any_work(checkpoints, tmp_path):
    from editlm.models.tokens import ContextLengthError
    from editlm.train.run import sft

    config = sft_config(
        tmp_path, checkpoints("gpt2"), str(tmp_path / "no-such-data.jsonl"), seq_len=2 * CONTEXT
    )
    with pytest.raises(
        ContextLengthError, match=f"seq_len={2 * CONTEXT} is longer than the model's context of {CONTEXT}"
    ):
        sft(config)  # the data is never read (it does not exist), nor the output directory made
    assert not (tmp_path / "out").exists()


def test_rerun_resumes_only_the_same_run(checkpoints, tmp_path):
    from editlm.train.resume import RunMismatchError
    from editlm.train.run import sft

    base = checkpoints("codellama")
    data = write_data(tmp_path / "d.jsonl", records(6))
    out = sft(sft_config(tmp_path, base, data, max_steps=2, save_steps=2))
    steps = lambda: [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    done = steps()
    sft(
        sft_config(tmp_path, base, data, max_steps=2, save_steps=2)
    )  # the same run: resumes, trains nothing more
    assert max(steps()) == 2
    with pytest.raises(RunMismatchError, match=r"lr: 3e-05 -> 0\.001"):
        sft(sft_config(tmp_path, base, data, max_steps=2, save_steps=2, lr=1e-3))
    other = write_data(tmp_path / "d.jsonl", records(7))
    with pytest.raises(RunMismatchError, match="inputs.data"):
        sft(sft_config(tmp_path, base, other, max_steps=2, save_steps=2))
    assert steps()[: len(done)] == done  # refused runs leave the old run alone
    sft(sft_config(tmp_path, base, other, max_steps=3, save_steps=2, overwrite=True))
    assert steps() == [3]  # a fresh run: the old metrics and checkpoints are gone


def test_unrecorded_output_dir_is_refused(tmp_path, checkpoints):
    from editlm.train.resume import RunMismatchError
    from editlm.train.run import sft

    (tmp_path / "out" / "checkpoint-5").mkdir(parents=True)
    data = write_data(tmp_path / "d.jsonl", records(2))
    with pytest.raises(RunMismatchError, match="did not record"):
        sft(sft_config(tmp_path, checkpoints("gpt2"), data))


def test_measured_fill_counts_the_padding(tmp_path, checkpoints):
    from editlm.train.run import sft

    data = write_data(tmp_path / "d.jsonl", records(8))
    padded = sft(sft_config(tmp_path, checkpoints("gpt2"), data, packing=False, max_steps=2))
    fill = json.loads((padded / "editlm_train.json").read_text())["data"]["fill"]
    report = DataReport()
    segments = encode_sft(
        family_tokenizer("gpt2"), records(8), seq_len=CONTEXT, marker="<DFF>", report=report
    )
    assert report.used == 8 and len({len(i) for i, _ in segments}) > 1
    assert 0.3 < fill < 1.0  # samples of different lengths, padded to the longest of each batch
    packed = sft(sft_config(tmp_path, checkpoints("gpt2"), data, max_steps=2, output_dir=str(tmp_path / "p")))
    assert json.loads((packed / "editlm_train.json").read_text())["data"]["fill"] == 1.0  # padding-free


def test_a_resumed_run_does_not_read_or_tokenize_the_data_again(checkpoints, tmp_path, monkeypatch):
    from transformers import TrainerCallback

    import editlm.train.run as run_module

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    data = write_data(tmp_path / "d.jsonl", records(6))
    config = sft_config(tmp_path, checkpoints("phi"), data, max_steps=3, save_steps=1, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        run_module.sft(config, callbacks=[Interrupt()])
    assert list((tmp_path / "out" / ".editlm-data").iterdir())

    def refuse(*args, **kwargs):
        raise AssertionError("the data was read again")

    monkeypatch.setattr(run_module, "load_records", refuse)
    monkeypatch.setattr(run_module, "encode_sft", refuse)
    out = run_module.sft(config)
    summary = json.loads((out / "editlm_train.json").read_text())
    assert summary["metrics"]["train_runtime"] > 0 and summary["data"]["used"] == 6
    assert not (out / ".editlm-data").exists()  # the finished directory holds the model only
