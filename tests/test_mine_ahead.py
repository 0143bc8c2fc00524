"""The diff helper (editlm.data.mining.ahead): the same rows with and without it, whatever it does."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from test_commits import HUGE_LIMIT, History, build_history
from test_commits_git import REAL

from editlm.data.mining import ahead, gitdiff, job
from editlm.data.mining.commits import (
    MiningOptions,
    RepoCache,
    iter_records,
    list_commits,
    mine_commit,
    open_repository,
)
from editlm.io.tables import read_rows

OPTIONS = MiningOptions(filter="none", max_file_bytes=HUGE_LIMIT)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    """The demo history (renames, binaries, a licence change, ...) and 40 more commits that edit a
    long file in several places, so that the helper has diffs worth making."""
    h = build_history(tmp_path_factory.mktemp("ahead") / "demo")
    lines = [f"def f{i}(x):\n    return x + {i}\n\n" for i in range(120)]  # under HUGE_LIMIT
    for k in range(40):
        lines[(k * 37) % 120] = f"def f{(k * 37) % 120}(x):\n    return x * {k}\n\n"
        lines[(k * 91 + 5) % 120] = f"def g{k}(y):\n    return y - {k}\n\n"
        h.commit(f"long{k}", f"Change two functions, step {k}", {"long.py": "".join(lines)})
    return h


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by whoever adopted it, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _claimed(made: ahead.DiffsAhead, count: int, timeout: float = 30) -> None:
    """Wait until the helper has claimed ``count`` commits (it starts at once, but a loaded machine
    may schedule it late, and the miner would then make everything itself)."""
    deadline = time.monotonic() + timeout
    while made._claimed.value < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made._claimed.value >= count


def _mine_with(repo_path, made: ahead.DiffsAhead | None, options=OPTIONS) -> tuple[list, Counter]:
    repo, cache = open_repository(repo_path), RepoCache()
    rows, skips = [], Counter()
    for index, commit in enumerate(list_commits(repo)):
        result = mine_commit(repo, commit, options, "demo", cache, made.lookup(index) if made else None)
        rows += result.rows
        skips.update(reason for _, reason in result.file_skips)
        if result.reason:
            skips[result.reason] += 1
    return rows, skips


def test_the_helper_makes_the_diffs_and_the_rows_are_the_same(history, monkeypatch):
    expected, expected_skips = _mine_with(history.path, None)
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, OPTIONS, start_method="fork")
    try:
        _claimed(made, 20)
        calls = []
        real = gitdiff.hunks_of
        monkeypatch.setattr(gitdiff, "hunks_of", lambda *a: calls.append(1) or real(*a))  # this process only
        rows, skips = _mine_with(history.path, made)
    finally:
        made.close()
    assert rows == expected and skips == expected_skips
    assert made.made_ahead >= 15 and made.made_ahead + made.made_here <= len(commits)
    # the miner made only the diffs of added and deleted files and of the commits it claimed
    assert len(calls) < len(expected) - 15


def test_a_helper_that_dies_costs_only_its_speed(history, monkeypatch):
    expected, _ = _mine_with(history.path, None)
    monkeypatch.setattr(ahead, "AHEAD", 5)  # the forked helper stops 6 commits ahead and waits
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, OPTIONS, start_method="fork")
    try:
        _claimed(made, 6)
        os.kill(made._process.pid, signal.SIGKILL)
        made._process.join(10)
        rows, _ = _mine_with(history.path, made)
    finally:
        made.close()
    assert rows == expected
    assert made.made_here > 40  # what it had not made was made here


def test_wrong_hunks_from_the_helper_never_become_rows(history, monkeypatch):
    """The helper is trusted no more than libgit2: the row check stands between it and the output."""
    expected, _ = _mine_with(history.path, None)
    real = ahead.commit_diffs

    def lying(*args):
        changes, diffs = real(*args)
        return changes, {
            key: (h.replace("\n+", "\n+    junk()\n+", 1) if h else h) for key, h in diffs.items()
        }

    monkeypatch.setattr(ahead, "commit_diffs", lying)  # before the fork: the helper runs this one
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, OPTIONS, start_method="fork")
    try:
        _claimed(made, 20)
        rows, skips = _mine_with(history.path, made)
    finally:
        made.close()
    keys = {(r["commit"], r["path"]): r for r in expected}
    assert all(keys[(r["commit"], r["path"])] == r for r in rows)  # every row written is right
    assert skips["file: diff does not apply"] >= 15  # and the lies were caught, not written
    assert len(rows) + skips["file: diff does not apply"] == len(expected)


def test_iter_records_with_the_helper_and_its_end(history):
    expected = list(iter_records(history.path, OPTIONS, helper=False))
    assert list(iter_records(history.path, OPTIONS, helper=True)) == expected
    rows = iter_records(history.path, OPTIONS, helper=True)
    next(rows)
    helpers = multiprocessing.active_children()
    assert [p.name for p in helpers] == ["editlm-diffs-ahead"]
    rows.close()  # a consumer that stops early: the helper ends with the iterator
    assert not helpers[0].is_alive() and not multiprocessing.active_children()


def test_the_helper_exits_when_the_miner_is_killed(history, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from editlm.data.mining import ahead
        from editlm.data.mining.commits import MiningOptions, list_commits, open_repository
        commits = list_commits(open_repository({str(history.path)!r}))
        made = ahead.DiffsAhead({str(history.path)!r}, commits, MiningOptions(filter="none"))
        print(made._process.pid, flush=True)
        time.sleep(120)  # never asks: the helper runs ahead and waits
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    miner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    helper = int(miner.stdout.readline())
    assert _alive(helper)
    miner.kill()  # kill -9: no cleanup runs in the miner
    miner.wait(10)
    deadline = time.monotonic() + 10
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(helper)


def test_a_job_in_one_process_with_the_helper_writes_the_same_rows(history, tmp_path, monkeypatch):
    made: list[ahead.DiffsAhead] = []
    real_close = ahead.DiffsAhead.close
    monkeypatch.setattr(ahead.DiffsAhead, "close", lambda self: made.append(self) or real_close(self))
    outputs = {}
    for helper in (False, True):
        out = tmp_path / f"helper-{helper}.jsonl"
        summary = job.run_mining([history.path], out, OPTIONS, workers=1, helper=helper, batch_size=4)
        outputs[helper] = (list(read_rows(out)), summary["skipped"])
    assert outputs[True] == outputs[False]
    assert len(made) == 1  # one helper, for the one repository, closed at the end


def test_when_a_helper_is_used(monkeypatch):
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # a fork can start it (other tests' threads)
    assert ahead.helper_wanted(ahead.HELPER_COMMITS, cores=2) == sys.platform.startswith("linux")
    assert not ahead.helper_wanted(ahead.HELPER_COMMITS, cores=1)
    assert not ahead.helper_wanted(ahead.HELPER_COMMITS - 1, cores=8)
    # one process and a helper instead of a pool of two; a pool of three or more stays
    two = 2 * job.POOL_COMMITS
    assert job.auto_workers(two, cores=2) == (1 if sys.platform.startswith("linux") else 2)
    assert job.auto_workers(two, cores=2, helper=False) == 2
    assert job.auto_workers(3 * job.POOL_COMMITS, cores=8) == 3


@pytest.mark.skipif(not (REAL / "markupsafe.bundle").exists(), reason="no shared real histories here")
def test_a_real_history_gives_the_same_rows_with_the_helper(tmp_path):
    clone = tmp_path / "markupsafe"
    subprocess.run(["git", "clone", "-q", str(REAL / "markupsafe.bundle"), str(clone)], check=True)
    options = MiningOptions(filter="none", max_file_bytes=10**9)
    commits = list_commits(open_repository(clone))
    made = ahead.DiffsAhead(str(clone), commits, options)
    try:
        _claimed(made, 5)
        rows, skips = _mine_with(clone, made, options)
    finally:
        made.close()
    assert made.made_ahead > 100
    assert (rows, skips) == _mine_with(clone, None, options)
    assert len(rows) > 1000


def test_with_another_thread_the_helper_starts_from_a_fork_server(history):
    """A progress bar's thread running: no fork of a process mid-use, and the same rows."""
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    try:
        expected, _ = _mine_with(history.path, None)
        commits = list_commits(open_repository(history.path))
        made = ahead.DiffsAhead(str(history.path), commits, OPTIONS, start_method="forkserver")
        try:
            assert made._process._start_method == "forkserver"
            _claimed(made, 20)
            rows, _ = _mine_with(history.path, made)
        finally:
            made.close()
    finally:
        stop.set()
    assert rows == expected and made.made_ahead >= 15


