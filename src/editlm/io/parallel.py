"""One way to run a data job on all cores or on a Dask cluster, streaming, and stoppable.

:func:`stream_unordered` runs ``fn(item)`` (an iterator of results) in worker processes and yields
every result as soon as it is made: results cross a bounded queue, so a worker that makes results
faster than the job writes them waits, and memory stays flat however large one item's output is.
:func:`map_unordered` is the one-result-per-item form. A bounded number of items is in flight, so the
input is never held or pickled whole (the LintSeq reference pickles the whole table for every task).

SIGTERM (and SIGINT) end the worker processes: the parent raises :class:`Interrupted` (a
``KeyboardInterrupt``) out of the loop, the workers are terminated before it propagates, and a job
writing through :class:`editlm.io.tables.ShardedWriter` keeps every shard it flushed, so rerunning the
same command resumes. A worker also exits on its own when its parent dies (``kill -9``). The pool is
written here on ``multiprocessing`` rather than ``concurrent.futures`` because an executor can neither
stream results out of a running task nor terminate workers blocked on its pipes.

``fn`` must be a top-level function (or a ``functools.partial`` of one); it runs in worker processes,
or in Dask worker *threads* (there a task's results are collected before they travel), so per-item
time limits belong inside ``fn`` as deadline checks, not as signals.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_RESULT, _DONE, _ERROR = 0, 1, 2


class Interrupted(KeyboardInterrupt):
    """The job was stopped by a signal; its workers are gone and its output can be resumed."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def check_workers(workers: int | None) -> int:
    """``workers`` as a count (None or 0: all cores); a negative count is a ValueError."""
    if workers is None or workers == 0:
        return default_workers()
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be 0 (all cores) or a positive count, not {workers!r}")
    return workers


def _chunk_results(fn: Callable[[Any], Any], chunk: list) -> Iterator[Any]:
    for item in chunk:
        yield fn(item)


def map_unordered(
    fn: Callable[[Any], Any],
    items: Iterable,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int = 8,
    in_flight: int | None = None,
) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, in completion order.

    ``workers=1`` runs in this process (handy for debugging and tests); ``scheduler`` is a Dask
    scheduler address (``tcp://host:8786``) or a ``distributed.Client``.
    """
    import functools

    yield from stream_unordered(
        functools.partial(_chunk_results, fn),
        _chunked(items, chunksize),
        workers=workers,
        scheduler=scheduler,
        in_flight=in_flight,
    )


def stream_unordered(
    fn: Callable[[Any], Iterable],
    items: Iterable,
    *,
    workers: int | None = None,
    scheduler=None,
    in_flight: int | None = None,
    queue_size: int = 64,
    preload: tuple[str, ...] = (),
) -> Iterator[Any]:
    """Yield every result of ``fn(item)`` for every item, as workers make them.

    Results of one item arrive in order; items interleave. At most ``in_flight`` items (default two
    per worker) are handed out at a time and at most ``queue_size`` results wait to be consumed.
    ``preload``: modules the workers will need, imported once before they are forked (with the
    module that defines ``fn``), rather than in every worker.
    """
    workers = check_workers(workers)
    if scheduler is None and workers == 1:
        for item in items:
            yield from fn(item)
        return
    limit = in_flight or 2 * workers
    if scheduler is not None:
        yield from _dask_map(fn, iter(items), scheduler, limit)
        return
    yield from _process_map(fn, iter(items), workers, limit, queue_size, preload)


def _process_map(
    fn, items: Iterator, workers: int, limit: int, queue_size: int, preload: tuple[str, ...] = ()
) -> Iterator[Any]:
    import multiprocessing as mp

    # forkserver: workers start clean (no copy of a parent holding models or tables), safe with threads.
    context = mp.get_context("forkserver")
    # The module that defines fn is imported once, in the fork server, before it forks the workers:
    # each worker would otherwise import it (mining: pygit2 and editlm, 0.2 s of CPU per worker).
    # It takes effect when the fork server starts (the first pool of this process).
    target = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(target, "__module__", "__main__")
    context.set_forkserver_preload([*([module] if module != "__main__" else []), *preload])
    tasks = context.Queue()
    results = context.Queue(maxsize=queue_size)
    processes = [
        context.Process(target=_worker, args=(fn, tasks, results), daemon=True) for _ in range(workers)
    ]
    with sigterm_interrupts():
        try:
            for process in processes:
                process.start()
            pending = 0
            for item in itertools.islice(items, limit):
                tasks.put(item)
                pending += 1
            while pending:
                try:
                    kind, value = results.get(timeout=1.0)
                except queue.Empty:
                    dead = [p for p in processes if not p.is_alive()]
                    if dead:
                        raise RuntimeError(
                            f"a worker process died (exit code {dead[0].exitcode}), e.g. killed for memory"
                        ) from None
                    continue
                if kind == _RESULT:
                    yield value
                elif kind == _ERROR:
                    raise value
                else:
                    pending -= 1
                    for item in itertools.islice(items, 1):
                        tasks.put(item)
                        pending += 1
            for _ in processes:
                tasks.put(None)
            for process in processes:
                process.join(timeout=5)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                if process.pid is not None:
                    process.join(timeout=5)
                    if process.is_alive():
                        process.kill()
                        process.join()
            for q in (tasks, results):
                q.cancel_join_thread()
                q.close()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside: SIGTERM raises :class:`Interrupted` in this (main) thread, so a job in one process ends
    as on Ctrl-C (its ``finally`` and ``except`` run: shards flushed, helpers ended). The handler
    before is put back; in another thread nothing changes."""
    previous = _on_sigterm()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm():
    """Turn SIGTERM into :class:`Interrupted` in this (main) thread; returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, _frame):
        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, stop)


def _worker(fn, tasks, results) -> None:
    """A worker process: run items until told to stop; the parent decides what a signal means."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent handles it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    while (item := tasks.get()) is not None:
        try:
            for value in fn(item):
                results.put((_RESULT, value))
        except Exception as exc:  # noqa: BLE001 - the parent re-raises it
            results.put((_ERROR, _picklable(exc)))
            continue
        results.put((_DONE, None))


def _orphan_watch(parent: int) -> None:
    """Exit when the parent (the forkserver, which ends with the job) is gone, even after kill -9."""
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _picklable(exc: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception type may refuse pickling
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _run_list(fn, item) -> list:
    return list(fn(item))


def _dask_map(fn, items: Iterator, scheduler, limit: int) -> Iterator[Any]:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        queue_ = as_completed(
            [client.submit(_run_list, fn, item, pure=False) for item in itertools.islice(items, limit)]
        )
        for future in queue_:
            yield from future.result()
            future.release()
            for item in itertools.islice(items, 1):
                queue_.add(client.submit(_run_list, fn, item, pure=False))
    finally:
        if client is not scheduler:
            client.close()


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, not {size}")
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
