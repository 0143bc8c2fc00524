"""The contamination check finds benchmark programs in training text, reformatted or embedded,
and leaves unrelated code alone."""

from __future__ import annotations

import inspect
import json

import pytest
from typer.testing import CliRunner

from editlm.data.transforms.contamination import ContaminationIndex, default_index, humaneval_programs, ngrams
from editlm.evaluate.benchmarks import parity


def test_4parity_is_caught_as_is_reformatted_buggy_and_embedded():
    index = default_index()
    assert index.is_contaminated(parity.CORRECT)
    assert index.is_contaminated(parity.buggy(5))
    spaced = parity.CORRECT.replace(",", ", ").replace("    ", "\t")
    assert index.matches(spaced)[0].name == "parity/correct"
    embedded = "import os\n\n" + inspect.getsource(json) + "\n\n" + parity.buggy(2) + "\n"
    assert index.is_contaminated(embedded)


def test_humaneval_solutions_are_caught():
    index = default_index()
    name, program = humaneval_programs()[10]
    found = index.matches("# some header\n" + program)
    assert found and found[0].name == name and found[0].overlap == 1.0


def test_unrelated_code_and_passing_mentions_stay():
    index = default_index()
    for module in (json, inspect, pytest):
        assert not index.is_contaminated(inspect.getsource(module))
    assert not index.is_contaminated("def parity(bits):\n    return sum(bits) % 2\n")
    # one line of a protected program is not a copy of it
    assert not index.is_contaminated("    bit_sum = sum([b1,b2,b3,b4])\n")


def test_index_validation_and_short_texts():
    with pytest.raises(ValueError):
        ContaminationIndex(n=0)
    index = ContaminationIndex(n=10, threshold=1.0).add_many([("tiny", "x = 1")])
    assert ngrams("x = 1", 10) == {("x", "=", "1")}
    assert index.is_contaminated("y = 2\nx = 1\n")
    assert not index.is_contaminated("x = 2")


def test_decontaminate_command_with_an_extra_table(tmp_path):
    from editlm.cli import app

    protected = tmp_path / "secret.jsonl"
    secret = "def secret_sauce(a, b, c):\n    total = a * b - c\n    return total ** 2 + a\n"
    protected.write_text(json.dumps({"program": secret}) + "\n")
    rows = [
        {"before": "x = 1\n", "after": "x = 2\n"},
        {"before": "", "after": "# vendored\n" + secret},
        {"before": parity.CORRECT, "after": ""},
    ]
    source = tmp_path / "train.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "clean.jsonl"
    result = CliRunner().invoke(
        app,
        ["decontaminate", str(source), "-o", str(out), "--columns", "before,after", "--exclude", str(protected),
         "-w", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(x) for x in out.read_text().splitlines()] == rows[:1]
    summary = json.loads((tmp_path / "clean.jsonl.summary.json").read_text())
    assert summary["skipped"] == {"contains parity": 1, "contains secret.jsonl": 1}


def test_every_registered_benchmark_is_protected():
    """QuixBugs, EditEval and HumanEvalFix programs (references and buggy/unedited versions) are
    caught like HumanEval's, and reported under their benchmark's name."""
    from editlm.evaluate.benchmarks import get_benchmark

    index = default_index()
    for name in ("quixbugs", "editeval", "humanevalfix"):
        bench = get_benchmark(name)
        problem = list(bench.problems().values())[3]
        for program in (problem.canonical, problem.source):
            found = index.matches("# vendored\n" + program)
            assert found, (name, problem.task_id)
            assert {m.name.split("/", 1)[0] for m in found} & {name, "HumanEval"}
    quix = get_benchmark("quixbugs").problems()["QuixBugs/gcd"]
    assert index.matches(quix.canonical)[0].name == "quixbugs/QuixBugs/gcd"


def test_training_commands_warn_or_drop(tmp_path):
    """`editlm train` checks its data against every benchmark: it warns with counts by benchmark, and
    with --decontaminate trains on a clean copy (here the check alone, without training)."""
    from editlm.data.transforms.contamination import check_training_data
    from editlm.evaluate.benchmarks import get_benchmark
    from editlm.train.cli import _benchmark_overlap
    from editlm.train.config import SFTConfig

    gcd = get_benchmark("quixbugs").problems()["QuixBugs/gcd"]
    rows = [
        {
            "prompt": "<NME> a.py\n<BEF> x = 1\n<MSG> Fix\n<DFF>",
            "completion": " @@ -1 +1 @@\n-x = 1\n+x = 2\n",
        },
        {"prompt": f"<NME> gcd.py\n<BEF> {gcd.source}\n<MSG> Fix bug\n<DFF>", "completion": " ..."},
        {"prompt": "Write parity", "completion": parity.CORRECT},
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check_training_data(str(data), ["prompt", "completion"])
    assert report["documents"] == 3 and report["contaminated"] == 2
    assert report["by_benchmark"] == {"quixbugs": 1, "parity": 1} and report["keys"] == [1, 2]
    cfg = SFTConfig(data=str(data), output_dir=str(tmp_path / "run"))
    assert _benchmark_overlap(cfg, ["prompt", "completion"], drop=False) is cfg  # warned, unchanged
    clean = _benchmark_overlap(cfg, ["prompt", "completion"], drop=True)
    assert clean.data != cfg.data
    assert [json.loads(x) for x in open(clean.data)] == rows[:1]
