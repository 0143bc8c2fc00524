"""``editlm mine`` as a job: Parquet that datasets reads, counted drops, resuming, processes and Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_commits import EXPECTED_ROWS, EXPECTED_SKIPS, HUGE_LIMIT, History, build_history, git
from typer.testing import CliRunner

from editlm.data.mining.commits import COLUMNS, MiningOptions, iter_records
from editlm.data.mining.job import run_mining, settings_of
from editlm.io.tables import read_rows

OPTIONS = MiningOptions(max_file_bytes=HUGE_LIMIT)
REPO_SKIPS = {"repository: not a git repository": 1, "repository: no commits": 1}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return build_history(tmp_path_factory.mktemp("job") / "demo")


@pytest.fixture(scope="module")
def expected(history) -> list[dict]:
    return list(iter_records(history.path, OPTIONS))


def _key(row: dict) -> tuple:
    return row["commit"], row["path"], row["sample"]


def _small_history(path) -> History:
    h = History(path)
    for k in range(6):
        h.commit(f"c{k}", f"Change the value number {k}", {"a.py": f"a = {k}\n", f"f{k}.py": f"b = {k}\n"})
    return h


def test_job_writes_parquet_that_datasets_reads(history, expected, tmp_path):
    import datasets

    empty = tmp_path / "empty"
    empty.mkdir()
    History(empty / "repo")  # git init only
    out = tmp_path / "out" / "rows.parquet"
    summary = run_mining([history.path, tmp_path / "nothing", empty / "repo"], out, OPTIONS, workers=1)
    assert summary["rows"] == len(EXPECTED_ROWS)
    assert summary["skipped"] == dict(sorted({**EXPECTED_SKIPS, **REPO_SKIPS}.items()))
    assert summary["this_run"]["commits_mined"] == len(history.ids)
    table = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert table.column_names == list(COLUMNS)
    assert sorted(map(_key, table)) == sorted(map(_key, expected))
    saved = json.loads((tmp_path / "out" / "rows.parquet.summary.json").read_text())
    assert saved["rows"] == summary["rows"] and not (tmp_path / "out" / "rows.parquet.partial").exists()


def test_rerun_mines_only_new_commits(tmp_path):
    h = _small_history(tmp_path / "small")
    out = tmp_path / "rows.jsonl"
    first = run_mining([h.path], out, workers=1)
    assert first["rows"] == 12  # a.py added then modified five times, f0.py..f5.py added
    again = run_mining([h.path], out, workers=1)
    assert again["this_run"]["commits_todo"] == 0 and again["rows"] == first["rows"]
    h.commit("new", "Change the value once more", {"a.py": "a = 99\n"})
    third = run_mining([h.path], out, workers=1)
    assert third["this_run"]["commits_mined"] == 1
    rows = list(read_rows(out))
    assert len(rows) == first["rows"] + 1 == third["rows"]
    assert [r["commit"] for r in rows].count(h.ids["new"]) == 1


def test_resume_after_a_crash_loses_and_repeats_nothing(history, expected, tmp_path):
    out = tmp_path / "rows.parquet"
    calls = []

    def crash(done, total):
        calls.append(done)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_mining([history.path], out, OPTIONS, workers=1, batch_size=2, shard_size=1, progress=crash)
    assert not out.exists() and (tmp_path / "rows.parquet.partial").exists()
    summary = run_mining([history.path], out, OPTIONS, workers=1, batch_size=2)
    assert 0 < summary["this_run"]["commits_mined"] < len(history.ids)
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))  # counted once over both runs
    assert sorted(map(_key, read_rows(out))) == sorted(map(_key, expected))


def test_worker_processes_give_the_same_rows(history, expected, tmp_path):
    out = tmp_path / "rows.parquet"
    summary = run_mining([history.path], out, OPTIONS, workers=2, batch_size=3)
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))
    assert sorted(map(_key, read_rows(out))) == sorted(map(_key, expected))


def test_the_default_worker_count_skips_the_pool_on_a_small_history(history, expected, tmp_path, monkeypatch):
    from editlm.data.mining import job

    assert job.auto_workers(10, cores=8) == 1 and job.auto_workers(job.POOL_COMMITS - 1, cores=8) == 1
    assert job.auto_workers(3 * job.POOL_COMMITS, cores=8) == 3 and job.auto_workers(10**9, cores=8) == 8
    chosen = []
    real = job.stream_unordered
    monkeypatch.setattr(job, "stream_unordered", lambda *a, **k: chosen.append(k["workers"]) or real(*a, **k))
    summary = run_mining([history.path], tmp_path / "rows.parquet", OPTIONS)  # workers=None
    assert chosen == [1]
    assert sorted(map(_key, read_rows(tmp_path / "rows.parquet"))) == sorted(map(_key, expected))
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))


def test_dask_cluster_gives_the_same_rows(history, expected, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            run_mining([history.path], tmp_path / "rows.parquet", OPTIONS, scheduler=client, batch_size=4)
    assert sorted(map(_key, read_rows(tmp_path / "rows.parquet"))) == sorted(map(_key, expected))


def test_cli(history, expected, tmp_path):
    from editlm.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.jsonl"
    args = ["mine", str(history.path), "-o", str(out), "--filter", "none", "--workers", "1"]
    result = runner.invoke(app, [*args, "--max-file-bytes", str(HUGE_LIMIT)])
    assert result.exit_code == 0, result.output
    assert sorted(map(_key, read_rows(out))) == sorted(map(_key, expected))
    assert "file: submodule" in result.output

    capped = tmp_path / "capped.jsonl"
    limits = ["--max-tokens", "40", "--max-file-bytes", str(HUGE_LIMIT), "--workers", "1"]
    result = runner.invoke(app, ["mine", str(history.path), "-o", str(capped), *limits])
    assert result.exit_code == 0, result.output
    rows = list(read_rows(capped))
    assert all(len(r["sample"]) <= 160 for r in rows)  # the chars/4 estimate
    unlimited = list(iter_records(history.path, MiningOptions("carperai", 10**9, max_file_bytes=HUGE_LIMIT)))
    summary = json.loads((tmp_path / "capped.jsonl.summary.json").read_text())
    assert summary["filter"] == "carperai" and summary["token_limit"] == 40
    assert 0 < len(rows) < len(unlimited)
    assert summary["skipped"]["file: too many tokens"] == len(unlimited) - len(rows)

    bad = runner.invoke(
        app, ["mine", str(history.path), "-o", str(tmp_path / "x.jsonl"), "--filter", "strict"]
    )
    assert bad.exit_code != 0 and "unknown filter" in bad.output


def test_file_drops_flushed_before_a_crash_are_not_counted_twice(history, tmp_path):
    from editlm.io.tables import ShardedWriter

    out = tmp_path / "rows.parquet"
    path = str(history.path.resolve())
    # a run that flushed one file's drop, then died before its commit landed
    early = ShardedWriter(out, settings=settings_of(OPTIONS, "HEAD"))
    early.skip((path, history.ids["root"], "", "logo.bin"), "file: binary")
    early.flush()
    summary = run_mining([history.path], out, OPTIONS, workers=1)
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))
    assert summary["rows"] == len(EXPECTED_ROWS)


def test_an_unforeseen_error_in_one_commit_is_counted(tmp_path, monkeypatch):
    import editlm.data.mining.job as job

    h = _small_history(tmp_path / "small")
    real = job.iter_commit

    def flaky(repo, commit, *args):
        if commit == h.ids["c2"]:
            raise RuntimeError("boom")
        return real(repo, commit, *args)

    monkeypatch.setattr(job, "iter_commit", flaky)
    summary = run_mining([h.path], tmp_path / "rows.jsonl", workers=1)
    assert summary["skipped"] == {"commit: failed with RuntimeError": 1}
    assert summary["rows"] == 12 - 2


def test_resume_only_with_the_same_options(tmp_path):
    from editlm.io.tables import SettingsMismatch

    h = _small_history(tmp_path / "small")
    out = tmp_path / "rows.parquet"
    first = run_mining([h.path], out, workers=1)
    with pytest.raises(SettingsMismatch, match="filter: 'none' -> 'carperai'"):
        run_mining([h.path], out, MiningOptions("carperai"), workers=1)
    assert len(list(read_rows(out))) == first["rows"]  # the refused run changed nothing
    replaced = run_mining([h.path], out, MiningOptions("carperai"), workers=1, overwrite=True)
    assert replaced["filter"] == "carperai" and replaced["skipped"] == {"commit: no license file": 6}
    assert list(read_rows(out)) == []

    runner = CliRunner()
    from editlm.cli import app

    args = ["mine", str(h.path), "-o", str(out), "--workers", "1", "--filter", "none"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "other settings" in refused.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert len(list(read_rows(out))) == first["rows"]


def test_the_same_repository_twice_and_forks_are_mined_once(tmp_path):
    h = _small_history(tmp_path / "small")
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(h.path), str(fork))
    h.commit("extra", "Change the value once more", {"a.py": "a = 99\n"})
    out = tmp_path / "rows.jsonl"
    given = [h.path, Path(str(h.path) + "/"), tmp_path / "small" / ".." / "small", fork]
    summary = run_mining(given, out, workers=1)
    assert summary["this_run"]["repositories_given_twice"] == 2
    assert summary["skipped"] == {"commit: already mined from another repository": 6}  # the fork's six
    commits = [r["commit"] for r in read_rows(out)]
    assert len(commits) == 13 and commits.count(h.ids["extra"]) == 1


def test_cli_refuses_bad_arguments_cleanly(history, tmp_path):
    from editlm.cli import app

    runner = CliRunner()
    out = str(tmp_path / "x.jsonl")
    for extra, hint in ((["--workers", "-1"], "--workers"), (["--batch-size", "0"], "--batch-size")):
        result = runner.invoke(app, ["mine", str(history.path), "-o", out, *extra])
        assert result.exit_code == 2 and hint in result.output, result.output
        assert isinstance(result.exception, SystemExit)  # a usage error, no traceback
    inside = runner.invoke(app, ["mine", str(history.path / "vendor"), str(tmp_path), "-o", out])
    assert inside.exit_code == 2 and "not a git repository" in inside.output
    assert not (tmp_path / "x.jsonl").exists()


def test_sigterm_stops_a_mining_job_and_it_resumes(history, expected, tmp_path):
    """A real ``editlm mine`` with two workers, stopped by SIGTERM halfway, then rerun to the end."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "rows.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    slow = tmp_path / "slow"  # the demo history is tiny: give each commit a moment so the signal lands
    slow.mkdir()
    pids = tmp_path / "pids"
    pids.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import os, time, editlm.data.mining.job as j\n"
        "real = j.iter_commit\n"
        "def slow(*a):\n"
        f"    open(os.path.join({str(pids)!r}, f'{{os.getpid()}}-{{time.time_ns()}}'), 'w').close()\n"
        "    time.sleep(0.3)\n"
        "    return real(*a)\n"
        "j.iter_commit = slow\n"
    )
    command = [sys.executable, "-m", "editlm.cli", "mine", str(history.path), "-o", str(out), "--filter",
               "none", "--workers", "2", "--batch-size", "1", "--max-file-bytes", str(HUGE_LIMIT)]  # fmt: skip
    slowed = {**env, "PYTHONPATH": os.pathsep.join([str(slow), *sys.path])}
    job = subprocess.Popen(command, env=slowed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = tmp_path / "rows.jsonl.partial"
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 6 and time.monotonic() < deadline:  # 4+ of 17 commits done
        time.sleep(0.05)
    time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    output = job.communicate(timeout=60)[0]
    assert job.returncode == 130, output
    assert "rerun the same command to resume" in output
    workers = sorted({int(p.name.split("-")[0]) for p in pids.iterdir()})
    assert len(workers) == 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers))  # no worker left behind
    assert not out.exists() and partial.exists()  # what was finished was flushed before exiting
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    assert sorted(map(_key, read_rows(out))) == sorted(map(_key, expected))
    summary = json.loads((tmp_path / "rows.jsonl.summary.json").read_text())
    assert 0 < summary["this_run"]["commits_mined"] < len(history.ids)  # resumed, not restarted
    assert summary["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))


def test_cli_writes_progress_lines_to_a_log_file(history, tmp_path, monkeypatch):
    """stderr redirected to a file: rich draws the bar only at the end, so the command writes a plain
    line every PROGRESS_LINE_S seconds (here each call is 11 s later)."""
    import itertools

    from editlm.cli import app
    from editlm.data import cli_common

    clock = itertools.count(0, 11.0)
    monkeypatch.setattr(cli_common.time, "monotonic", lambda: next(clock))
    out = tmp_path / "logged.jsonl"
    args = ["mine", str(history.path), "-o", str(out), "--filter", "none", "--batch-size", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("mining commits ")]
    counts = [int(line.split()[2].split("/")[0]) for line in lines if "/" in line.split()[2]]
    assert len(counts) >= 5 and counts == sorted(counts)  # as the job goes, not only at the end


def test_a_repository_owned_by_another_user_is_refused_with_the_way_out(tmp_path):
    """git (and libgit2) refuse a repository another user owns; the message says so and how to
    trust it, instead of "not a git repository", and a job counts it under its own reason."""
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to give the repository to another user")
    h = _small_history(tmp_path / "theirs")
    for root, dirs, files in os.walk(h.path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), 12345, 12345)
    os.chown(h.path, 12345, 12345)
    from editlm.cli import app

    result = CliRunner().invoke(app, ["mine", str(h.path), "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert "owned by another user" in result.output and "safe.directory" in result.output
    summary = run_mining([h.path], tmp_path / "rows.jsonl", OPTIONS, workers=1)
    assert summary["skipped"] == {"repository: owned by another user": 1} and summary["rows"] == 0
