"""One way to run a data job on all cores or on a Dask cluster, streaming.

:func:`map_unordered` keeps a bounded number of chunks in flight, so the input is never held or
pickled whole (the LintSeq reference pickles the whole table for every task). ``fn`` must be a
top-level function; it runs in worker processes, or in Dask worker *threads*, so per-item time
limits belong inside ``fn`` as deadline checks, not as signals.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _run_chunk(fn: Callable[[Any], Any], chunk: list) -> list:
    return [fn(item) for item in chunk]


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
    workers = workers or default_workers()
    chunks = _chunked(items, chunksize)
    if scheduler is None and workers == 1:
        for chunk in chunks:
            yield from _run_chunk(fn, chunk)
        return
    limit = in_flight or 4 * workers
    if scheduler is not None:
        yield from _dask_map(fn, chunks, scheduler, limit)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # forkserver: workers start clean (no copy of a parent holding models or tables), safe with threads.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        pending = {pool.submit(_run_chunk, fn, chunk) for chunk in itertools.islice(chunks, limit)}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield from future.result()
            for chunk in itertools.islice(chunks, len(finished)):
                pending.add(pool.submit(_run_chunk, fn, chunk))


def _dask_map(fn, chunks: Iterator[list], scheduler, limit: int) -> Iterator[Any]:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        queue = as_completed(
            [client.submit(_run_chunk, fn, chunk, pure=False) for chunk in itertools.islice(chunks, limit)]
        )
        for future in queue:
            yield from future.result()
            future.release()
            for chunk in itertools.islice(chunks, 1):
                queue.add(client.submit(_run_chunk, fn, chunk, pure=False))
    finally:
        if client is not scheduler:
            client.close()


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
