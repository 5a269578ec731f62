"""Worker processes for parsing large inputs: a pool forked from this process (one worker per core, at most 2)
mapping a function over jobs in order, fed only a few jobs ahead of the consumer, so that a consumer slower than
the workers (the store's writer) never holds more than that many results, whatever the size of the input.
Used by the JSON Lines ingest and the FHIR import."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def forked_pool() -> Any:
    """A pool of workers forked from this process. Its objects are frozen for the fork (`gc.freeze`, as the gc
    module's documentation advises), so that the workers' collections never walk them (nor copy their
    pages), and unfrozen in this process right after."""
    gc.freeze()
    try:
        return multiprocessing.get_context("fork").Pool(max(1, min(2, os.cpu_count() or 1)))
    finally:
        gc.unfreeze()


def ordered_map(fn: Callable[[T], R], jobs: Iterable[T], ahead: int) -> Iterator[R]:
    """`fn` over `jobs` in the workers, results in order; at most `ahead` jobs are taken from `jobs` before
    their results are consumed (`Pool.imap` alone reads its whole input at once). A consumer that stops early
    wakes the feeder, so that the pool closes."""
    window, stop = threading.Semaphore(ahead), threading.Event()

    def fed() -> Iterator[T]:  # run by the pool's feeder thread: it waits for the consumer
        for job in jobs:
            window.acquire()
            if stop.is_set():
                return
            yield job

    with forked_pool() as pool:
        try:
            for result in pool.imap(fn, fed(), chunksize=1):
                window.release()
                yield result
        finally:
            stop.set()
            window.release()
