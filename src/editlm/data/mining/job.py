"""``editlm mine`` as a job: many repositories, all cores or a Dask cluster, resumable, one output file.

Work is cut into batches of commits of one repository; workers (processes, or Dask workers that can
read the same paths) mine a batch and send back its records. Output goes through
:class:`editlm.io.tables.ShardedWriter`, keyed by ``(repository path, commit)``: a killed job reruns
only the commits it had not finished, and a rerun on a repository with new commits mines only those.
Dropped files are recorded under ``(repository path, commit, file path)`` keys, dropped commits under
their commit key and unusable repositories under ``(repository path,)``, so the summary counts every
drop by reason over all runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from editlm.data.mining.commits import (
    CommitResult,
    LicenseCache,
    MiningError,
    MiningOptions,
    list_commits,
    mine_commit,
    open_repository,
    repository_name,
)
from editlm.io.parallel import map_unordered
from editlm.io.tables import ShardedWriter


@dataclass(frozen=True)
class Batch:
    """Commits of one repository, mined together by one worker."""

    path: str  # absolute path of the repository
    name: str
    commits: tuple[str, ...]
    options: MiningOptions


_LOCAL = threading.local()  # per worker process or Dask worker thread: path -> (Repository, LicenseCache)


def mine_batch(batch: Batch) -> tuple[str, list[CommitResult]]:
    """Worker side: the results of a batch (top-level so processes and Dask can run it)."""
    repos = _LOCAL.__dict__.setdefault("repos", {})  # libgit2 repositories are not shared across threads
    if batch.path not in repos:
        if len(repos) > 16:
            repos.clear()
        try:
            repos[batch.path] = (open_repository(batch.path), LicenseCache())
        except MiningError:  # gone or unreadable since the job was planned
            return batch.path, [
                CommitResult(c, reason="commit: repository unreadable") for c in batch.commits
            ]
    repo, licenses = repos[batch.path]
    return batch.path, [_mine_or_report(repo, c, batch, licenses) for c in batch.commits]


def _mine_or_report(repo, commit: str, batch: Batch, licenses: LicenseCache) -> CommitResult:
    """One commit that breaks in a way nobody foresaw is counted by its error, not fatal to the job."""
    try:
        return mine_commit(repo, commit, batch.options, batch.name, licenses)
    except Exception as exc:  # noqa: BLE001 - reported in the summary under its type
        return CommitResult(commit, reason=f"commit: failed with {type(exc).__name__}")


def plan(
    repositories: Iterable[str | Path],
    writer: ShardedWriter,
    options: MiningOptions,
    rev: str,
    batch_size: int,
) -> tuple[list[Batch], dict]:
    """Batches of the commits not yet done; repositories that cannot be mined are skipped in ``writer``."""
    batches: list[Batch] = []
    stats = {"repositories": 0, "commits_total": 0, "commits_todo": 0}
    for given in repositories:
        path = str(Path(given).resolve())
        if (path,) in writer.done:
            continue
        try:
            repo = open_repository(path)
            commits = list_commits(repo, rev)
        except MiningError:
            writer.skip((path,), "repository: not a git repository or no such revision")
            continue
        stats["repositories"] += 1
        if not commits:
            writer.skip((path,), "repository: no commits")
            continue
        todo = [c for c in commits if (path, c) not in writer.done]
        stats["commits_total"] += len(commits)
        stats["commits_todo"] += len(todo)
        name = repository_name(repo, path)
        for start in range(0, len(todo), batch_size):
            batches.append(Batch(path, name, tuple(todo[start : start + batch_size]), options))
    return batches, stats


def run_mining(
    repositories: Iterable[str | Path],
    output: str | Path,
    options: MiningOptions | None = None,
    *,
    rev: str = "HEAD",
    workers: int | None = None,
    scheduler=None,
    batch_size: int = 64,
    shard_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Mine ``repositories`` into ``output`` (``.parquet`` or ``.jsonl``); returns the summary.

    ``progress(done, total)`` is called after each batch with commit counts.
    """
    options = options or MiningOptions()
    writer = ShardedWriter(output, shard_size=shard_size)
    batches, stats = plan(repositories, writer, options, rev, batch_size)
    total, done = stats["commits_todo"], 0
    if progress:
        progress(0, total)
    results = map_unordered(mine_batch, batches, workers=workers, scheduler=scheduler, chunksize=1)
    for path, commit_results in results:
        for result in commit_results:
            for file_path, reason in result.file_skips:
                key = (path, result.commit, file_path)
                if key not in writer.done:  # a shard flushed before a crash may hold it already
                    writer.skip(key, reason)
            if result.reason:
                writer.skip((path, result.commit), result.reason)
            else:
                writer.add((path, result.commit), result.rows)
        done += len(commit_results)
        if progress:
            progress(done, total)
    extra = {
        "filter": options.filter,
        "token_limit": options.token_limit,
        "tokenizer": options.tokenizer if options.token_limit is not None else None,
        "crop_context": options.crop_context,
        "rev": rev,
        "this_run": {**stats, "commits_mined": done},
    }
    return writer.finish(extra)
