"""CodeFusion pieces: the noise schedule, CPD masking, shapes and loss terms, corpora and errors."""

from __future__ import annotations

import math
import random

import pytest
import torch

from editlm.models.codefusion.config import CodeFusionConfig, ConfigError
from editlm.models.codefusion.pipeline import CodeFusionPipeline
from editlm.models.codefusion.presets import preset
from editlm.models.codefusion.schedule import NoiseSchedule, sqrt_betas
from editlm.models.codefusion.tasks import CorpusError, mask_code, name_spans, read_pairs, stdlib_pairs
from editlm.models.codefusion.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def pipe(small_tokenizer_dir):
    from editlm.models.loading import load_tokenizer

    return CodeFusionPipeline.create(
        load_tokenizer(small_tokenizer_dir), seed=0, device="cpu", **preset("tiny")
    )


# -- the noise schedule -------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 20, 1200])
def test_sqrt_schedule_is_monotone_and_alpha_bar_in_unit_interval(steps):
    schedule = NoiseSchedule.sqrt(steps)
    alpha_bar = schedule.alphas_cumprod
    assert alpha_bar.shape == (steps,)
    assert bool(((alpha_bar > 0) & (alpha_bar <= 1)).all())
    assert bool((alpha_bar[1:] < alpha_bar[:-1]).all())
    assert bool(((schedule.betas > 0) & (schedule.betas <= 0.999)).all())


def test_sqrt_schedule_follows_diffusion_lm_formula():
    steps = 100
    alpha_bar = NoiseSchedule.sqrt(steps).alphas_cumprod
    # cumprod of alpha_bar(s_{i+1}) / alpha_bar(s_i) telescopes (until the last, clipped, beta).
    for i in (0, 10, 50, 98):
        expected = (1 - math.sqrt((i + 1) / steps + 1e-4)) / (1 - math.sqrt(1e-4))
        assert float(alpha_bar[i]) == pytest.approx(expected, rel=1e-9)
    # The square-root schedule destroys signal fast at first: a quarter of the way, alpha_bar is ~0.5.
    assert 0.45 < float(alpha_bar[24]) < 0.55
    assert float(sqrt_betas(steps)[-1]) == pytest.approx(0.999)


def test_respaced_schedule_keeps_the_same_marginals():
    full = NoiseSchedule.sqrt(1200)
    short = full.respace(50)
    assert len(short.timesteps) == 50 and short.timesteps[0] == 0 and short.timesteps[-1] == 1199
    for i, t in enumerate(short.timesteps):
        assert float(short.alphas_cumprod[i]) == pytest.approx(float(full.alphas_cumprod[t]), rel=1e-9)
    assert full.respace(1).timesteps == [1199]
    with pytest.raises(ValueError):
        full.respace(1201)


def test_q_sample_and_implied_noise_invert_each_other():
    schedule = NoiseSchedule.sqrt(20)
    x0, eps = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    t = torch.tensor([0, 7, 19])
    x_t = schedule.q_sample(x0, t, eps)
    ab = schedule.alphas_cumprod[t].float().view(-1, 1, 1)
    assert torch.allclose(x_t, ab.sqrt() * x0 + (1 - ab).sqrt() * eps, atol=1e-6)
    assert torch.allclose(schedule.eps_from_x0(x_t, t, x0), eps, atol=1e-4)
    # The last reverse step returns the predicted x_0 itself (no noise, no x_t).
    assert torch.allclose(schedule.p_sample(x_t, 0, x0, torch.randn_like(x0)), x0, atol=1e-6)


# -- CPD masking --------------------------------------------------------------------------------------

CODE = 'def area(width, height):\n    """width * height"""\n    return width * height  # if not None\n'


def test_name_spans_are_identifiers_and_keywords_only():
    assert [s.text for s in name_spans(CODE)] == [
        "def",
        "area",
        "width",
        "height",
        "return",
        "width",
        "height",
    ]
    assert [s.text for s in name_spans('x = "a b c"  # y z\n')] == ["x"]
    assert name_spans("") == []


