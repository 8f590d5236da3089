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

    def run(self, units: Sequence[ProbeUnit], *, progress: UnitProgress) -> None:
        """Run every unit that is not finished; returns when all are (or raises the first unit's error)."""
        pending = [u for u in units if not progress.skip_if_done(u)]
        portable = [u for u in pending if u.portable]
        inline = [u for u in pending if not u.portable]
        if self.workers > 1 and len(portable) > 1:
            self._run_pool(portable, progress)
        else:
            inline = pending
        for unit in inline:
            run_unit(unit)
            progress.finished(unit)

    def _run_pool(self, units: Sequence[ProbeUnit], progress: UnitProgress) -> None:
        todo = list(units)
        for attempt in range(RETRIES + 1):
            lost = self._one_round(todo, progress)
            if not lost:
                return
            self.retried += len(lost)
            progress.note(f"a worker died; running {len(lost)} unfinished unit{'s' * (len(lost) != 1)} again "
                          f"(retry {attempt + 1} of {RETRIES})")
            todo = lost
        raise WorkerLost(f"a worker died while probing {todo[0].label} ({len(todo)} unit(s) unfinished), "
                         f"{RETRIES + 1} times", fix="look for a lack of memory (dmesg), or run with --workers 1")

    def _one_round(self, units: Sequence[ProbeUnit], progress: UnitProgress) -> list[ProbeUnit]:
        """Submit the units; returns those lost to a dead worker (the pool is discarded then)."""
        pool = self._get_pool()
        futures: dict[Future[Any], ProbeUnit] = {pool.submit(run_unit, u): u for u in units}
        lost: list[ProbeUnit] = []
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        fut.result()
                    except BrokenProcessPool:
                        lost.append(futures[fut])
                        continue
                    progress.finished(futures[fut])
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        if lost:
            self._discard_pool()
            sealed = [u for u in lost if u.done]  # a unit may have sealed its entry just before the crash
            for unit in sealed:
                progress.finished(unit)
            lost = [u for u in lost if u not in sealed]
        return lost

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
