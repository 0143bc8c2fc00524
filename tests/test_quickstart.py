"""The main job end to end at the smallest size: every stage runs, writes its output, and a rerun
resumes instead of redoing the work; and the quickstart's own parts (data split, bug samples in the
4-Parity format, the held-out score, the report) on material they did not make."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from editlm.cli import app
from editlm.edits.diff import NO_NEWLINE, apply_diff
from editlm.evaluate.benchmarks.parity import CORRECT, buggy
from editlm.quickstart.diff_task import (
    DiffQuickstart,
    bug_samples,
    contamination_report,
    score_fixes,
    settings_from,
    split_programs,
)

TINY_DIFF = ["--set", "programs=30", "--set", "max_lines=8", "--set", "vocab_size=400", "--set", "seq_len=256",
             "--set", "snapshots=2", "--set", "heldout_samples=3", "--set", "curve_n=1", "--set", "max_new_tokens=24", "--set", "threads=1",
             "--set", "copy_steps=2", "--set", "copy_rows=40",
             "--pretrain-steps", "2", "--sft-steps", "3", "--parity-n", "1", "--bugfix-problems", "1"]  # fmt: skip


def _editlm(args: list[str]) -> subprocess.CompletedProcess:
    """The command as a user runs it: a fresh interpreter (no engines, threads or state left over by
    other tests in this worker), one torch thread as under ``pytest -n 2``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "editlm.cli", *args], capture_output=True, text=True, env=env
    )
    done.output = done.stdout + done.stderr
    return done


