"""``editlm decontaminate``: a column that is not there is an error, and the default checks the text
columns of editlm's own outputs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from editlm.cli import app
from editlm.evaluate.benchmarks.parity import buggy


def _table(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_missing_column_is_an_error_not_a_clean_pass(tmp_path):
    table = _table(tmp_path / "rows.jsonl", [{"prompt": buggy(1), "completion": "x"}])
    result = CliRunner().invoke(
        app, ["decontaminate", str(table), "-o", str(tmp_path / "out.jsonl"), "--columns", "content"]
    )
    assert result.exit_code != 0 and "content" in result.output and "prompt" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_the_default_checks_prompt_and_completion(tmp_path, one_torch_thread):
    rows = [{"prompt": f"<NME> p.py\n<BEF> {buggy(3)}\n<MSG> Fixed bugs\n<DFF>", "completion": " x"},
            {"prompt": "<NME> a.py\n<BEF> y = 1\n<MSG> Fix\n<DFF>", "completion": " @@ -1 +1 @@\n-y = 1\n+y = 2\n"}]  # fmt: skip
    table = _table(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "clean.jsonl"
    result = CliRunner().invoke(app, ["decontaminate", str(table), "-o", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert kept == rows[1:]
