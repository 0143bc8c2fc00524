"""Diffs made ahead: a helper process makes libgit2's diffs of the commits the miner reaches next.

Half of mining a history in one process is libgit2's diff of each modified file (xdiff: C code, and
pygit2 holds the GIL while it runs, so a thread could not run it beside the miner), and what it makes,
the hunks, is small next to the two files around it. So the miner (blobs, licences, headers, rows, the
row check) keeps its work, and a helper process forked from it lists the changed files and makes the
hunks of the commits ahead of it, and sends only those (more-itertools: 4.8 MB of messages, 3.8 M
characters of hunks, for 680 M characters of rows). Rows never cross a process boundary (sending and
unpickling them cost more than mining them; see :mod:`editlm.data.mining.job`).

Commits are claimed from a shared counter: the helper takes the next commit nobody has claimed; the
miner, on reaching a commit the helper has not claimed, claims it, and while the helper is fewer than
:data:`LEAD` commits ahead it claims the next one too. Each diff is made once and the two finish
together: on more-itertools the helper made 1,170-1,660 of the 1,758 commits in nine runs and both
were busy to the end. The helper stays at most :data:`AHEAD` commits ahead of the miner and sends at most
:data:`MAX_BYTES` of hunks per commit (the miner makes the rest); the miner reads one message at a time,
so memory stays bounded.

The hunks are :func:`editlm.data.mining.gitdiff.hunks_of` of the same two blobs (keyed by both blob
ids) and the changed files :func:`editlm.data.mining.commits.commit_changes` of the same commit, so a
row is the same with or without the helper, and the row check still checks every row in the miner. A
helper that fails or dies costs only its speed: the miner makes what it did not send. It is started
where it pays (:func:`helper_wanted`) as a fork of the miner, or from a fork server when another
thread runs (a fork copies a running thread's locks mid-use), and ends with the miner: on close (the
end of :func:`editlm.data.mining.commits.iter_records`, or a consumer that stops early), when the
miner is stopped by a signal, and on its own when the miner's process is gone (``kill -9``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

AHEAD = 64  # commits the helper may run ahead of the miner
# With the helper fewer commits ahead, the miner claims the next one for itself. iter_records on
# more-itertools, ad hoc (min of 3 runs, s): LEAD 2: 0.79, 4: 0.76, 8: 0.73, 16: 0.75, 32: 0.84 (the
# miner then takes too many).
LEAD = 8
MAX_BYTES = 8 << 20  # hunks sent per commit; the miner makes a larger commit's other diffs itself
PIPE_BYTES = 1 << 20  # the pipe's buffer (Linux' default /proc/sys/fs/pipe-max-size)
MAX_CHANGES = 10_000  # changed files sent per commit; the miner lists a larger commit's itself
# Commits a helper needs to pay for its start (~20 ms: multiprocessing's imports, the fork). The newest
# N commits mined as a history, best of 5, alone / with a helper (``python benchmarks/mining_speed.py
# --repeats 5 --helper-sizes 100,200,400``): markupsafe 100: 0.203 / 0.226 s, 200: 0.244 / 0.233 s,
# 400: 0.283 / 0.259 s; more-itertools 100: 0.263 / 0.228 s, 200: 0.423 / 0.341 s, 400: 0.536 / 0.430 s.
HELPER_COMMITS = 200
MISSING = object()  # "not made ahead": the miner diffs the pair itself

_LINK, _SUBMODULE = 0o120000, 0o160000


def helper_wanted(commits: int, cores: int | None = None) -> bool:
    """Whether a helper pays and can start: on Linux, with two cores or more and
    :data:`HELPER_COMMITS` commits or more to mine, and a safe way to start it
    (:func:`start_method_here`)."""
    from editlm.io.parallel import default_workers

    cores = cores or default_workers()
    return (
        sys.platform.startswith("linux")
        and cores >= 2
        and commits >= HELPER_COMMITS
        and start_method_here() is not None
    )


def start_method_here() -> str | None:
    """How a helper starts from this process: ``fork`` when no other thread runs (a fork copies a
    running thread's locks mid-use); else a fork server, unless the program is a script run by its
    path: multiprocessing's children of a fork server import the main script again, and one without
    an ``if __name__ == "__main__"`` guard would start mining again in the helper. None: no helper."""
    if threading.active_count() == 1:
        return "fork"
    main = sys.modules.get("__main__")
    if getattr(main, "__spec__", None) is None and getattr(main, "__file__", None):
        return None
    return "forkserver"


def start(path: str, commits: list[str], options) -> DiffsAhead | None:
    """A helper for ``commits``, or None (with a warning) where none can start safely
    (:func:`start_method_here`): the miner then works alone, to the same rows."""
    if start_method_here() is None:
        import warnings

        warnings.warn(
            "editlm: no diff helper from a script run by its path with other threads running; "
            "mining in one process",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return DiffsAhead(path, commits, options)


class Made:
    """What the helper made for one commit, fetched on first use: the changed files (None: not made
    ahead) and the hunks of each pair of blobs (:data:`MISSING`: the miner diffs that pair)."""

    __slots__ = ("_ahead", "_index", "_made")

    def __init__(self, ahead: DiffsAhead, index: int) -> None:
        self._ahead, self._index, self._made = ahead, index, None

    def _get(self) -> tuple:
        if self._made is None:
            self._made = self._ahead._made_for(self._index)
        return self._made

    def changes(self) -> list | None:
        return self._get()[0]

    def hunks(self, old_oid: str, new_oid: str):
        return self._get()[1].get((old_oid, new_oid), MISSING)


_NOTHING = (None, {})


class DiffsAhead:
    """The miner's side: ``lookup(index)`` gives the :class:`Made` of the ``index``-th commit of
    ``commits``; ask in order. Claiming happens there: a commit the helper has not claimed is the
    miner's (nothing made ahead), one it has is waited for on first use."""

    def __init__(self, path: str, commits: list[str], options, start_method: str | None = None) -> None:
        import multiprocessing as mp

        start_method = start_method or start_method_here()
        if start_method is None:
            raise RuntimeError("no safe way to start a helper from here (see start_method_here)")
        context = mp.get_context(start_method)
        if start_method == "forkserver":  # what the server imports once (not __main__, the default)
            context.set_forkserver_preload(["editlm.data.mining.ahead", "editlm.data.mining.commits"])
        self._claimed = context.Value("q", 0)  # next commit index nobody has claimed
        self._at = context.RawValue("q", 0)  # the commit the miner is at
        receive, send = context.Pipe(duplex=False)
        _widen(send)
        self._conn = receive
        self._received: dict[int, tuple] = {}
        self._mine: set[int] = set()  # commits the miner claimed: it makes their diffs
        self._alive = True
        self._total = len(commits)
        self.made_ahead = self.made_here = 0  # commits made by each side (for tests and benchmarks)
        self._process = context.Process(
            target=_helper,
            args=(path, commits, options, self._claimed, self._at, send),
            daemon=True,
            name="editlm-diffs-ahead",
        )
        self._process.start()
        send.close()

    def lookup(self, index: int) -> Made:
        if index < self._at.value:  # asked out of order: made here (what the helper sent is gone)
            self._mine.add(index)
            return Made(self, index)
        self._at.value = index
        self._mine.discard(index - 1)  # claimed by the miner, then dropped before its diffs were asked
        with self._claimed.get_lock():
            claimed = self._claimed.value
            if claimed <= index:  # the helper is behind: this commit is the miner's
                self._mine.add(index)
                self._claimed.value = index + 1
            elif claimed - index < LEAD and claimed < self._total:  # not far enough ahead: take one
                self._mine.add(claimed)
                self._claimed.value = claimed + 1
        return Made(self, index)

    def _made_for(self, index: int) -> tuple:
        if index in self._mine:
            self._mine.discard(index)
            self.made_here += 1
            return _NOTHING
        while self._alive and index not in self._received:
            try:
                got, made = self._conn.recv()
            except (EOFError, OSError):  # the helper died: the miner makes what is left
                self._alive = False
                break
            if got >= index:
                self._received[got] = made
        for old in [k for k in self._received if k < index]:
            del self._received[old]
        if index not in self._received:
            self.made_here += 1
            return _NOTHING
        self.made_ahead += 1
        return self._received.pop(index)

    def close(self) -> None:
        with self._claimed.get_lock():
            self._claimed.value = 1 << 62  # nothing more to claim
        self._conn.close()
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()


def _widen(conn) -> None:
    """Give the pipe 1 MB (Linux; 64 kB by default) so that the helper seldom waits for the miner to
    read: reading it as it fills (a ``poll`` per commit) cost the miner 60 ms on more-itertools."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):  # another system, or over /proc/sys/fs/pipe-max-size: 64 kB it is
        pass


class PerRepository:
    """Helpers for a job in one process: one at a time, for the repository being mined, over the
    commits the job will mine from it (``commits[path]``, in the order it mines them). ``wanted``:
    None decides per repository (:func:`helper_wanted`), True always, False never. ``before_start`` is
    called before a helper starts: the job flushes its writer, whose background thread would
    otherwise make the start a fork server's, or none."""

    def __init__(
        self,
        commits: dict[str, list[str]],
        options,
        wanted: bool | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        self._commits, self._options, self._wanted = commits, options, wanted
        self._before_start = before_start  # e.g. the writer's flush, which ends its thread: then a fork
        self._path: str | None = None
        self._ahead: DiffsAhead | None = None
        self._index: dict[str, int] = {}

    def lookup(self, path: str, commit: str) -> Made | None:
        if path != self._path:
            self.close()
            self._path = path
            todo = self._commits.get(path, [])
            long_enough = self._wanted or (self._wanted is None and len(todo) >= HELPER_COMMITS)
            if todo and long_enough:
                if self._before_start is not None:
                    self._before_start()  # first: helper_wanted looks at the threads running
                if self._wanted or helper_wanted(len(todo)):
                    self._index = {c: i for i, c in enumerate(todo)}
                    self._ahead = start(path, todo, self._options)
        index = self._index.get(commit)
        return None if self._ahead is None or index is None else self._ahead.lookup(index)

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
        self._path, self._ahead, self._index = None, None, {}


def _helper(path, commits, options, claimed, at, conn) -> None:
    import signal

    parent = os.getppid()  # the miner, or the fork server that ends with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the miner decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from editlm.data.mining.commits import RepoCache, open_repository

    try:
        repo = open_repository(path)
    except Exception:  # noqa: BLE001 - the miner makes every diff itself
        return
    cache = RepoCache()
    total = len(commits)
    try:
        while os.getppid() == parent:
            with claimed.get_lock():
                index = claimed.value
                if index >= total:
                    return
                ahead = index > at.value + AHEAD
                if not ahead:
                    claimed.value = index + 1
            if ahead:
                time.sleep(0.001)
                continue
            try:
                made = commit_diffs(repo, commits[index], options, cache)
            except Exception:  # noqa: BLE001 - a commit nobody foresaw: the miner makes it
                made = _NOTHING
            conn.send((index, made))
    except (BrokenPipeError, EOFError, OSError):  # the miner closed or is gone
        return
    finally:
        conn.close()


def commit_diffs(repo, commit_id: str, options, cache) -> tuple[list | None, dict]:
    """(changed files, hunks) of a commit as the miner would make them: the files of
    :func:`editlm.data.mining.commits.commit_changes` (None for a commit the miner drops first, or one
    of over :data:`MAX_CHANGES` files), and the hunks of the pairs it would diff, keyed ``(old blob id,
    new blob id)``: files with both sides, regular, not binary, not over ``max_file_bytes``, kept by
    the preset's licence and path rules, up to :data:`MAX_BYTES` of hunks. Added and deleted files
    are left to the miner: their hunks are the whole file, and making them is no diff."""
    from editlm.data.mining import filters as mining_filters
    from editlm.data.mining import gitdiff
    from editlm.data.mining.commits import _CHANGE_NAMES, commit_changes, commit_message
    from editlm.data.mining.languages import language_of

    commit = repo[commit_id]
    if commit_message(commit, options, cache.shallow(repo))[0]:
        return _NOTHING
    changes = commit_changes(repo, commit)
    rules = options.rules
    sent = changes if len(changes) <= MAX_CHANGES else None
    if rules.octopack or rules.permissive_only:  # the presets that drop commits for their licence
        same_path = sum(c.status in ("M", "T") for c in changes)
        if mining_filters.commit_reason(rules, cache.license_of(repo, commit, changes), same_path):
            return sent, {}
    diffs: dict = {}
    size = 0
    for change in changes if options.crop_context is None else ():  # cropped: the texts are diffed
        old, new = change.old, change.new
        if old is None or new is None or {old.mode, new.mode} & {_LINK, _SUBMODULE}:
            continue
        if new.path is None or old.path is None:
            continue  # the miner drops it: path not UTF-8
        if mining_filters.path_reason(rules, language_of(new.path), new.path, _CHANGE_NAMES[change.status]):
            continue
        try:
            blobs = [cache.blob(repo, side.oid, options.max_file_bytes) for side in (old, new)]
        except Exception:  # noqa: BLE001 - a missing object: the miner reports it
            continue
        if None in blobs or any(gitdiff.is_binary(memoryview(b)[:8000].tobytes()) for b in blobs):
            continue
        hunks = gitdiff.hunks_of(*blobs)
        diffs[(old.oid, new.oid)] = hunks
        size += len(hunks or "")
        if size > MAX_BYTES:
            break
    return sent, diffs