def test_mask_code_masks_about_thirty_percent_of_names_and_nothing_else():
    masked, spans = mask_code(CODE, "<M>", 0.3, random.Random(1))
    assert len(spans) == round(0.3 * 7) == 2
    assert masked.count("<M>") == 2
    assert all(span.text.isidentifier() for span in spans)
    # Putting the masked names back restores the program exactly: only those characters changed.
    restored = masked
    for span in spans:
        restored = restored.replace("<M>", span.text, 1)
    assert restored == CODE
    everything, _ = mask_code('x = "a b c"  # y z\n', "<M>", 1.0, random.Random(0))
    assert everything == '<M> = "a b c"  # y z\n'
    assert mask_code("'just a string'\n", "<M>", 0.3) == ("'just a string'\n", [])
    assert mask_code(CODE, "<M>", 0.3, random.Random(5)) == mask_code(CODE, "<M>", 0.3, random.Random(5))


# -- the model --------------------------------------------------------------------------------------


def test_shapes_of_each_component(pipe):
    config = pipe.config
    assert pipe.tokenizer.mask_token == "<|mask|>" and config.vocab_size == len(pipe.tokenizer)
    memory, mask = pipe.memory(["add two numbers", ""])
    assert memory.shape == (2, config.source_length, config.hidden)
    assert mask[1].sum() == 1  # an empty utterance still has one key
    ids = pipe.encode_code(["def f():\n    return 1\n", "x = 1\n"])
    assert ids.shape == (2, config.target_length)
    assert ids[1, -1] == config.pad_token_id
    x_t = torch.randn(2, config.target_length, config.embed_dim)
    x0_hat = pipe.model.denoise(x_t, torch.tensor([0, 5]), memory, mask)
    assert x0_hat.shape == x_t.shape
    hidden, logits = pipe.model.decode(x0_hat, memory, mask)
    assert hidden.shape == x_t.shape and logits.shape == (2, config.target_length, config.vocab_size)
    noise = pipe.model.noise_memory(2)
    assert noise.shape == memory.shape and not torch.equal(noise, pipe.model.noise_memory(2))


@pytest.mark.parametrize("objective,first", [("x0", "x0"), ("paper", "eps"), ("interpolate", "tokens")])
def test_loss_is_the_sum_of_its_three_terms(pipe, monkeypatch, objective, first):
    monkeypatch.setattr(pipe.model.config, "objective", objective)
    ids = pipe.encode_code(["def f():\n    return 1\n", "x = 1\n"])
    with torch.no_grad():
        memory, mask = pipe.memory(["one", "two"])
        losses = pipe.model.loss(ids, memory, mask, torch.Generator().manual_seed(0))
    assert set(losses) == {"loss", first, "decoder", "ce"}
    assert all(math.isfinite(float(v)) and float(v) > 0 for v in losses.values())
    assert float(losses["loss"]) == pytest.approx(float(losses[first] + losses["decoder"] + losses["ce"]))
    # An untrained head is near-uniform over the vocabulary.
    assert float(losses["ce"]) == pytest.approx(math.log(pipe.config.vocab_size), rel=0.1)


@pytest.mark.parametrize("objective,first", [("x0", "x0"), ("paper", "eps")])
def test_a_perfect_denoiser_has_zero_noise_error(pipe, monkeypatch, objective, first):
    """eps_hat is the noise implied by x0_hat: predicting x_0 exactly predicts the noise exactly."""
    monkeypatch.setattr(pipe.model.config, "objective", objective)
    ids = pipe.encode_code(["x = 1\n"])
    memory, mask = pipe.memory(["one"])
    x0 = pipe.model.embed(ids).detach()
    monkeypatch.setattr(pipe.model, "denoise", lambda x_t, t, m, mm, previous=None: x0)
    with torch.no_grad():
        losses = pipe.model.loss(ids, memory, mask, torch.Generator().manual_seed(0))
    assert float(losses[first]) < 1e-8
    assert float(losses["decoder"]) > 0.1


