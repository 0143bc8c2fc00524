"""Generation: engines that agree with each other and with ``model.generate`` (several model families),
seeds, stops, predicted outputs, the CTranslate2 conversion cache, benchmark sampling, MBR-exec, repair."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from editlm.edits.diff import make_diff
from editlm.generate.decoding import Drafter, finish
from editlm.generate.engines import (
    Completion,
    EngineUnavailable,
    PromptTooLong,
    SamplingParams,
    TransformersEngine,
    cut_at_stop,
    load_engine,
)
from editlm.generate.repair import error_summary, repair_prompt, self_repair
from editlm.generate.rerank import call_inputs, mbr_exec

PROMPTS = ["def add(a, b):\n    return", "class Foo:\n", "import os\n"]
# Each family's own config class, as transformers defines it (test-sized)
FAMILIES = {
    "gpt2": dict(n_embd=64, n_layer=2, n_head=4),
    "gpt_neox": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
    "qwen2": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "phi": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
    "starcoder2": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDITLM_CACHE", str(tmp_path_factory.getbasetemp() / "editlm-cache"))


@pytest.fixture(scope="module")
def family_models(tmp_path_factory, small_tokenizer_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(small_tokenizer_dir)
    out = {}
    for family, shape in FAMILIES.items():
        config = AutoConfig.for_model(
            family,
            vocab_size=len(tok),
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            **shape,
        )
        torch.manual_seed(0)
        path = tmp_path_factory.mktemp(family) / "model"
        AutoModelForCausalLM.from_config(config).save_pretrained(path)
        tok.save_pretrained(path)
        out[family] = path
    return out


@pytest.fixture(scope="module")
def eos_model(tmp_path_factory, tiny_model):
    """The tiny model with its end token made as likely as the token it repeats ("turn"): greedy
    samples end on the end token after a few tokens."""
    import torch

    from editlm.models.loading import load_model, load_tokenizer, save_checkpoint

    tok, model = load_tokenizer(tiny_model), load_model(tiny_model)
    turn = tok.convert_tokens_to_ids("turn")
    with torch.no_grad():
        weight = model.get_output_embeddings().weight
        weight[tok.eos_token_id] = weight[turn] * 1.5
    return save_checkpoint(model, tok, tmp_path_factory.mktemp("eos") / "model")


def _reference(model_dir, prompts, max_new_tokens):
    """``model.generate`` greedy, and the raw log-probabilities of what it generated, from a plain
    forward pass over prompt + output."""
    import torch

    from editlm.models.loading import load_model, load_tokenizer

    tok, model = load_tokenizer(model_dir), load_model(model_dir).eval()
    out = []
    for prompt in prompts:
        enc = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            seq = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
            new = seq[0, enc["input_ids"].shape[1] :].tolist()
            if tok.eos_token_id in new:
                new = new[: new.index(tok.eos_token_id) + 1]
            out.append((new, _raw_logprob(model, enc["input_ids"][0].tolist(), new)))
    return tok, out


def _raw_logprob(model, prompt_ids, new_ids) -> float:
    import torch

    with torch.no_grad():
        logp = model(torch.tensor([prompt_ids + new_ids])).logits[0].float().log_softmax(-1)
    return sum(float(logp[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(new_ids))


def _check_against_reference(model_dir, completions, max_new_tokens):
    tok, ref = _reference(model_dir, PROMPTS, max_new_tokens)
    for (ids, logprob), got in zip(ref, completions, strict=True):
        ended = bool(ids) and ids[-1] == tok.eos_token_id
        assert got.text == tok.decode(ids[:-1] if ended else ids)
        assert got.tokens == len(ids)
        assert got.finish == ("stop" if ended else "length")
        assert got.logprob == pytest.approx(logprob, abs=2e-3)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "qwen2"])
def test_engines_agree_with_generate_greedy(family, family_models, tiny_model, one_torch_thread) -> None:
    model_dir = tiny_model if family == "llama" else family_models[family]
    params = SamplingParams(temperature=0, max_new_tokens=12)
    hf = TransformersEngine(model_dir, batch_size=2).sample(PROMPTS, 2, params)
    ct2 = load_engine("ctranslate2", model_dir, compute_type="float32", fallback=False).sample(
        PROMPTS, 1, params
    )
    _check_against_reference(model_dir, [c[0] for c in hf], 12)
    _check_against_reference(model_dir, [c[0] for c in ct2], 12)
    assert all(c[0].text == c[1].text for c in hf)  # greedy n > 1: the same sample n times


def test_end_token_gives_finish_stop_and_its_logprob(eos_model, one_torch_thread) -> None:
    params = SamplingParams(temperature=0, max_new_tokens=12)
    hf = [c[0] for c in TransformersEngine(eos_model).sample(PROMPTS, 1, params)]
    ct2 = [
        c[0] for c in load_engine("ctranslate2", eos_model, compute_type="float32").sample(PROMPTS, 1, params)
    ]
    assert any(c.finish == "stop" and c.tokens < 12 for c in hf)  # the fixture does end samples
    _check_against_reference(eos_model, hf, 12)
    _check_against_reference(eos_model, ct2, 12)


def test_stops_end_decoding_in_every_engine(family_models, one_torch_thread) -> None:
    from editlm.models.loading import load_tokenizer

    model_dir = family_models["qwen2"]
    free = SamplingParams(temperature=0, max_new_tokens=16)
    hf_engine = TransformersEngine(model_dir)
    unstopped = [c[0] for c in hf_engine.sample(PROMPTS, 1, free)]
    stop = unstopped[1].text[3:5]  # a stop sequence the free output contains, after its start
    params = SamplingParams(temperature=0, max_new_tokens=16, stop=(stop,))
    ct2 = load_engine("ctranslate2", model_dir, compute_type="float32", fallback=False)
    tok = load_tokenizer(model_dir)
    for engine in (hf_engine, ct2):
        got = engine.sample(PROMPTS, 1, params)[1][0]
        assert got.finish == "stop" and got.tokens < 16
        assert got.text == unstopped[1].text[: unstopped[1].text.find(stop)]
        # tokens and logprob describe exactly what was decoded up to the token that completed the stop
        ids = tok(unstopped[1].text)["input_ids"]
        ref = hf_engine.sample([PROMPTS[1]], 1, SamplingParams(temperature=0, max_new_tokens=got.tokens))[0][
            0
        ]
        assert stop in tok.decode(tok(ref.text)["input_ids"]) or ref.text.find(stop) >= 0
        assert got.logprob == pytest.approx(ref.logprob, abs=2e-3)
        assert len(ids) >= got.tokens


def test_transformers_sample_depends_only_on_prompt_index_and_seed(tiny_model, one_torch_thread) -> None:
    params = SamplingParams(temperature=1.0, max_new_tokens=10, seed=5)
    texts = lambda groups: [[c.text for c in cs] for cs in groups]  # noqa: E731
    both = texts(TransformersEngine(tiny_model, batch_size=3).sample(["def f(x):", "import os\n"], 4, params))
    alone = texts(TransformersEngine(tiny_model, batch_size=16).sample(["import os\n"], 4, params))
    assert both[1] == alone[0] and len(set(both[0])) > 1
    other = texts(
        TransformersEngine(tiny_model).sample(["def f(x):"], 4, SamplingParams(1.0, 0.95, 10, (), 6))
    )
    assert other[0] != both[0]


def test_sampled_logprob_is_the_raw_model_logprob(tiny_model, one_torch_thread) -> None:
    from editlm.models.loading import load_model, load_tokenizer

    tok, model = load_tokenizer(tiny_model), load_model(tiny_model).eval()
    params = SamplingParams(temperature=0.5, top_p=0.8, max_new_tokens=8, seed=1)
    for engine in (
        TransformersEngine(tiny_model),
        load_engine("ctranslate2", tiny_model, compute_type="float32"),
    ):
        for c in engine.sample(["def f(x):"], 3, params)[0]:
            prompt_ids = tok("def f(x):")["input_ids"]
            new = tok(c.text, add_special_tokens=False)["input_ids"]
            if len(new) == c.tokens and tok.decode(new) == c.text:  # retokenisation is exact
                assert c.logprob == pytest.approx(_raw_logprob(model, prompt_ids, new), abs=2e-3)


def test_ctranslate2_sampling_is_seeded_per_prompt(tiny_model) -> None:
    engine = load_engine("ctranslate2", tiny_model, compute_type="float32")
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    first = engine.sample(["def f(x):", "import os\n"], 3, params)
    again = engine.sample(["import os\n"], 3, params)
    assert [c.text for c in first[1]] == [c.text for c in again[0]]
    assert len({c.text for c in first[0]}) > 1
    assert [c.text for c in engine.sample(["import os\n"], 3, SamplingParams(1.0, 0.95, 8, (), 4))[0]] != [
        c.text for c in again[0]
    ]


def test_predictions_change_speed_not_output(tiny_model, one_torch_thread) -> None:
    engine = TransformersEngine(tiny_model)
    prompts = ["def add(a, b):\n    return", "<NME> a.py\n<BEF> x = 1\n<MSG> Fix\n<DFF>"]
    predictions = ["def add(a, b):\n    return " + "turn" * 20, "x = 1\n"]
    for params in (
        SamplingParams(temperature=0, max_new_tokens=16),
        SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=16, seed=2),
        SamplingParams(temperature=0.7, max_new_tokens=16, seed=2, stop=("\n",)),
    ):
        plain = engine.sample(prompts, 2, params)
        engine.stats.update(drafted=0, accepted=0)
        fast = engine.sample(prompts, 2, params, predictions=predictions)
        assert [[(c.text, c.tokens, c.finish) for c in cs] for cs in fast] == [
            [(c.text, c.tokens, c.finish) for c in cs] for cs in plain
        ]
        assert [c.logprob for cs in fast for c in cs] == pytest.approx(
            [c.logprob for cs in plain for c in cs], abs=1e-3
        )
        if params.greedy:  # the tiny model repeats "turn": the prediction's drafts are accepted
            assert engine.stats["accepted"] > 5


def test_drafter_follows_the_prediction() -> None:
    drafter = Drafter([1, 2, 3, 4, 5, 1, 2, 9])
    assert drafter.draft([7, 1, 2], 3) == [3, 4, 5]  # the first occurrence of (1, 2)
    drafter.advance(1)  # 3 accepted, then something else was generated
    assert drafter.draft([1, 2, 3, 8], 2) == []  # 8 never occurs
    assert drafter.draft([5, 1], 2) == [2, 3] or drafter.draft([5, 1], 2) == [2, 9]
    assert Drafter([]).draft([1], 3) == []
    # no match in the prediction: the context's own latest earlier occurrence is continued
    assert Drafter([1, 2]).draft([5, 6, 7, 8, 5, 6], 3) == [7, 8, 5]
    assert Drafter([1, 2]).draft([5, 6, 7], 3) == []


def test_finish_rules(small_tokenizer_dir) -> None:
    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(small_tokenizer_dir)
    ids = tok("return x\ndef g():", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    assert finish(tok, ids + [eos, 5], [-1.0] * (len(ids) + 2), [eos], (), 50) == (
        "return x\ndef g():",
        len(ids) + 1,
        -(len(ids) + 1.0),
        "stop",
    )
    text, count, _, reason = finish(tok, ids, None, [eos], ("\ndef",), 50)
    assert (text, reason) == ("return x", "stop") and count < len(ids)
    assert finish(tok, ids, None, [eos], (), len(ids))[3] == "length"


def test_prompt_too_long_is_typed(tiny_model) -> None:
    with pytest.raises(PromptTooLong, match="context"):
        TransformersEngine(tiny_model).sample(["x " * 600], 1, SamplingParams(max_new_tokens=8))


def test_conversion_cache_is_keyed_by_weights_outside_the_model(tiny_model, tmp_path) -> None:
    import shutil
    import stat

    import torch

    from editlm.models.convert import ctranslate2_model
    from editlm.models.loading import load_model, load_tokenizer, save_checkpoint

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    before = sorted(os.listdir(model_dir))
    for path in [model_dir, *model_dir.iterdir()]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        first = ctranslate2_model(model_dir, "float32", cache_dir=tmp_path / "cache")
        greedy = SamplingParams(temperature=0, max_new_tokens=8)
        old = load_engine("ctranslate2", model_dir, compute_type="float32", cache_dir=tmp_path / "cache")
        old_text = old.sample(["def f(x):"], 1, greedy)[0][0].text
    finally:
        for path in [model_dir, *model_dir.iterdir()]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert sorted(os.listdir(model_dir)) == before and not first.is_relative_to(model_dir)
    assert ctranslate2_model(model_dir, "float32", cache_dir=tmp_path / "cache") == first  # cached
    model, tok = load_model(model_dir), load_tokenizer(model_dir)  # "retrain" into the same directory
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)
    save_checkpoint(model, tok, model_dir)
    second = ctranslate2_model(model_dir, "float32", cache_dir=tmp_path / "cache")
    assert second != first
    new = load_engine("ctranslate2", model_dir, compute_type="float32", cache_dir=tmp_path / "cache")
    hf = TransformersEngine(model_dir).sample(["def f(x):"], 1, greedy)[0][0].text
    assert new.sample(["def f(x):"], 1, greedy)[0][0].text == hf != old_text


@pytest.mark.parametrize("family", ["phi", "starcoder2"])
def test_unconvertible_family_falls_back_with_a_warning(family, family_models) -> None:
    with pytest.raises(EngineUnavailable, match=family):
        load_engine("ctranslate2", family_models[family], fallback=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = load_engine("ctranslate2", family_models[family], compute_type="float32")
    assert engine.name == "transformers"
    assert any(family in str(w.message) and "falling back" in str(w.message) for w in caught)


def test_vllm_requests_and_refusal(tiny_model) -> None:
    from editlm.generate.vllm_engine import request_params, vllm_options

    with pytest.raises(EngineUnavailable, match="vLLM|CUDA"):
        load_engine("vllm", tiny_model)
    with pytest.raises(ValueError, match="unknown engine"):
        load_engine("nope", tiny_model)
    greedy = request_params(SamplingParams(temperature=0, stop=("<NME>",)), "p", 0, [0])
    assert greedy["n"] == 1 and greedy["temperature"] == 0 and greedy["skip_special_tokens"] is False
    assert greedy["stop"] == ["<NME>"] and greedy["stop_token_ids"] == [0]
    seeds = {request_params(SamplingParams(seed=1), "p", k, [0])["seed"] for k in range(4)}
    assert len(seeds) == 4
    options = vllm_options(tensor_parallel_size=2, dtype="bfloat16", max_model_len=2048, draft_tokens=8)
    assert options["tensor_parallel_size"] == 2 and options["max_model_len"] == 2048
    assert options["speculative_config"]["method"] == "ngram"


def test_cut_at_stop() -> None:
    assert cut_at_stop("abc\ndef x", ("\ndef", "\nclass")) == ("abc", True)
    assert cut_at_stop("abc", ("\ndef",)) == ("abc", False)
    assert cut_at_stop("a<NME>b<NME>", ("<NME>",)) == ("a", True)


def test_write_samples_resume_reproduces_one_run(tiny_model, tmp_path, one_torch_thread) -> None:
    from editlm.generate.samples import write_samples
    from editlm.io.tables import read_rows

    engine = TransformersEngine(tiny_model)
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    out = tmp_path / "samples.jsonl"
    write_samples(out, engine, "parity", "diff", 2, params, limit=2)
    summary = write_samples(out, engine, "parity", "diff", 2, params, limit=4)
    once = tmp_path / "once.jsonl"
    write_samples(once, engine, "parity", "diff", 2, params, limit=4)
    rows = list(read_rows(out))
    assert summary["inputs_written"] == 4
    assert len(rows) == 8 and all(set(r) >= {"task_id", "diff", "logprob", "sample", "tokens"} for r in rows)
    key = lambda r: (r["task_id"], r["sample"])  # noqa: E731
    resumed, single = sorted(rows, key=key), sorted(read_rows(once), key=key)
    assert [(r["task_id"], r["diff"], r["tokens"]) for r in resumed] == [
        (r["task_id"], r["diff"], r["tokens"]) for r in single
    ]
    # the same tokens; the logprob only to float noise (other prompts share the batch's padding)
    assert [r["logprob"] for r in resumed] == pytest.approx([r["logprob"] for r in single], abs=1e-4)


def test_call_inputs_take_arguments_not_answers() -> None:
    test = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(x=4) == 5\n"
    assert call_inputs(test, "add") == ["add(1, 2)", "add(x=4)"]
    assert call_inputs("not python (", "f") == []


def test_mbr_exec_picks_the_majority_behaviour() -> None:
    from editlm.evaluate.sandbox import Sandbox

    programs = [
        "def f(x):\n    return x * 2\n",
        "def f(x):\n    return x + x\n",
        "def f(x):\n    return x + 1\n",
        "def f(x):\n    raise ValueError\n",
    ]
    with Sandbox(workers=2) as box:
        chosen = mbr_exec(programs, ["f(1)", "f(5)"], box, logprobs=[-9.0, -1.0, -0.1, -0.01])
    assert chosen == 1  # agrees with program 0; the higher log-probability of the two wins


class _ScriptedEngine:
    """A stand-in model that answers every prompt with the given texts."""

    name = "scripted"

    def __init__(self, texts):
        self.texts = texts
        self.prompts = []

    def sample(self, prompts, n, params, predictions=None):
        self.prompts += prompts
        return [[Completion(t) for t in self.texts[:n]] for _ in prompts]


def test_self_repair_applies_a_fix_from_the_error_message() -> None:
    broken = "def f(x):\n    return y + 1\n"
    fixed = "def f(x):\n    return x + 1\n"
    engine = _ScriptedEngine(["not a diff", " " + make_diff(broken, fixed, headers=False) + "<NME> junk"])

    def run_tests(program):
        namespace: dict = {}
        try:
            exec(program, namespace)  # trusted test programs written above, not generated code
            assert namespace["f"](1) == 2
            return True, ""
        except Exception as exc:
            return False, f"Traceback...\n{type(exc).__name__}: {exc}"

    attempt = self_repair(engine, broken, run_tests, SamplingParams(), rounds=1, n=2)
    assert attempt.passed and attempt.program == fixed and attempt.samples_used == 2
    assert "<MSG> Fix NameError: name 'y' is not defined\n<DFF>" in engine.prompts[0]
    assert error_summary("") == "failing tests"
    assert repair_prompt("x", "E: boom").endswith("<MSG> Fix E: boom\n<DFF>")


def test_generate_cli_writes_samples(tiny_model, tmp_path) -> None:
    from typer.testing import CliRunner

    from editlm.cli import app

    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(
        app, ["generate", str(tiny_model), "-b", "parity", "--kind", "diff", "-n", "2", "-o", str(out),
              "--limit", "2", "--max-new-tokens", "8", "--engine", "ctranslate2", "--compute-type", "float32",
              "--stop", "\n", "--batch-size", "3", "--device", "cpu", "--temperature", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all("\n" not in r["diff"] for r in rows)
    bad = CliRunner().invoke(app, ["generate", str(tiny_model), "--engine", "vllm", "-o", str(out)])
    assert bad.exit_code != 0 and "vLLM" in bad.output


def test_finish_matches_a_brute_force_scan(small_tokenizer_dir) -> None:
    """The stop found from a decoded tail is the first one, at the first token that completes it,
    on random token sequences (byte-level pieces that split characters included)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from editlm.models.loading import load_tokenizer

    tok = load_tokenizer(small_tokenizer_dir)
    vocab = [i for i in range(len(tok)) if i not in tok.all_special_ids]

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.sampled_from(vocab), min_size=1, max_size=30), st.data())
    def check(ids, data):
        full = tok.decode(ids)
        start = data.draw(st.integers(0, max(len(full) - 1, 0)))
        stop = full[start : start + data.draw(st.integers(1, 4))] or "x"
        text, count, _, reason = finish(tok, ids, None, [tok.eos_token_id], (stop,), 100)
        first = next((k for k in range(1, len(ids) + 1) if stop in tok.decode(ids[:k])), None)
        if first is None:
            assert (text, count, reason) == (full, len(ids), "stop")  # ran out of tokens, not of budget
        else:
            assert count == first and reason == "stop" and stop not in text
            assert text == tok.decode(ids[:first]).split(stop)[0]

    check()


