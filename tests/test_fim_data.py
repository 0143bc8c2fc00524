"""The FIM corpus transform: rate and order as asked, documents recoverable, sentinels refused."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from editlm.data.transforms.fim import FimJob, fim_row, fim_rows
from editlm.edits.diff_model import FormatError
from editlm.edits.fim import FIM_MIDDLE, parse_fim


@settings(max_examples=200, deadline=None)
@given(doc=st.text(max_size=200).filter(lambda d: "<fim_" not in d), seed=st.integers())
def test_every_row_gives_its_document_back(doc, seed):
    row = fim_row(doc, random.Random(seed), rate=0.7, spm_rate=0.5)
    if not row["fim"]:
        assert row["text"] == doc and row["order"] is None
        return
    order = row["order"]
    sample = parse_fim(row["text"], order)
    if order == "psm":
        assert sample.document == doc
    else:  # SPM keeps prefix + middle as one run after <fim_middle>
        assert sample.middle + sample.suffix == doc


def test_rates_are_respected():
    rows = [fim_row("x = 1\n" * 5, random.Random(i), rate=0.5, spm_rate=0.25) for i in range(2000)]
    fim = [r for r in rows if r["fim"]]
    assert 0.45 < len(fim) / len(rows) < 0.55
    assert 0.2 < sum(r["order"] == "spm" for r in fim) / len(fim) < 0.3
    assert not any(fim_row("abc", random.Random(i), rate=0.0)["fim"] for i in range(50))
    assert all(fim_row("abc", random.Random(i), rate=1.0)["fim"] for i in range(50))
    spm = next(r for r in rows if r["order"] == "spm")
    assert spm["text"].startswith("<fim_prefix><fim_suffix>") and FIM_MIDDLE in spm["text"]


def test_sentinels_and_bad_rows_are_refused():
    with pytest.raises(FormatError):
        fim_row("a <fim_middle> b", random.Random(0))
    job = FimJob(decontaminate=False)
    assert fim_rows(1, "a <fim_suffix> b", job) == ([], "contains a FIM sentinel")
    assert fim_rows(1, "", job)[1] == "empty or not text"
    assert fim_rows(1, "x" * 50, FimJob(max_chars=10))[1] == "too large"
    assert fim_rows(1, "x = 1\n", job) == fim_rows(1, "x = 1\n", job)  # deterministic per key
    with pytest.raises(ValueError):
        FimJob(rate=1.5)


def test_fim_command(tmp_path):
    from editlm.cli import app

    source = tmp_path / "code.jsonl"
    docs = [f"def f{i}(x):\n    return x + {i}\n" for i in range(40)] + ["has <fim_prefix> in it"]
    source.write_text("".join(json.dumps({"content": d}) + "\n" for d in docs))
    out = tmp_path / "fim.jsonl"
    result = CliRunner().invoke(app, ["fim", str(source), "-o", str(out), "--rate", "1", "-w", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and all(r["fim"] for r in rows)
    assert {r["order"] for r in rows} == {"psm", "spm"}
    summary = json.loads((tmp_path / "fim.jsonl.summary.json").read_text())
    assert summary["skipped"] == {"contains a FIM sentinel": 1}


def test_fim_command_finds_the_text_column_or_says_which_to_name(tmp_path):
    from editlm.cli import app

    source = tmp_path / "corpus.jsonl"
    source.write_text(json.dumps({"instruction": "i", "program": "def f():\n    return 1\n"}) + "\n")
    out = tmp_path / "fim.jsonl"
    result = CliRunner().invoke(app, ["fim", str(source), "-o", str(out), "--rate", "0", "-w", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["text"] == "def f():\n    return 1\n"
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"body": "x"}) + "\n")
    result = CliRunner().invoke(app, ["fim", str(odd), "-o", str(tmp_path / "o.jsonl"), "-w", "1"])
    assert result.exit_code == 2 and "--column" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_data_command_writes_progress_lines_to_a_log_file(tmp_path, monkeypatch):
    """Output not a terminal (here CliRunner's): a plain line every PROGRESS_LINE_S seconds (each
    call is 11 s later), since rich draws the bar only at the end there."""
    import itertools
    import re

    from editlm.cli import app
    from editlm.data import cli_common

    clock = itertools.count(0, 11.0)
    monkeypatch.setattr(cli_common.time, "monotonic", lambda: next(clock))
    source = tmp_path / "code.jsonl"
    source.write_text("".join(json.dumps({"content": f"x = {i}\n"}) + "\n" for i in range(12)))
    result = CliRunner().invoke(app, ["fim", str(source), "-o", str(tmp_path / "o.jsonl"), "-w", "1"])
    assert result.exit_code == 0, result.output
    counts = [int(m[1]) for m in re.finditer(r"^fim (\d+)/(?:\?|\d+)$", result.output, re.MULTILINE)]
    assert len(counts) >= 5 and counts == sorted(counts)  # as the job goes, not only at the end
