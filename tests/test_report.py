"""``editlm report`` and ``editlm evaluate`` from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from editlm.cli import app
from editlm.edits.diff import make_diff
from editlm.evaluate.benchmarks import get_benchmark
from editlm.evaluate.benchmarks.parity import CORRECT
from editlm.evaluate.report import find_runs, load_curves, write_report
from editlm.evaluate.sandbox import detect_isolation

runner = CliRunner()


def _summary(benchmark="parity", passk=None, groups=None):
    return {
        "benchmark": benchmark,
        "samples": 10,
        "problems": 5,
        "problems_attempted": 5,
        "pass_rate": 0.4,
        "statuses": {"ok": 4, "error": 6},
        "pass@k": passk or {"pass@1": 0.4, "pass@5": 0.9},
        "groups": groups or {},
        "top_failure_reasons": {"NameError": 6},
    }


def test_report_tables_and_plots(tmp_path):
    groups = {
        f"bugs={n}": {"samples": 2, "passed": 1, "pass_rate": 0.5 / n, "pass@k": {"pass@1": 0.5 / n}}
        for n in range(1, 6)
    }
    for name, passk in [("diff-350m", {"pass@1": 0.1, "pass@10": 0.3}), ("codegen", {"pass@1": 0.2})]:
        run = tmp_path / name
        run.mkdir()
        (run / "summary.json").write_text(json.dumps(_summary(passk=passk, groups=groups)))
    (tmp_path / "curves.json").write_text(
        json.dumps({"denoise": [0.9, 0.5, 0.2], "b": {"steps": [0, 10], "values": [1, 0]}})
    )
    report = write_report(tmp_path)
    text = report.read_text()
    assert "| diff-350m | parity | 10 | 5/5 | 40.0 | 10.0 | 30.0 |" in text
    assert "| codegen | parity | 10 | 5/5 | 40.0 | 20.0 | - |" in text
    assert "| bugs=2 | 2 | 25.0 | 25.0 |" in text
    for png in ("pass_at_k.png", "parity_bugs.png", "edit_distance.png"):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
    assert set(find_runs(tmp_path)) == {"diff-350m", "codegen"}
    assert load_curves(tmp_path)["b"] == ([0, 10], [1, 0])


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path)
    (tmp_path / "curves.json").write_text(json.dumps({"x": {"steps": [1], "values": [1, 2]}}))
    with pytest.raises(ValueError, match="1 steps but 2 values"):
        write_report(tmp_path)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "error" in result.output


@pytest.mark.skipif(not detect_isolation().network, reason="no network namespace here")
def test_cli_evaluate_then_report(tmp_path):
    bench = get_benchmark("parity")
    samples = tmp_path / "samples.jsonl"
    with samples.open("w") as f:
        for task, problem in bench.problems().items():
            f.write(json.dumps({"task_id": task, "diff": make_diff(problem.source, CORRECT)}) + "\n")
            f.write(
                json.dumps({"task_id": task, "diff": make_diff(problem.source, problem.source + "\n# hm")})
                + "\n"
            )
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["evaluate", str(samples), "-b", "parity", "-o", str(out), "-k", "1,2", "-w", "2", "--metrics"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@k"] == {"pass@1": 0.5, "pass@2": 1.0}
    assert summary["groups"]["bugs=5"]["pass_rate"] == 0.5
    assert 0 <= summary["metrics"]["codebleu"] <= 1 and summary["metrics"]["syntactic_validity"] == 1.0
    assert len((out / "results.jsonl").read_text().splitlines()) == 10
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0 and (out / "report.md").exists() and (out / "parity_bugs.png").exists()
    result = runner.invoke(app, ["evaluate", str(samples), "-b", "nonesuch", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown benchmark" in result.output


def test_cli_benchmarks_lists_and_writes_prompts(tmp_path):
    result = runner.invoke(app, ["benchmarks"])
    assert result.exit_code == 0 and "humaneval\t164 problems" in result.output and "bugfix" in result.output
    out = tmp_path / "prompts.jsonl"
    result = runner.invoke(app, ["benchmarks", "parity", "--kind", "diff", "-o", str(out)])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == [f"Parity/{n}" for n in range(1, 6)]
    assert rows[0]["prompt"].endswith("<MSG> Fixed bugs\n<DFF>")


def test_other_summaries_are_not_runs(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "summary.json").write_text(json.dumps({"steps": 10, "loss": 1.5}))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "summary.json").write_text(json.dumps(_summary()))
    assert list(find_runs(tmp_path)) == ["eval"]


def test_report_tolerates_a_summary_missing_group_fields(tmp_path) -> None:
    """A hand-made or older summary.json without per-group samples/pass@k still gives a report."""
    import json

    from editlm.evaluate.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    summary = {"benchmark": "parity", "pass@k": {"pass@1": 0.25},
               "groups": {"bugs=1": {"pass_rate": 0.5}, "bugs=2": {}}}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    report = write_report(tmp_path).read_text()
    assert "| bugs=2 | - | - |" in report
    assert (tmp_path / "parity_bugs.png").exists() and (tmp_path / "pass_at_k.png").exists()