def test_a_prompt_longer_than_the_context_fails_alone():
    """One benchmark prompt that does not fit the model is that problem's failure with the reason,
    not the end of the whole benchmark's sampling."""
    from editlm.generate.engines import PromptTooLong, SamplingParams
    from editlm.generate.samples import sample_benchmark

    class Engine:
        name = "fake"

        def sample(self, prompts, n, params, predictions=None):
            if any(len(p) > 400 for p in prompts):
                raise PromptTooLong("the prompt has too many tokens for the model's context")
            return [
                [type("C", (), {"text": "x", "logprob": 0.0, "finish": "stop", "tokens": 1})()] * n
                for _ in prompts
            ]

    rows = dict(sample_benchmark(Engine(), "humaneval", "completion", 2, SamplingParams(), limit=8))
    assert len(rows) == 8
    failed = [t for t, r in rows.items() if "error" in r[0]]
    assert failed and len(failed) < 8
    assert all(len(rows[t]) == 2 and "not sampled" in rows[t][0]["error"] for t in failed)
    assert all(r[0]["completion"] == "x" for t, r in rows.items() if t not in failed)


def test_ctranslate2_callback_does_not_keep_the_engine_alive(tiny_model) -> None:
    """The stop callback holds no reference to the engine: CTranslate2 lets go of the callback in its
    own worker thread, and were that the engine's last reference, the engine's Generator would be
    freed there, join itself and abort the process (seen in the quickstart, one engine a checkpoint)."""
    engine = load_engine("ctranslate2", tiny_model, compute_type="float32")
    real, seen = engine.generator, []

    class Recording:
        def generate_batch(self, *args, **kwargs):
            seen.append(kwargs["callback"])
            return real.generate_batch(*args, **kwargs)

    engine.generator = Recording()
    engine.sample(["def f(x):"], 1, SamplingParams(temperature=0, max_new_tokens=6, stop=("\n",)))
    (callback,) = seen
    held = [cell.cell_contents for cell in callback.__closure__ or ()]
    assert callback is not None and not any(obj is engine for obj in held)