def test_sigterm_on_a_job_in_one_process_ends_its_helper(history, tmp_path):
    """``editlm mine --workers 1 --helper`` stopped by SIGTERM: no helper is left behind, and a rerun
    finishes the output with the rows of a job that never stopped."""
    out = tmp_path / "rows.jsonl"
    slow = tmp_path / "slow"  # a moment per commit, so that the signal lands mid-job
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import time, editlm.data.mining.job as j\n"
        "real = j.iter_commit\n"
        "def slow(*a):\n"
        "    time.sleep(0.05)\n"
        "    return real(*a)\n"
        "j.iter_commit = slow\n"
    )
    command = [sys.executable, "-m", "editlm.cli", "mine", str(history.path), "-o", str(out), "--filter",
               "none", "--workers", "1", "--helper", "--batch-size", "2", "--max-file-bytes", str(HUGE_LIMIT)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    slowed = {**env, "PYTHONPATH": os.pathsep.join([str(slow), *sys.path])}
    miner = subprocess.Popen(command, env=slowed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children = Path(f"/proc/{miner.pid}/task/{miner.pid}/children")
    deadline = time.monotonic() + 60
    helpers: list[int] = []
    while not helpers and time.monotonic() < deadline:
        helpers = [int(p) for p in children.read_text().split()] if children.exists() else []
        time.sleep(0.02)
    assert helpers, "the job started no helper"
    time.sleep(0.5)
    miner.send_signal(signal.SIGTERM)
    output = miner.communicate(timeout=60)[0]
    assert miner.returncode == 130 and "rerun the same command to resume" in output, output
    assert not out.exists() and (tmp_path / "rows.jsonl.partial").exists()  # flushed, not finished
    deadline = time.monotonic() + 10
    while any(map(_alive, helpers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, helpers))
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    expected = list(iter_records(history.path, OPTIONS, helper=False))
    key = ("commit", "path", "sample")
    assert sorted(tuple(r[k] for k in key) for r in read_rows(out)) == sorted(
        tuple(r[k] for k in key) for r in expected
    )


def test_how_a_helper_starts_and_when_it_cannot(history, monkeypatch):
    import types

    with monkeypatch.context() as alone:
        alone.setattr(threading, "active_count", lambda: 1)  # other tests may have left a thread
        assert ahead.start_method_here() == "fork"
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    try:
        module_run = types.ModuleType("__main__")
        module_run.__spec__ = types.SimpleNamespace(name="pkg.tool")  # python -m pkg.tool
        monkeypatch.setitem(sys.modules, "__main__", module_run)
        assert ahead.start_method_here() == "forkserver"
        script = types.ModuleType("__main__")
        script.__file__ = "/somewhere/mine.py"  # python mine.py: a fork server's child runs it again
        monkeypatch.setitem(sys.modules, "__main__", script)
        assert ahead.start_method_here() is None
        assert not ahead.helper_wanted(10**6, cores=8)
        with pytest.warns(RuntimeWarning, match="no diff helper"):
            rows = list(iter_records(history.path, OPTIONS, helper=True))
        assert not multiprocessing.active_children()
    finally:
        stop.set()
    assert rows == list(iter_records(history.path, OPTIONS, helper=False))


@pytest.mark.parametrize(
    "options",
    [
        MiningOptions("carperai", max_file_bytes=HUGE_LIMIT),  # licence, language and token rules
        MiningOptions("commitpackft", max_file_bytes=HUGE_LIMIT),  # most commits dropped by message
        MiningOptions(filter="none", crop_context=2, max_file_bytes=HUGE_LIMIT),  # cropped texts diffed
        MiningOptions(filter="none", max_file_bytes=200),  # most files huge
        MiningOptions(filter="none", max_file_bytes=HUGE_LIMIT, verify=False),
    ],
    ids=["carperai", "commitpackft", "crop", "huge", "no-verify"],
)
def test_every_preset_gives_the_same_rows_and_drops_with_the_helper(history, options):
    expected = _mine_with(history.path, None, options)
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, options, start_method="fork")
    try:
        _claimed(made, 10)
        got = _mine_with(history.path, made, options)
    finally:
        made.close()
    assert got == expected


def test_each_repository_of_a_parquet_job_gets_a_forked_helper(history, tmp_path, monkeypatch):
    """The Parquet writer encodes shards in a thread; the job flushes it before the next repository's
    helper starts, so that helper is a fork too (with the thread alive it could not be, from a script)."""
    other = History(tmp_path / "other")
    for k in range(8):
        other.commit(f"o{k}", f"Edit the other file, step {k}", {"other.py": f"x = {k}\\n" * (k + 1)})
    started: list[str] = []
    real_init = ahead.DiffsAhead.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self._process._start_method)

    monkeypatch.setattr(ahead.DiffsAhead, "__init__", init)
    # the threads of this process that count are the job's own (other tests may have left some)
    monkeypatch.setattr(
        threading,
        "active_count",
        lambda: 1 + sum(t.name.startswith("shard-writer") for t in threading.enumerate()),
    )
    out = tmp_path / "two.parquet"
    summary = job.run_mining(
        [history.path, other.path], out, OPTIONS, workers=1, helper=True, batch_size=4, shard_bytes=1
    )
    assert started == ["fork", "fork"]
    alone = tmp_path / "alone.parquet"
    expected = job.run_mining([history.path, other.path], alone, OPTIONS, workers=1, helper=False)
    key = ("commit", "path", "sample")
    assert sorted(tuple(r[k] for k in key) for r in read_rows(out)) == sorted(
        tuple(r[k] for k in key) for r in read_rows(alone)
    )
    assert summary["skipped"] == expected["skipped"]


def test_the_miner_forgets_the_commits_it_claimed_and_dropped(history):
    """commitpackft drops most commits on their message, before any diff is asked: what the miner
    claimed for them must not pile up (a history of millions of commits)."""
    options = MiningOptions("commitpackft", max_file_bytes=HUGE_LIMIT)
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, options, start_method="fork")
    try:
        _mine_with(history.path, made, options)
        assert len(made._mine) <= 1
    finally:
        made.close()


def test_a_commit_asked_out_of_order_is_made_by_the_miner(history):
    """What the helper sent for it may already be gone: the miner must not wait for it."""
    commits = list_commits(open_repository(history.path))
    made = ahead.DiffsAhead(str(history.path), commits, OPTIONS, start_method="fork")
    try:
        _claimed(made, 10)
        assert made.lookup(5).changes() is not None  # the helper's, received
        late = made.lookup(2)
        assert late.changes() is None and late.hunks("a" * 40, "b" * 40) is ahead.MISSING
        assert made.lookup(6).changes() is not None  # and it goes on in order
    finally:
        made.close()
