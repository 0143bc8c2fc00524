"""``editlm mine`` as a job: many repositories, all cores or a Dask cluster, resumable, one output file.

Work is cut into batches of commits of one repository; workers (processes, or Dask workers that can
read the same paths) mine a batch. Worker processes on this machine write its rows as shards beside
the output themselves and send back only their keys and the commits' outcomes
(:meth:`editlm.io.tables.ShardedWriter.adopt`): sending every row to the job, pickled over a pipe, and
encoding it there cost more than mining it. Dask workers, which may not see the output's folder, and
a job in one process stream the records one at a time (over a bounded queue,
:func:`editlm.io.parallel.stream_unordered`) to :class:`editlm.io.tables.ShardedWriter`; a job in one
process has its diffs made ahead by a helper process (:mod:`editlm.data.mining.ahead`), which on two
cores beats a pool of two (:func:`auto_workers`). Shards are
flushed by bytes either way, so memory stays flat whatever the size of the rows or of one commit.

Keys: a record and a dropped file are keyed ``(repository, commit, old path, path)``, a finished or
dropped commit ``(repository, commit)`` and an unusable repository ``(repository,)``: a killed job
reruns only the commits it had not finished (skipping the files of a half-written commit that already
landed), and a rerun on a repository with new commits mines only those. The output resumes only with
the same options (``overwrite=True`` replaces it). The same repository given twice is mined once, and a
commit already mined from another repository (a fork) is counted, not mined again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from editlm.data.mining.ahead import PerRepository
from editlm.data.mining.commits import (
    COLUMNS,
    MiningError,
    MiningOptions,
    RepoCache,
    iter_commit,
    list_commits,
    open_repository,
    repository_name,
)
from editlm.io.parallel import check_workers, default_workers, sigterm_interrupts, stream_unordered
from editlm.io.tables import ShardedWriter

FORK_DUPLICATE = "commit: already mined from another repository"
# Commits per worker process that a pool needs to pay for itself (``workers=None``): starting the
# workers (each imports and opens the repository) and joining their shards cost more than the parallel
# mining saves on a small history (see ``auto_workers``). Measured (`benchmarks/mining_speed.py --workers 1,2`, best of 3,
# two quiet runs): two workers lost on markupsafe's 522 commits (0.77 s against 0.62 s wall; 0.81 / 0.59)
# and paid on more-itertools' 1,758 (1.96 against 2.19 s; 1.84 / 2.19), so a pool from 800 commits.
POOL_COMMITS = 800


def auto_workers(commits: int, cores: int | None = None, helper: bool | None = None) -> int:
    """The worker count ``workers=None`` picks: one process (no pool) under :data:`POOL_COMMITS`
    commits to mine, else one worker per ``POOL_COMMITS`` commits up to the number of cores, except
    that one process with a diff helper (:mod:`editlm.data.mining.ahead`) replaces a pool of two: on
    more-itertools (2 cores) it took 1.44-1.61 s against 1.97-2.47 s into JSONL and 2.00-2.35 s
    against 1.95-2.22 s into Parquet (``editlm mine --workers 1`` / ``--workers 2``, three runs each).
    ``helper``: as :func:`run_mining`'s (False: no helper, so a pool of two stays)."""
    from editlm.data.mining.ahead import helper_wanted

    cores = cores or default_workers()
    count = max(1, min(cores, commits // POOL_COMMITS))
    if count == 2 and helper is not False and (helper or helper_wanted(commits, cores)):
        return 1
    return count


@dataclass(frozen=True)
class Batch:
    """Commits of one repository, mined together by one worker."""

    path: str  # absolute path of the repository
    name: str
    commits: tuple[str, ...]
    options: MiningOptions
    done_files: frozenset = frozenset()  # (commit, old path, path) of files already written
    # A pool on this machine: the worker writes its rows itself as shards beside the output (at
    # ShardedWriter.worker_shards(), up to shard_bytes of text each) and sends only their keys; else
    # (one process, Dask) every row is sent back.
    shards: str | None = None
    shard_bytes: int = 32 << 20
    pack: bool = True  # rows travel to another process: send each sample once (see _pack)


_LOCAL = threading.local()  # per worker process or Dask worker thread: path -> (Repository, RepoCache)


def mine_batch(batch: Batch, ahead: PerRepository | None = None) -> Iterator[tuple]:
    """Worker side: ``(kind, repository, commit, file id, value)`` events of a batch, one at a time.

    With ``batch.shards`` the rows are written here as shards and a ``("shard", repository,
    None, keys, path)`` event stands for each; a commit's event comes only after the shard holding
    its rows is on disk (a commit is recorded as done only once all its rows are)."""
    if batch.shards is None:
        yield from _mine_events(batch, ahead)
        return
    import itertools

    from editlm.data.mining.allocator import keep_freed_memory
    from editlm.io.tables import _row_bytes, write_shard

    keep_freed_memory()  # a worker process of ours (see editlm.data.mining.allocator)

    rows, keys, held, size = [], [], [], 0
    count = itertools.count()

    def shard():
        nonlocal rows, keys, held, size
        if rows:
            path = batch.shards.format(f"{os.getpid()}-{next(count)}-{uuid.uuid4().hex[:8]}")
            write_shard(path, rows, _schema() if path.endswith(".parquet") else None)
            yield "shard", batch.path, None, keys, path
        yield from held
        rows, keys, held, size = [], [], [], 0

    for event in _mine_events(batch):
        kind, path, commit, key, value = event
        if kind == "file" and not isinstance(value, str):
            rows.append(value)
            keys.append((path, commit, *key))
            size += _row_bytes(rows[-1])
            if size >= batch.shard_bytes:
                yield from shard()
        else:
            held.append(event)
    yield from shard()


def _mine_events(batch: Batch, ahead: PerRepository | None = None) -> Iterator[tuple]:
    repos = _LOCAL.__dict__.setdefault("repos", {})  # libgit2 repositories are not shared across threads
    if batch.path not in repos:
        if len(repos) > 16:
            repos.clear()
        try:
            repos[batch.path] = (open_repository(batch.path), RepoCache())
        except MiningError:  # gone or unreadable since the job was planned
            for commit in batch.commits:
                yield "commit", batch.path, commit, None, "commit: repository unreadable"
            return
    repo, cache = repos[batch.path]
    for commit in batch.commits:
        try:
            diffs = ahead.lookup(batch.path, commit) if ahead is not None else None
            for kind, key, value in iter_commit(repo, commit, batch.options, batch.name, cache, diffs):
                if kind == "file":
                    if (commit, *key) not in batch.done_files:
                        yield "file", batch.path, commit, key, _pack(value) if batch.pack else value
                else:
                    yield "commit", batch.path, commit, None, value
        except Exception as exc:  # noqa: BLE001 - one commit nobody foresaw is counted, not fatal
            yield "commit", batch.path, commit, None, f"commit: failed with {type(exc).__name__}"


def _pack(row):
    """``prompt`` and ``completion`` are the two halves of ``sample``: send the sample once (a row
    crosses the process boundary with a third less text) and cut it again in the job."""
    if isinstance(row, dict) and row["prompt"] is not None and row["sample"].startswith(row["prompt"]):
        row = dict(row)
        row["prompt"] = len(row["prompt"])
        row["completion"] = None
    return row


def _unpack(row: dict) -> dict:
    if isinstance(row["prompt"], int):
        cut = row["prompt"]
        row["prompt"], row["completion"] = row["sample"][:cut], row["sample"][cut:]
    return row


def settings_of(options: MiningOptions, rev: str) -> dict:
    """What decides the rows: resuming with other values would mix two datasets in one file."""
    recorded = dataclasses.asdict(options)
    recorded.pop("verify")  # the check drops nothing a correct miner makes
    return {**recorded, "rev": rev, "columns": list(COLUMNS)}


def _schema():
    import pyarrow as pa

    strings = pa.string()
    return pa.schema([(name, pa.int64() if name == "crop_start" else strings) for name in COLUMNS])


def plan(
    repositories: Iterable[str | Path],
    writer: ShardedWriter,
    options: MiningOptions,
    rev: str,
    batch_size: int,
) -> tuple[list[Batch], dict]:
    """Batches of the commits not yet done; repositories that cannot be mined are skipped in ``writer``."""
    batches: list[Batch] = []
    stats = {"repositories": 0, "repositories_given_twice": 0, "commits_total": 0, "commits_todo": 0}
    seen_repos: set[str] = set()
    mined_ids = {key[1] for key in writer.done if isinstance(key, tuple) and len(key) == 2}
    files_done: dict[tuple[str, str], set] = {}
    for key in writer.done:
        if isinstance(key, tuple) and len(key) == 4:
            files_done.setdefault((key[0], key[1]), set()).add(key[1:])
    for given in repositories:
        path = str(Path(given).resolve())
        try:
            repo = open_repository(path)
        except MiningError as exc:
            if (path,) not in writer.done:
                owned = "owned by another user" in str(exc)
                writer.skip(
                    (path,), f"repository: {'owned by another user' if owned else 'not a git repository'}"
                )
            continue
        identity = str(Path(repo.path).resolve())
        if identity in seen_repos:
            stats["repositories_given_twice"] += 1
            continue
        seen_repos.add(identity)
        if (path,) in writer.done:
            continue
        try:
            commits = list_commits(repo, rev)
        except MiningError:
            writer.skip((path,), "repository: no such revision")
            continue
        stats["repositories"] += 1
        if not commits:
            writer.skip((path,), "repository: no commits")
            continue
        todo = []
        for commit in commits:
            if (path, commit) in writer.done:
                continue
            if commit in mined_ids:
                writer.skip((path, commit), FORK_DUPLICATE)
                continue
            mined_ids.add(commit)
            todo.append(commit)
        stats["commits_total"] += len(commits)
        stats["commits_todo"] += len(todo)
        name = repository_name(repo, path)
        for start in range(0, len(todo), batch_size):
            chunk = tuple(todo[start : start + batch_size])
            done_files = frozenset(f for c in chunk for f in files_done.get((path, c), ()))
            batches.append(Batch(path, name, chunk, options, done_files))
    return batches, stats


def run_mining(
    repositories: Iterable[str | Path],
    output: str | Path,
    options: MiningOptions | None = None,
    *,
    rev: str = "HEAD",
    workers: int | None = None,
    scheduler=None,
    batch_size: int = 32,
    shard_size: int = 5000,
    shard_bytes: int = 32 << 20,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    helper: bool | None = None,
) -> dict:
    """Mine ``repositories`` into ``output`` (``.parquet`` or ``.jsonl``); returns the summary.

    ``workers``: a count, 0 for all cores, or None to choose by the number of commits to mine
    (:func:`auto_workers`). ``progress(done, total)`` is called as commits finish. ``helper``: in one
    process, make the diffs ahead in a second one (:mod:`editlm.data.mining.ahead`; the same rows);
    None: where it pays (:func:`editlm.data.mining.ahead.helper_wanted`). Raises ValueError
    for a bad ``workers`` or
    ``batch_size`` and :class:`editlm.io.tables.SettingsMismatch` for an output made with other options.
    On SIGTERM/Ctrl-C the workers are stopped, what was finished is flushed, and the
    ``KeyboardInterrupt`` (:class:`editlm.io.parallel.Interrupted` for SIGTERM) propagates.
    """
    options = options or MiningOptions()
    check_workers(workers)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    writer = ShardedWriter(
        output,
        shard_size=shard_size,
        shard_bytes=shard_bytes,
        settings=settings_of(options, rev),
        overwrite=overwrite,
        schema=_schema,  # made for Parquet only: a JSONL job does not import pyarrow
        columns=COLUMNS,
    )
    batches, stats = plan(repositories, writer, options, rev, batch_size)
    ahead = None
    total, done = stats["commits_todo"], 0
    if progress:
        progress(0, total)
    if workers is None and scheduler is None:
        workers = auto_workers(total, helper=helper)
    if scheduler is None and check_workers(workers) > 1:
        # Worker processes write their rows as shards themselves: sending them to this process
        # (pickled, over a pipe) and encoding them here cost more than mining them (more-itertools:
        # 1.7 s to unpickle 510 MB and 0.8 s to encode it, against 1.2 s of mining).
        where = writer.worker_shards()
        batches = [dataclasses.replace(b, shards=where, shard_bytes=shard_bytes, pack=False) for b in batches]
    elif scheduler is None:  # one process: rows are not sent anywhere (cutting the sample again copies it)
        batches = [dataclasses.replace(b, pack=False) for b in batches]
        # and a helper process makes the diffs ahead (editlm.data.mining.ahead)
        todo: dict[str, list[str]] = {}
        for b in batches:
            todo.setdefault(b.path, []).extend(b.commits)
        if helper is not False:
            ahead = PerRepository(todo, options, helper, before_start=writer.flush)
    events = stream_unordered(
        mine_batch if ahead is None else functools.partial(mine_batch, ahead=ahead),
        batches,
        workers=workers,
        scheduler=scheduler,
        queue_size=16,
        preload=("pyarrow.parquet", "editlm.io.tables") if writer.format == "parquet" else (),
    )
    try:
        with sigterm_interrupts(), contextlib.closing(events):
            for kind, path, commit, key, value in events:
                if kind == "shard":  # rows a worker wrote; their commits' events follow
                    writer.adopt(value, key, len(key))
                    continue
                if kind == "file":
                    file_key = (path, commit, *key)
                    if file_key in writer.done:
                        continue  # landed before a crash
                    if isinstance(value, str):
                        writer.skip(file_key, value)
                    else:
                        writer.add(file_key, [_unpack(value)])
                    continue
                if value:
                    writer.skip((path, commit), value)
                else:
                    writer.add((path, commit), [])
                done += 1
                if progress:
                    progress(done, total)
    except BaseException:
        writer.flush()  # keep every finished key: a rerun resumes from here
        raise
    finally:
        if ahead is not None:
            ahead.close()
    extra = {
        "filter": options.filter,
        "token_limit": options.token_limit,
        "tokenizer": options.tokenizer if options.counts_tokens else None,
        "crop_context": options.crop_context,
        "rev": rev,
        "this_run": {**stats, "commits_mined": done},
    }
    return writer.finish(extra)