def test_keyed_sampling_draws_from_the_nucleus() -> None:
    """Inverse-CDF draws keyed by (key, step) follow softmax(logits / T) over the top-p nucleus,
    whether the randomness varies by key (samples) or by step (one sample's positions)."""
    import torch

    from editlm.generate.decoding import choose_tokens

    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 0.0, -3.0, 1.5, 0.2])
    n = 20000
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9), (1.3, 0.6)):
        probs = (logits / temperature).softmax(-1).double()
        ordered, order = probs.sort(descending=True)
        kept = order[(ordered.cumsum(-1) - ordered) < top_p]
        expected = torch.zeros_like(probs)
        expected[kept] = probs[kept] / probs[kept].sum()
        for keys, steps in ((range(n), [0] * n), ([7] * n, range(n))):
            tokens = choose_tokens(logits.expand(n, -1), temperature, top_p, list(keys), list(steps))
            freq = torch.bincount(tokens, minlength=len(logits)).double() / n
            assert freq[expected == 0].sum() == 0
            assert (freq - expected).abs().max() < 4 * (0.25 / n) ** 0.5
    # a row's draw does not depend on the other rows of the batch
    batch = torch.randn(5, 50)
    alone = [int(choose_tokens(batch[i : i + 1], 0.9, 0.95, [i], [3])[0]) for i in range(5)]
    assert choose_tokens(batch, 0.9, 0.95, list(range(5)), [3] * 5).tolist() == alone


