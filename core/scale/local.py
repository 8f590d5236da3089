"""The local executor: a run's probe units on every core of this machine (`--workers N`).

One worker process per core, each with one BLAS thread: probing problems are small, and on
2 cores two single-threaded processes beat one process with two BLAS threads (see
probebank.probing.newton.BLAS_THREADS). Workers are forked from a forkserver that has already
imported the probing code, so a worker starts in milliseconds, not in the seconds a fresh
interpreter takes to import numpy, scipy and scikit-learn.

A worker that dies (killed, out of memory) breaks the pool: the pool is made again and the
units that had not finished are run again, up to RETRIES times; finished units are entries of
the cache and are never redone.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from probebank.errors import ProbebankError
from probebank.scale.progress import UnitProgress
from probebank.scale.units import ProbeUnit, run_unit

RETRIES = 2  # times a unit is run again after its worker died


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def _init_worker() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # one BLAS / OpenMP thread per worker: the workers are the parallelism


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["probebank.scale.units"])  # imported once, before the workers fork
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass
class Batch:
    """One dataset's units handed to the executor: those running in workers, and those left for the driver."""

    progress: UnitProgress
    futures: dict[Future[Any], ProbeUnit]
    inline: list[ProbeUnit] = field(default_factory=list)


class WorkerLost(ProbebankError):
    """A unit's worker died more often than the executor retries."""


class LocalExecutor:
    """Runs probe units inline (one worker) or on a pool of `workers` processes, made on first need."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None
        self.retried = 0  # units run again after a worker died (over this executor's life)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_context(),
                                             initializer=_init_worker)
        return self._pool

    def submit(self, units: Sequence[ProbeUnit], *, progress: UnitProgress) -> Batch:
        """Hand the unfinished units to the workers and return at once (they run while the driver goes on)."""
        pending = [u for u in units if not progress.skip_if_done(u)]
        portable = [u for u in pending if u.portable]
        if self.workers > 1 and len(portable) > 1:
            pool = self._get_pool()
            return Batch(progress, {pool.submit(run_unit, u): u for u in portable},
                         [u for u in pending if not u.portable])
        return Batch(progress, {}, pending)

    def wait(self, batch: Batch) -> None:
        """Return when every unit of the batch is finished (or raise the first unit's error)."""
        lost = self._collect(batch)
        for attempt in range(RETRIES):
            if not lost:
                break
            self.retried += len(lost)
            batch.progress.note(f"a worker died; running {len(lost)} unfinished unit{'s' * (len(lost) != 1)} "
                                f"again (retry {attempt + 1} of {RETRIES})")
            pool = self._get_pool()
            batch.futures = {pool.submit(run_unit, u): u for u in lost}
            lost = self._collect(batch)
        if lost:
            raise WorkerLost(f"a worker died while probing {lost[0].label} ({len(lost)} unit(s) unfinished), "
                             f"{RETRIES + 1} times", fix="look for a lack of memory (dmesg), or run with --workers 1")
        for unit in batch.inline:
            run_unit(unit)
            batch.progress.finished(unit)
        batch.inline = []

    def _collect(self, batch: Batch) -> list[ProbeUnit]:
        """Wait for the batch's futures; returns the units lost to a dead worker (the pool is discarded then)."""
        lost: list[ProbeUnit] = []
        try:
            remaining = set(batch.futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in done:
                    unit = batch.futures[fut]
                    try:
                        fut.result()
                    except BrokenProcessPool:
                        if unit.done:  # it sealed its entry before its worker died
                            batch.progress.finished(unit)
                        else:
                            lost.append(unit)
                        continue
                    batch.progress.finished(unit)
        except BaseException:
            for fut in batch.futures:
                fut.cancel()
            raise
        batch.futures = {}
        if lost:
            self._discard_pool()
        return lost

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