def test_the_papers_noise_error_is_the_x0_error_weighted_by_snr(pipe):
    """Why "x0" is the default: ||eps_hat - eps||^2 = SNR(t) ||x0_hat - x0||^2 for an x_0-predicting N,
    and SNR(t) spans seven orders of magnitude over the sqrt schedule."""
    schedule = pipe.model.schedule
    x0, x0_hat, eps = torch.randn(3, 4, 8, 16, dtype=torch.float64)
    for t in (0, schedule.num_steps // 2, schedule.num_steps - 1):
        tt = torch.full((4,), t)
        x_t = schedule.q_sample(x0, tt, eps)
        eps_error = ((schedule.eps_from_x0(x_t, tt, x0_hat) - eps) ** 2).mean()
        alpha_bar = schedule.alphas_cumprod[t]
        snr = alpha_bar / (1 - alpha_bar)
        assert float(eps_error) == pytest.approx(float(snr * ((x0_hat - x0) ** 2).mean()), rel=1e-6)
    snr = schedule.alphas_cumprod / (1 - schedule.alphas_cumprod)
    assert float(snr[0] / snr[-1]) > 1e3


def test_tied_head_reads_embeddings_and_grounding_agrees(pipe):
    """With H tied to L, D_s = L(v) reads as v through H and through grounding (nearest row of L)."""
    ids = pipe.encode_code(["def f(x):\n    return x + 1\n"])
    x0 = pipe.model.embed(ids)
    rms = x0.pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-5)  # rows of L at unit RMS
    assert torch.equal(pipe.model.round(x0), ids)
    with torch.no_grad():
        pipe.model.head_bias.zero_()
        assert torch.equal(pipe.model.logits(x0).argmax(-1), ids)


def test_same_seed_same_model_and_config_checks(small_tokenizer_dir):
    from editlm.models.loading import load_tokenizer

    a = CodeFusionPipeline.create(load_tokenizer(small_tokenizer_dir), seed=3, device="cpu", **preset("tiny"))
    b = CodeFusionPipeline.create(load_tokenizer(small_tokenizer_dir), seed=3, device="cpu", **preset("tiny"))
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    with pytest.raises(ConfigError, match="multiple of heads"):
        CodeFusionConfig(vocab_size=10, pad_token_id=0, hidden=30, heads=4)
    with pytest.raises(ConfigError, match="schedule"):
        CodeFusionConfig(vocab_size=10, pad_token_id=0, schedule="cosine")


def test_training_is_deterministic_with_a_seed(small_tokenizer_dir):
    from editlm.models.loading import load_tokenizer

    pairs = [("one", "x = 1\n"), ("two", "y = 2\n")]
    config = TrainConfig(pretrain_steps=4, finetune_steps=4, batch_size=2, log_every=1, seed=7)
    runs = []
    for _ in range(2):
        pipe = CodeFusionPipeline.create(
            load_tokenizer(small_tokenizer_dir), seed=7, device="cpu", **preset("tiny")
        )
        runs.append(train(pipe, pairs, config, progress=False))
    assert runs[0] == runs[1]
    assert [r["phase"] for r in runs[0]] == ["pretrain"] * 4 + ["finetune"] * 4


# -- corpora and errors -------------------------------------------------------------------------------


def test_read_pairs_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CorpusError, match="no rows"):
        read_pairs(empty, "utterance", "code")
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"utterance": "x"}\n')
    with pytest.raises(CorpusError, match="missing fields"):
        read_pairs(missing, "utterance", "code")
    good = tmp_path / "good.jsonl"
    good.write_text('{"nl": "one", "src": "x = 1"}\n{"nl": "blank", "src": "  "}\n')
    assert read_pairs(good, "nl", "src") == [("one", "x = 1")]


def test_training_refuses_an_empty_corpus(pipe):
    with pytest.raises(CorpusError):
        train(pipe, [], TrainConfig(finetune_steps=1), progress=False)
    with pytest.raises(CorpusError):
        train(pipe, [], TrainConfig(pretrain_steps=1, finetune_steps=0), pretrain_codes=[], progress=False)


def test_stdlib_pairs_are_docstring_to_function_without_docstring():
    import ast

    pairs = stdlib_pairs(limit=20)
    assert len(pairs) == 20
    for utterance, code in pairs:
        assert utterance and "\n" not in utterance
        node = ast.parse(code).body[0]
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        assert utterance not in " ".join(code.split())  # the docstring is gone from the code