def _damage(text: str, data) -> str:
    """What a prediction looks like next to the real output: spans deleted, replaced, inserted."""
    from hypothesis import strategies as st

    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 6))
        text = text[:at] + data.draw(st.text("turn ab(x):\n", max_size=6)) + text[at + cut :]
    return text


@pytest.mark.parametrize("draft_tokens", [1, 3, 32])
def test_speculation_with_damaged_predictions_keeps_the_output(tiny_model, one_torch_thread, draft_tokens):
    """Drafts from a prediction that is the real output with damage (wrong, missing or extra text)
    are partly accepted, partly rejected and cropped from the cache: the output stays the plain
    decoder's, greedy and sampled, token for token."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    engine = TransformersEngine(tiny_model, draft_tokens=draft_tokens, min_draft_tokens=1)
    prompt = "def add(a, b):\n    return"
    cases = [SamplingParams(temperature=0, max_new_tokens=20), SamplingParams(0.8, 0.9, 20, (), 3)]
    plain = [engine.sample([prompt], 2, params)[0] for params in cases]

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        which = data.draw(st.integers(0, 1))
        prediction = _damage(prompt + plain[which][0].text, data)
        fast = engine.sample([prompt], 2, cases[which], predictions=[prediction])[0]
        assert [(c.text, c.tokens, c.finish) for c in fast] == [
            (c.text, c.tokens, c.finish) for c in plain[which]
        ]
        assert [c.logprob for c in fast] == pytest.approx([c.logprob for c in plain[which]], abs=1e-3)

    check()


def test_a_prediction_that_is_the_output_takes_few_passes(tiny_model, one_torch_thread) -> None:
    """With the output as the prediction, drafts are accepted whole and widen: far fewer forward
    passes than tokens."""
    engine = TransformersEngine(tiny_model, draft_tokens=16)
    prompt, params = "def add(a, b):\n    return", SamplingParams(temperature=0, max_new_tokens=48)
    out = engine.sample([prompt], 1, params)[0][0]
    engine.stats.update(drafted=0, accepted=0, forward=0)
    again = engine.sample([prompt], 1, params, predictions=[prompt + out.text])[0][0]
    assert again.text == out.text and out.tokens == 48
    assert engine.stats["accepted"] >= 40 and engine.stats["forward"] <= 10