def test_diff_quickstart_runs_every_stage_and_resumes(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["quickstart", "-o", str(out), "--seed", "1", *TINY_DIFF]
    # a settings search: up to the held-out split, no benchmark sampled or scored
    search = _editlm([*args, "--set", "benchmarks=false"])
    assert search.returncode == 0, search.output
    held_scores = json.loads((out / "heldout.json").read_text())
    assert len(held_scores) == 2 and all(0.0 <= h["token_accuracy"] <= 1.0 for h in held_scores)
    assert not (out / "eval").exists() and not (out / "report.md").exists()
    first = _editlm(args)  # the same run completed: every stage so far is resumed, the rest run
    assert first.returncode == 0, first.output
    assert "[skip] fine-tuning" in first.output
    for name in ("programs.jsonl", "bugs-train.jsonl", "bugs-heldout.jsonl", "decontamination.json",
                 "tokenizer/tokenizer.json", "pretrained/config.json", "copier/config.json", "copy.jsonl",
                 "diff-model/model.safetensors",
                 "snapshots/snapshots.json", "heldout.json", "eval/parity/summary.json",
                 "eval/parity-greedy/summary.json", "curve.json", "eval/bugfix-greedy/summary.json",
                 "report.md", "parity.png", "timings.json"):  # fmt: skip
        assert (out / name).exists(), name
    # each training stage starts from the one before: code -> copying lines -> bug fixes
    trained = {name: json.loads((out / name / "editlm_train.json").read_text())["config"]["model"]
               for name in ("copier", "diff-model")}  # fmt: skip
    assert trained == {"copier": str(out / "pretrained"), "diff-model": str(out / "copier")}
    parity = json.loads((out / "eval" / "parity" / "summary.json").read_text())
    assert parity["samples"] == 5 and set(parity["groups"]) == {f"bugs={n}" for n in range(1, 6)}
    assert "failures" in parity
    curve = json.loads((out / "curve.json").read_text())
    assert len(curve) == 2 and curve[0]["step"] < curve[1]["step"] == 3
    report = (out / "report.md").read_text()
    assert "Diff-350M" in report and "CodeGen-2B" in report and "| 28.0 |" in report
    assert "contaminated" in report and "Wall time per stage" in report
    timings = json.loads((out / "timings.json").read_text())
    assert all(t["wall_s"] >= 0 and t["cpu_s"] >= 0 for t in timings.values())
    # the training rows are the held-out split's complement, program by program
    programs = [json.loads(line) for line in (out / "programs.jsonl").read_text().splitlines()]
    held = {p["source"] for p in programs if p["split"] == "heldout"}
    train_rows = [json.loads(line) for line in (out / "bugs-train.jsonl").read_text().splitlines()]
    assert held and not held & {r["source_id"] for r in train_rows}

    again = _editlm(args)
    assert again.returncode == 0, again.output
    assert "[done]" not in again.output and again.output.count("[skip]") >= 12


def test_lintseq_quickstart_runs_every_stage_and_resumes(tmp_path, one_torch_thread) -> None:
    out = tmp_path / "run"
    args = ["quickstart", "--task", "lintseq", "-o", str(out), "--programs", "24", "--pretrain-steps", "4",
            "--sft-steps", "4", "--problems", "2", "-n", "2", "--seed", "3"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    for name in ("corpus.jsonl", "lintseq.parquet", "tokenizer/tokenizer.json",
                 "pretrained/config.json", "lintseq-model/model.safetensors", "samples.jsonl",
                 "evaluation/summary.json", "report.md"):  # fmt: skip
        assert (out / name).exists(), name
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert summary["samples"] == 4 and summary["problems_attempted"] == 2
    assert "pass@1" in summary["pass@k"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {s["task_id"] for s in samples} == {"HumanEval/0", "HumanEval/1"}
    assert all("edits" in s for s in samples)
    report = (out / "report.md").read_text()
    assert "edit sequences that decode" in report

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("[skip]") >= 8 and "[done]" not in again.output


def test_unknown_task_and_setting_are_refused() -> None:
    assert CliRunner().invoke(app, ["quickstart", "--task", "fim"]).exit_code != 0
    result = CliRunner().invoke(app, ["quickstart", "--set", "nonsense=1"])
    assert result.exit_code != 0 and "nonsense" in result.output
    with pytest.raises(ValueError, match="sft_steps must be int"):
        settings_from({}, ["sft_steps=many"])
    with pytest.raises(ValueError, match="copy_source"):  # refused before any stage runs
        settings_from({}, ["copy_source=poetry"])
    assert settings_from({}, ["kinds=undefined-name,wrong-constant"]).kinds == (
        "undefined-name",
        "wrong-constant",
    )


def test_split_keeps_programs_whole_and_is_seeded() -> None:
    rows = [{"source": str(i)} for i in range(50)]
    train, held = split_programs(rows, 0.1, seed=4)
    assert len(held) == 5 and len(train) == 45
    assert {r["source"] for r in train}.isdisjoint(r["source"] for r in held)
    assert split_programs(rows, 0.1, seed=4) == (train, held)
    assert split_programs(rows, 0.1, seed=5) != (train, held)


# Standard-library-like programs, written for this test (not from any benchmark).
PROGRAMS = [
    {"source": "a", "path": "pkg/scale.py",
     "program": "def scale(values, factor):\n    out = []\n    for value in values:\n        out.append(value * factor + 1)\n    return out\n"},
    {"source": "b", "path": "pkg/window.py",
     "program": "def window(items, size):\n    start = 0\n    total = len(items)\n    while start + size <= total:\n        yield items[start:start + size]\n        start = start + 2\n"},
]  # fmt: skip


def test_bug_samples_follow_the_4_parity_format_and_fix_exactly() -> None:
    settings = DiffQuickstart(per_count=3)
    programs = [{**p, "source": f"{p['source']}{copy}"} for p in PROGRAMS for copy in range(4)]
    rows, skips = bug_samples(programs, settings, decontaminate=False)
    assert rows and not skips
    for row in rows:
        assert row["name"] in ("pkg/scale.py", "pkg/window.py")  # real file names, not program.py
        assert row["prompt"] == f"<NME> {row['name']}\n<BEF> {row['before']}\n<MSG> {row['message']}\n<DFF>"
        assert apply_diff(row["before"], row["diff"]) == row["after"]
        assert row["before"].endswith("\n") == row["after"].endswith("\n")
    endings = {row["after"].endswith("\n") for row in rows}
    assert endings == {True, False}  # "mixed": files with and without a final newline
    # a fix of a file's last line, where the file has no final newline, says so as 4-Parity's fix does
    assert any(NO_NEWLINE in row["diff"] for row in rows if not row["after"].endswith("\n"))
    assert not any(NO_NEWLINE in row["diff"] for row in rows if row["after"].endswith("\n"))
    assert {"Fixed bugs", "Fix bugs", "Fix bug"} & {row["message"] for row in rows}
    assert {row["n_bugs"] for row in rows} >= {1, 2, 3}


def test_contamination_report_finds_a_benchmark_program_in_a_row() -> None:
    clean = {
        "prompt": "<NME> a.py\n<BEF> x = 1\n<MSG> Fix\n<DFF>",
        "completion": " @@ -1 +1 @@\n-x = 1\n+x = 2\n",
    }
    leaked = {"prompt": f"<NME> p.py\n<BEF> {buggy(2)}\n<MSG> Fixed bugs\n<DFF>", "completion": " ..."}
    report = contamination_report([clean, leaked, clean])
    assert report["rows_checked"] == 3 and report["contaminated_rows"] == 1
    assert report["by_benchmark"] == {"parity": 1}


def test_score_fixes_counts_applying_and_exact_diffs() -> None:
    row = {"before": buggy(1), "after": CORRECT}
    good = " @@ -3 +3 @@\n-    bit_sum = sum([c1,b2,b3,b4])\n+    bit_sum = sum([b1,b2,b3,b4])\n"
    wrong = " @@ -3 +3 @@\n-    bit_sum = sum([c1,b2,b3,b4])\n+    bit_sum = sum([b2,b2,b3,b4])\n"
    broken = " @@ -3 +3 @@\n-    nothing like this\n+    x\n"
    scores = score_fixes([row, row, row, row], [good + "<NME> next", wrong, broken, ""])
    assert scores == {"samples": 4, "applies": 0.5, "exact_fix": 0.25}


def test_diff_token_accuracy_matches_one_prediction_at_a_time(tiny_model):
    import torch

    from editlm.models.loading import load_model, load_tokenizer
    from editlm.models.tokens import encode_prompts
    from editlm.quickstart.diff_task import diff_token_accuracy

    tokenizer, model = load_tokenizer(tiny_model), load_model(tiny_model).eval()
    prompt = "<NME> m.py\n<BEF> def f(a):\n    return a\n<MSG> Fix bug\n<DFF>"
    start = encode_prompts(tokenizer, [prompt])[0]
    with torch.no_grad():  # the model's own greedy tokens, one at a time: every one is its argmax
        own = model.generate(torch.tensor([start]), max_new_tokens=12, do_sample=False)[
            0, len(start) :
        ].tolist()
    completion = " @@ -2 +2 @@\n-    return a\n+    return a + 1\n"
    target = tokenizer(completion, add_special_tokens=False)["input_ids"]
    hits = 0
    for i, token in enumerate(target):  # independent of the batched slice: a prefix per position
        with torch.no_grad():
            hits += int(model(input_ids=torch.tensor([start + target[:i]])).logits[0, -1].argmax()) == token
    row = {"prompt": prompt, "completion": completion}
    assert diff_token_accuracy(tiny_model, [row]) == hits / len(target)
    text = tokenizer.decode(own)
    if (
        tokenizer(text, add_special_tokens=False)["input_ids"] == own
    ):  # a text that re-encodes to the same ids
        assert diff_token_accuracy(tiny_model, [{"prompt": prompt, "completion": text}]) == 1.0