def test_cpd_reads_the_whole_masked_program_and_e_pretrains_as_a_masked_lm(small_tokenizer_dir):
    from editlm.models.codefusion.train import TrainConfig, train
    from editlm.models.loading import load_tokenizer

    sizes = {**preset("tiny"), "source_length": 8, "target_length": 32}
    pipe = CodeFusionPipeline.create(load_tokenizer(small_tokenizer_dir), seed=0, device="cpu", **sizes)
    assert pipe.config.encoder_length == 32
    code = "def add(first, second):\n    total = first + second\n    return total\n"
    ids, mask = pipe.encode_source([code], pipe.config.encoder_length)
    assert int(mask.sum()) > pipe.config.source_length  # not cut at the utterance length
    assert pipe.model.encode(ids, mask).shape[1] == 32
    codes = [code.replace("add", name) for name in ("plus", "add", "sum_two", "combine")] * 4
    history = train(
        pipe, [("add", code)], TrainConfig(encoder_steps=60, pretrain_steps=2, finetune_steps=0, batch_size=8,
                                           lr=3e-3, log_every=1), pretrain_codes=codes, progress=False,
    )  # fmt: skip
    mlm = [r["loss"] for r in history if r["phase"] == "encoder"]
    assert len(mlm) == 60 and sum(mlm[-10:]) / 10 < 0.6 * sum(mlm[:10]) / 10


def test_checkpoints_from_before_the_objective_setting_load_as_the_original_model():
    config = CodeFusionConfig.from_dict({"vocab_size": 10, "pad_token_id": 0})
    assert (config.objective, config.tie_head, config.normalize_embeddings) == ("paper", False, False)
    with pytest.raises(ConfigError, match="objective"):
        CodeFusionConfig(vocab_size=10, pad_token_id=0, objective="eps")


def test_conala_style_pairs_are_short_valid_bodies_with_a_one_line_intent():
    from editlm.models.codefusion.tasks import conala_pairs, is_valid_body

    pairs = conala_pairs(files=40)
    assert len(pairs) > 20
    assert len({code for _, code in pairs}) == len(pairs)
    for intent, code in pairs:
        assert intent and "\n" not in intent and intent == intent.strip()
        assert len(code) <= 120 and is_valid_body(code) and not code.startswith((" ", '"""'))


def test_validity_compiles_a_body_and_never_runs_it(tmp_path):
    from editlm.models.codefusion.tasks import is_valid_body

    for good in ("return 1", "yield x", "await f()", "if a:\n    return b\nreturn c", ""):
        assert is_valid_body(good), good
    for bad in ("return (", "x = ", "def", "    return 1\n  x", "\ufffd\ufffd"):
        assert not is_valid_body(bad), bad
    marker = tmp_path / "ran"
    assert is_valid_body(f"open({str(marker)!r}, 'w').write('x')") and not marker.exists()


def test_score_interpolation_keeps_x0_hat_among_the_embeddings(pipe, monkeypatch):
    """objective "interpolate": x0_hat is the expected row of L under N's token distribution, so it
    is a convex combination of rows, and a confident N gives exactly the row of its token."""
    monkeypatch.setattr(pipe.model.config, "objective", "interpolate")
    model, config = pipe.model, pipe.config
    memory, mask = pipe.memory(["one"])
    x_t = torch.randn(1, config.target_length, config.embed_dim)
    with torch.no_grad():
        x0_hat = model.denoise(x_t, torch.tensor([7]), memory, mask)
        table = model.table()
    assert x0_hat.shape == x_t.shape
    assert float(x0_hat.norm(dim=-1).max()) <= float(table.norm(dim=-1).max()) + 1e-4
    sure = 1000.0 * table[5] / model.head_scale  # logits peak at token 5 everywhere
    monkeypatch.setattr(model, "_denoiser", lambda *a: sure.expand(1, config.target_length, -1))
    with torch.no_grad():
        confident = model.denoise(x_t, torch.tensor([7]), memory, mask)
        losses = model.loss(pipe.encode_code(["x = 1\n"]), memory, mask, torch.Generator().manual_seed(0))
    assert torch.allclose(confident, table[5].expand_as(confident), atol=1e-4)
    assert set(losses) == {"loss", "tokens", "decoder", "ce"} and float(losses["tokens"]) > 1.0
