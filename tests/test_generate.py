"""Generation: engines (transformers, CTranslate2, vLLM's refusal), benchmark sampling, MBR-exec, repair."""

from __future__ import annotations

import json

import pytest

from editlm.edits.diff import make_diff
from editlm.generate.engines import (
    Completion,
    EngineUnavailable,
    SamplingParams,
    TransformersEngine,
    cut_at_stop,
    load_engine,
)
from editlm.generate.repair import error_summary, repair_prompt, self_repair
from editlm.generate.rerank import call_inputs, mbr_exec


def test_cut_at_stop() -> None:
    assert cut_at_stop("abc\ndef x", ("\ndef", "\nclass")) == ("abc", True)
    assert cut_at_stop("abc", ("\ndef",)) == ("abc", False)
    assert cut_at_stop("a<NME>b<NME>", ("<NME>",)) == ("a", True)


def test_transformers_engine_sampling_is_seeded_and_shaped(tiny_model) -> None:
    engine = TransformersEngine(tiny_model, batch_size=3)
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=5)
    first = engine.sample(["def f(x):", "import os\n"], 4, params)
    again = engine.sample(["def f(x):", "import os\n"], 4, params)
    assert [len(c) for c in first] == [4, 4]
    assert [[c.text for c in cs] for cs in first] == [[c.text for c in cs] for cs in again]
    other = engine.sample(
        ["def f(x):", "import os\n"], 4, SamplingParams(temperature=1.0, max_new_tokens=12, seed=6)
    )
    assert [[c.text for c in cs] for cs in first] != [[c.text for c in cs] for cs in other]
    assert all(c.logprob is not None and c.logprob <= 0 for cs in first for c in cs)
    greedy = engine.sample(["def f(x):"], 3, SamplingParams(temperature=0, max_new_tokens=12))[0]
    assert len({c.text for c in greedy}) == 1


def test_ctranslate2_matches_transformers_greedy(tiny_model) -> None:
    params = SamplingParams(temperature=0, max_new_tokens=16)
    prompts = ["def add(a, b):\n    return", "class Foo:\n"]
    hf = TransformersEngine(tiny_model).sample(prompts, 1, params)
    ct2 = load_engine("ctranslate2", tiny_model, compute_type="float32").sample(prompts, 1, params)
    assert [c[0].text for c in ct2] == [c[0].text for c in hf]
    assert (tiny_model / "ctranslate2-float32" / "model.bin").exists()


def test_vllm_refuses_clearly_without_gpu(tiny_model) -> None:
    with pytest.raises(EngineUnavailable, match="vLLM|CUDA"):
        load_engine("vllm", tiny_model)
    with pytest.raises(ValueError, match="unknown engine"):
        load_engine("nope", tiny_model)


def test_write_samples_resumes_per_task(tiny_model, tmp_path) -> None:
    from editlm.generate.samples import write_samples
    from editlm.io.tables import read_rows

    engine = TransformersEngine(tiny_model)
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    out = tmp_path / "samples.jsonl"
    write_samples(out, engine, "parity", "diff", 2, params, limit=2)
    summary = write_samples(out, engine, "parity", "diff", 2, params, limit=4)
    rows = list(read_rows(out))
    assert summary["inputs_written"] == 4
    assert len(rows) == 8 and all(set(r) >= {"task_id", "diff", "logprob", "sample"} for r in rows)
    assert len({r["task_id"] for r in rows}) == 4


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

    def sample(self, prompts, n, params):
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
              "--limit", "2", "--max-new-tokens", "8"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    bad = CliRunner().invoke(app, ["generate", str(tiny_model), "--engine", "vllm", "-o", str(out)])
    assert bad.exit_code != 0 and "vLLM" in bad.output
