"""``run_lintseq`` / ``editlm lintseq``: streaming, skips counted by reason, resumable, Dask."""

import json

import pytest
from typer.testing import CliRunner

from editlm.data.lintseq.job import LintSeqConfig, lintseq_rows, run_lintseq
from editlm.data.lintseq.lint import lint_errors
from editlm.data.lintseq.sampler import apply_edit_sequence
from editlm.edits.edit_sequence import decode_edit_sequence, format_edit_sequence
from editlm.io.tables import TableError, read_rows, write_rows

GOOD = [
    ("Add one.", "def inc(x):\n    y = x + 1\n    return y\n"),
    ("Sum a list.", "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"),
    ("Greet.", "import sys\n\n\ndef greet(name):\n    sys.stdout.write(name)\n"),
]
BAD = [
    ("Broken.", "def f(:\n    pass\n", "syntax_error"),
    ("Empty.", "\n\n", "empty"),
    ("Not text.", 42, "not_text"),
]


@pytest.fixture
def table(tmp_path):
    rows = [{"instruction": i, "program": p, "id": n} for n, (i, p) in enumerate(GOOD)]
    rows += [{"instruction": i, "program": p, "id": 10 + n} for n, (i, p, _) in enumerate(BAD)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _check_output(path, samples):
    rows = list(read_rows(path))
    assert len(rows) == len(GOOD) * samples
    for row in rows:
        assert row["text"] == format_edit_sequence(row["instruction"], row["edits"])
        assert apply_edit_sequence(row["edits"]) == row["program"]
        assert row["num_edits"] == len(row["edits"])
    assert {(r["row"], r["sample"]) for r in rows} == {
        (k, s) for k in range(len(GOOD)) for s in range(samples)
    }
    return rows


def test_rows_and_skips_are_counted_by_reason(table, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_lintseq(table, out, LintSeqConfig(samples=2, keep=("id",)), workers=1, progress=False)
    rows = _check_output(out, 2)
    assert {r["id"] for r in rows} == {0, 1, 2}
    assert summary["skipped"] == {"empty": 1, "not_text": 1, "syntax_error": 1}
    assert summary["rows"] == 6 and summary["inputs_written"] == 3  # programs written; skips apart
    assert json.loads((tmp_path / "out.jsonl.summary.json").read_text())["rows"] == 6


def test_same_seed_same_output_whatever_the_workers(table, tmp_path):
    config = LintSeqConfig(samples=2, seed=7)
    run_lintseq(table, tmp_path / "a.parquet", config, workers=1, progress=False)
    run_lintseq(table, tmp_path / "b.parquet", config, workers=2, chunksize=1, progress=False)
    key = lambda r: (r["row"], r["sample"])  # noqa: E731
    a = sorted(_check_output(tmp_path / "a.parquet", 2), key=key)
    b = sorted(_check_output(tmp_path / "b.parquet", 2), key=key)
    assert a == b


def test_rerun_resumes_without_redoing_or_duplicating(table, tmp_path):
    out = tmp_path / "out.parquet"
    first = run_lintseq(table, out, LintSeqConfig(samples=1), workers=1, limit=2, progress=False)
    assert first["inputs_written"] == 2
    second = run_lintseq(table, out, LintSeqConfig(samples=1), workers=1, progress=False)
    assert second["this_run"]["rows"] == 1  # only the third good program was new
    assert second["inputs_written"] == 3 and sum(second["skipped"].values()) == 3
    _check_output(out, 1)


def test_timeouts_are_counted_and_retried_by_the_next_run(table, tmp_path):
    out = tmp_path / "o.jsonl"
    summary = run_lintseq(table, out, LintSeqConfig(samples=1, time_limit=1e-9), workers=1, progress=False)
    assert summary["rows"] == 0
    assert summary["this_run"]["skipped"]["timeout"] == 3 and summary["this_run"]["timeouts_to_retry"] == 3
    assert "timeout" not in summary["skipped"]  # not done: the next run tries them again
    # the time limit is not part of the settings a resume compares: a larger one finishes the job
    again = run_lintseq(table, out, LintSeqConfig(samples=1, time_limit=60), workers=1, progress=False)
    assert again["this_run"]["rows"] == 3 and again["rows"] == 3
    _check_output(out, 1)


def test_missing_column_is_a_table_error(table, tmp_path):
    with pytest.raises(TableError, match="missing"):
        run_lintseq(
            table, tmp_path / "o.jsonl", LintSeqConfig(program_field="code"), workers=1, progress=False
        )


def test_pylint_and_random_modes_run(tmp_path):
    row = {"instruction": "Add one.", "program": GOOD[0][1]}
    for linter in ("pylint", "none"):
        out = lintseq_rows(0, row, LintSeqConfig(samples=1, linter=linter))
        assert apply_edit_sequence(out[0]["edits"]) == GOOD[0][1]
    states = lintseq_rows(0, row, LintSeqConfig(samples=1, linter="pylint"))[0]["edits"]
    program = ""
    for edit in states[:-1]:
        program = apply_edit_sequence([edit], program)
        assert lint_errors(program, linter="pylint") == []


def test_dask_local_cluster(table, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        summary = run_lintseq(
            table, tmp_path / "d.jsonl", LintSeqConfig(samples=2), scheduler=client, progress=False
        )
    assert summary["skipped"] == {"empty": 1, "not_text": 1, "syntax_error": 1}
    _check_output(tmp_path / "d.jsonl", 2)


def test_cli_lintseq_and_corpus(tmp_path, table):
    from editlm.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.jsonl"
    result = runner.invoke(
        app, ["lintseq", str(table), "-o", str(out), "--samples", "1", "--workers", "1", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    _check_output(out, 1)
    bad = runner.invoke(
        app, ["lintseq", str(table), "-o", str(tmp_path / "x.jsonl"), "--program-field", "nope"]
    )
    assert bad.exit_code == 2 and "missing" in bad.output
    corpus = tmp_path / "corpus.jsonl"
    result = runner.invoke(app, ["data", "corpus", "-o", str(corpus), "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert len(list(read_rows(corpus, ["instruction", "program", "source"]))) == 3
    # methods and undocumented functions on request: more programs from the same modules
    wide = tmp_path / "wide.jsonl"
    args = ["data", "corpus", "--limit", "0", "--per-module", "1000", "--max-lines", "6"]
    assert runner.invoke(app, [*args, "-o", str(corpus)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(wide), "--methods", "--undocumented"])
    assert result.exit_code == 0, result.output
    narrow_rows, wide_rows = list(read_rows(corpus)), list(read_rows(wide))
    assert {r["source"] for r in narrow_rows} < {r["source"] for r in wide_rows}
    assert any(not r["instruction"].count("\n") for r in wide_rows)  # a signature alone: no docstring


def test_parquet_input_streams(tmp_path):
    path = tmp_path / "in.parquet"
    write_rows(path, [{"instruction": i, "program": p} for i, p in GOOD])
    summary = run_lintseq(path, tmp_path / "o.jsonl", LintSeqConfig(samples=1), workers=1, progress=False)
    assert summary["rows"] == 3


def test_in_memory_records_for_small_data():
    from editlm.data.lintseq.job import lintseq_records

    rows = [{"instruction": i, "program": p} for i, p in GOOD] + [{"instruction": "x", "program": "def f(:"}]
    out, skipped = lintseq_records(rows, LintSeqConfig(samples=2))
    assert [(r["row"], r["sample"]) for r in out] == [(k, s) for k in range(3) for s in range(2)]
    assert skipped == {"syntax_error": 1}
    assert all(apply_edit_sequence(r["edits"]) == r["program"] for r in out)


def test_rows_carry_the_fine_tuning_split() -> None:
    """``prompt`` + ``completion`` is the training text, split where the authors' loss starts: after
    the instruction, so the first separator is learned; `editlm train sft` reads the output as it is."""
    from editlm.data.lintseq.job import LintSeqConfig, lintseq_records
    from editlm.edits.edit_sequence import DIFF_SEPARATOR, decode_edit_sequence

    rows = [
        {
            "instruction": "Add two numbers.",
            "program": "def add(a, b):\n    total = a + b\n    return total\n",
        }
    ]
    out, skipped = lintseq_records(rows, LintSeqConfig(samples=2))
    assert not skipped and len(out) == 2
    for row in out:
        assert row["prompt"] + row["completion"] == row["text"]
        assert row["prompt"] == "Add two numbers."
        assert row["completion"].startswith("\n" + DIFF_SEPARATOR + "@@ -0,0 +1")
        assert row["completion"].endswith("\n" + DIFF_SEPARATOR + "\n" + DIFF_SEPARATOR)
        program, errors = decode_edit_sequence(row["completion"])
        assert errors == [] and program.rstrip() == row["program"].rstrip()


def test_a_sequence_with_an_unclean_state_is_a_counted_skip(tmp_path, monkeypatch):
    """The job checks every state it writes: a sampler that passes through a broken state (here
    the old line-based result for the issue's backslash case) gives a skip, never a row."""
    import editlm.data.lintseq.job as job

    program = "x = 1\ny = 2 \\\n\nz = 3\n"
    broken = ["@@ -0,0 +1 @@\n+x = 1", "@@ -1,0 +2 @@\n+y = 2 \\", "@@ -2,0 +3,2 @@\n+\n+z = 3"]
    assert apply_edit_sequence(broken) == program
    monkeypatch.setattr(job, "sample_edit_sequence", lambda *a, **k: broken)
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"instruction": "x", "program": program}) + "\n")
    summary = run_lintseq(path, tmp_path / "o.jsonl", LintSeqConfig(samples=1), workers=1, progress=False)
    assert summary["rows"] == 0 and summary["skipped"] == {"unclean_state": 1}


def test_bad_lines_and_rows_are_counted_skips_not_a_crash(tmp_path):
    """A malformed JSON line, a row without the program, a lone surrogate in the instruction or a
    kept column (valid JSON, not UTF-8 text): each is a counted skip; the good rows are written."""
    path = tmp_path / "in.jsonl"
    good = json.dumps({"instruction": "Add one.", "program": GOOD[0][1], "id": 1})
    path.write_text(
        "\n".join(
            [
                good,
                '{"instruction": "broken", "program": ',
                json.dumps({"instruction": "no program"}),
                '{"instruction": "x \\ud800", "program": "x = 1\\n", "id": 2}',
                '{"instruction": "x", "program": "x = 1\\n", "id": "\\udfff"}',
                "[1, 2]",
                good.replace('"id": 1', '"id": 3'),
            ]
        )
        + "\n"
    )
    out = tmp_path / "o.parquet"
    summary = run_lintseq(path, out, LintSeqConfig(samples=1, keep=("id",)), workers=1, progress=False)
    assert summary["skipped"] == {"bad_json": 1, "missing_field": 1, "not_utf8": 2, "not_an_object": 1}
    assert sorted(r["id"] for r in read_rows(out)) == [1, 3]


def test_keep_may_not_overwrite_generated_columns():
    for name in ("text", "completion", "program"):
        with pytest.raises(ValueError, match="makes columns of these names"):
            LintSeqConfig(keep=(name,))
    result = CliRunner().invoke(
        __import__("editlm.cli", fromlist=["app"]).app,
        ["lintseq", "in.jsonl", "-o", "o.jsonl", "--keep", "text"],
    )
    assert result.exit_code == 2 and "text" in result.output


def test_resume_refuses_other_settings_unless_overwrite(table, tmp_path):
    from editlm.io.tables import SettingsMismatch

    out = tmp_path / "o.jsonl"
    run_lintseq(table, out, LintSeqConfig(samples=1), workers=1, limit=2, progress=False)
    with pytest.raises(SettingsMismatch, match="seed"):
        run_lintseq(table, out, LintSeqConfig(samples=2, seed=7), workers=1, progress=False)
    summary = run_lintseq(
        table, out, LintSeqConfig(samples=2, seed=7), workers=1, progress=False, overwrite=True
    )
    assert summary["rows"] == 6
    rows = _check_output(out, 2)
    assert {r["seed"] for r in rows} == {r["seed"] for r in lintseq_rows_all(7, 2)}


def lintseq_rows_all(seed, samples):
    config = LintSeqConfig(samples=samples, seed=seed)
    return [
        r for k, (i, p) in enumerate(GOOD) for r in lintseq_rows(k, {"instruction": i, "program": p}, config)
    ]


def test_an_all_skipped_run_keeps_its_columns(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"instruction": "x", "program": "def f(:\n"}) + "\n")
    out = tmp_path / "o.parquet"
    summary = run_lintseq(path, out, LintSeqConfig(samples=1), workers=1, progress=False)
    assert summary["rows"] == 0 and summary["skipped"] == {"syntax_error": 1}
    names = pq.read_schema(out).names
    assert {"text", "prompt", "completion", "edits", "program"} <= set(names)


def test_random_chunk_ablation_and_d3_exports(tmp_path):
    program = GOOD[1][1]
    row = {"instruction": "Sum a list.", "program": program}
    chunks = lintseq_rows(0, row, LintSeqConfig(samples=3, linter="random-chunks"))
    for out in chunks:
        assert apply_edit_sequence(out["edits"]) == program
    d3 = lintseq_rows(0, row, LintSeqConfig(samples=2, export="d3"))[0]
    assert d3["program_start"] == "" and d3["prompt"].endswith("Sum a list.")
    assert d3["completion"].startswith("\n<|diff|>@@ -0,0") and d3["completion"].endswith(
        "\n<|diff|>\n<|diff|>"
    )
    longer = {"instruction": "Three helpers.", "program": "\n\n".join(p for _, p in GOOD)}
    for out in lintseq_rows(0, longer, LintSeqConfig(samples=4, export="d3-partial")):
        start, program = out["program_start"], longer["program"]
        if out["num_edits"] == 1:  # no intermediate state to start from
            assert start == ""
            continue
        assert start and start != program and start in out["prompt"]
        rebuilt, errors = decode_edit_sequence(out["completion"], start)
        assert errors == [] and rebuilt == program


def test_the_state_check_lints_every_state_the_sampler_did_not_pass():
    from editlm.data.lintseq.sampler import first_unclean_state

    broken = ["@@ -0,0 +1 @@\n+x = 1", "@@ -1,0 +2 @@\n+y = 2 \\", "@@ -2,0 +3,2 @@\n+\n+z = 3"]
    assert first_unclean_state(broken, passed={"x = 1\n"}).startswith("state 2")
    assert first_unclean_state(broken, passed={"x = 1\n", "x = 1\ny = 2 \\\n"}) is None  # trusted as passed


def test_dask_cluster_of_processes_and_threads_writes_the_same_rows(tmp_path):
    """Real programs on a local Dask cluster of two worker processes with two threads each (the
    linter's caches are per thread): the same rows as one local process, every state checked."""
    distributed = pytest.importorskip("distributed")
    from editlm.data.lintseq.real_code import real_programs

    programs = real_programs(16, seed=5, max_lines=200)
    path = tmp_path / "real.jsonl"
    path.write_text(
        "".join(json.dumps({"instruction": r["source"], "program": r["program"]}) + "\n" for r in programs)
    )
    config = LintSeqConfig(samples=2, seed=3)
    local = run_lintseq(path, tmp_path / "local.parquet", config, workers=1, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None, silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = run_lintseq(path, tmp_path / "dask.parquet", config, scheduler=client, progress=False)
    assert remote["rows"] == local["rows"] > 0 and remote["skipped"] == local["skipped"]
    assert "unclean_state" not in remote["skipped"]

    def rows(name):
        return sorted((r["row"], r["sample"], r["text"]) for r in read_rows(tmp_path / name))

    assert rows("dask.parquet") == rows("local.parquet")


def test_cli_lintseq_writes_progress_lines_to_a_log_file(tmp_path, table, monkeypatch):
    """Output not a terminal: a plain ``lintseq done/total`` line every PROGRESS_LINE_S seconds
    (each call 11 s later here), not only rich's bar at the end."""
    import itertools
    import re

    from editlm.cli import app
    from editlm.data import cli_common

    clock = itertools.count(0, 11.0)
    monkeypatch.setattr(cli_common.time, "monotonic", lambda: next(clock))
    out = tmp_path / "logged.jsonl"
    result = CliRunner().invoke(
        app, ["lintseq", str(table), "-o", str(out), "--samples", "1", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    counts = [int(m[1]) for m in re.finditer(r"^lintseq (\d+)/(?:\?|\d+)$", result.output, re.MULTILINE)]
    assert len(counts) >= 2 and counts == sorted(counts)
