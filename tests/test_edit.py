"""``editlm edit``: a person's file, a message, diffs sampled, checked by the edit core, one written."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner

from editlm.cli import app
from editlm.edits.diff import make_diff
from editlm.generate.edit import EditRequestError, hunk_header, parse_lines, propose, write_atomically
from editlm.generate.engines import Completion, SamplingParams

REAL = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"  # a real file of ~500 lines


class _Scripted:
    name = "scripted"

    def __init__(self, texts):
        self.texts, self.calls = texts, []

    def sample(self, prompts, n, params, predictions=None):
        self.calls.append((prompts, n, params, predictions))
        return [[Completion(t, -float(k)) for k, t in enumerate(self.texts[:n])] for _ in prompts]


def _edits(source: str):
    """A good edit with line numbers shifted by 3 (models get them wrong), one that breaks the
    syntax, and one whose context is not in the file."""
    fixed = source.replace(
        "    def _split(self, text):", "    def _split(self, text):  # split into chunks", 1
    )
    broken = source.replace("    def _split(self, text):", "    def _split(self, text", 1)
    good = make_diff(source, fixed, headers=False)
    good = re.sub(r"@@ -(\d+)", lambda m: f"@@ -{int(m.group(1)) + 3}", good, count=1)
    return fixed, [
        " " + good + "<NME> more",
        " " + make_diff(source, broken, headers=False),
        " @@ -1,1 +1,1 @@\n-no such line\n+x\n",
    ]


def test_propose_keeps_what_applies_and_parses() -> None:
    source = REAL.read_text()
    fixed, texts = _edits(source)
    engine = _Scripted(texts)
    proposals = propose(engine, "textwrap.py", source, "Document _split", 3, SamplingParams())
    good = [p for p in proposals if p.ok]
    assert [p.program for p in good] == [fixed]
    assert "shifted by -3 lines" in good[0].placements[0]
    errors = sorted(p.error for p in proposals if not p.ok)
    assert any("does not parse" in e for e in errors) and any("hunk 1" in e for e in errors)
    prompts, _, params, predictions = engine.calls[0]
    assert prompts[0].startswith("<NME> textwrap.py\n<BEF> ") and prompts[0].endswith(
        "<MSG> Document _split\n<DFF>"
    )
    assert predictions == [source] and "<NME>" in params.stop
    # a non-Python file is not parsed
    assert propose(_Scripted(texts[1:2]), "notes.txt", source, "x", 1, SamplingParams())[0].ok


def test_lines_give_a_hunk_header() -> None:
    source = "a\nb\nc\n"
    assert hunk_header(source, (2, 3)) == "@@ -2,2 +2,2 @@"
    assert parse_lines("4") == (4, 4) and parse_lines(None) is None
    with pytest.raises(EditRequestError):
        hunk_header(source, (3, 9))
    with pytest.raises(EditRequestError):
        parse_lines("a-b")
    engine = _Scripted([" b\n-c\n+C\n"])
    (p,) = propose(engine, "x.txt", source, "upper c", 1, SamplingParams(), lines=(2, 3))
    assert engine.calls[0][0][0].endswith("<DFF> @@ -2,2 +2,2 @@\n")
    assert p.program == "a\nb\nC\n", p.error


def test_write_atomically_keeps_backups(tmp_path) -> None:
    target = tmp_path / "f.py"
    target.write_text("old\n")
    target.chmod(0o640)
    assert write_atomically(target, "new\n") == tmp_path / "f.py.bak"
    assert write_atomically(target, "newer\n") == tmp_path / "f.py.bak.1"
    assert target.read_text() == "newer\n" and (tmp_path / "f.py.bak").read_text() == "old\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py", "f.py.bak", "f.py.bak.1"]


def test_edit_command_shows_and_applies(tmp_path, monkeypatch, tiny_model) -> None:
    import editlm.generate.engines as engines

    source = REAL.read_text()
    fixed, texts = _edits(source)
    target = tmp_path / "textwrap.py"
    target.write_text(source)
    monkeypatch.setattr(engines, "load_engine", lambda *a, **k: _Scripted(texts))
    runner = CliRunner()
    shown = runner.invoke(
        app, ["edit", str(target), "-m", "Document _split", "--model", str(tiny_model), "-n", "3"]
    )
    assert shown.exit_code == 0, shown.output
    assert "1 of 3 sampled diffs apply" in shown.output and "shifted by -3 lines" in shown.output
    assert target.read_text() == source  # nothing written without --apply
    applied = runner.invoke(
        app, ["edit", str(target), "-m", "Document _split", "--model", str(tiny_model), "-n", "3", "--apply"]
    )
    assert applied.exit_code == 0, applied.output
    assert target.read_text() == fixed and (tmp_path / "textwrap.py.bak").read_text() == source
    monkeypatch.setattr(engines, "load_engine", lambda *a, **k: _Scripted(texts[2:]))
    none = runner.invoke(
        app, ["edit", str(target), "-m", "x", "--model", str(tiny_model), "-n", "1", "--apply"]
    )
    assert none.exit_code == 1 and "0 of 1" in none.output and target.read_text() == fixed


def test_edit_command_with_a_real_model(tmp_path, tiny_model) -> None:
    target = tmp_path / "f.py"
    target.write_text("def f(a):\n    return a + 1\n")
    result = CliRunner().invoke(
        app,
        ["edit", str(target), "-m", "Fix f", "--model", str(tiny_model), "-n", "2", "--max-new-tokens", "8"],
    )
    # an untrained model's diffs do not apply: said plainly, exit 1, file untouched
    assert result.exit_code in (0, 1) and "sampled diffs apply" in result.output
    assert target.read_text() == "def f(a):\n    return a + 1\n"
    bad = CliRunner().invoke(app, ["edit", str(tmp_path / "nope.py"), "-m", "x", "--model", str(tiny_model)])
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.replace("│", " ").split())
