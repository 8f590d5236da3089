"""Scale-out: a run's probing phase as content-keyed work units, and the executors that run them.

units.py     ProbeUnit (one dataset's site x layer), plan_units, run_unit (any process, any node)
progress.py  UnitProgress: one bar per dataset, counting finished units
local.py     LocalExecutor: inline, or a pool of worker processes (`--workers N`)
ray_executor.py  RayExecutor: Ray tasks on a local Ray or a cluster (`--executor ray`)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from probebank.scale.progress import UnitProgress
from probebank.scale.units import ProbeUnit

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    name: str
    workers: int
    retried: int

    def submit(self, units: Sequence[ProbeUnit], *, progress: UnitProgress) -> Any:
        """Start the unfinished units; returns a batch handle at once."""

    def wait(self, batch: Any) -> None:
        """Return when every unit of `batch` is finished (raises the first unit's own error)."""

    def close(self) -> None:
        """Stop the workers (or the local Ray) this executor started."""


def make_executor(kind: str = "local", *, workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor `kind` (one of EXECUTORS); nothing starts until it has units to run."""
    if kind == "ray":
        from probebank.scale.ray_executor import RayExecutor

        return RayExecutor(ray_address, workers)
    from probebank.scale.local import LocalExecutor

    return LocalExecutor(workers)
