"""The main job end to end at the smallest size: every stage runs, writes its output, and a rerun
resumes instead of redoing the work."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from editlm.cli import app


def test_quickstart_runs_every_stage_and_resumes(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["quickstart", "-o", str(out), "--programs", "24", "--pretrain-steps", "4", "--sft-steps", "4",
            "--problems", "2", "-n", "2", "--seed", "3"]  # fmt: skip
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

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("[skip]") >= 8 and "[done]" not in again.output
