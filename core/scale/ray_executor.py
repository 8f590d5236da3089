"""The Ray executor (`--executor ray [--ray-address ADDR]`): probe units as Ray tasks, on one machine or a cluster.

Each unit is one task of one CPU that writes its records entry into the content-addressed cache
itself (atomically, under the entry's lock: probebank.cache.entry), so the cache must lie on a
path that every node sees (a shared filesystem) and that PROBEBANK_CACHE names the same way on
each. The driver only waits and counts. A task lost to its worker or node (killed, out of memory,
node gone) is submitted again, up to RETRIES times, and reported; an error raised by the probing
itself is not retried (it would fail again) and stops the run with that error. Ray is the
optional extra `probebank[ray]`; without an address, a local Ray with `workers` CPUs is started.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probebank.errors import ConfigError, import_extra
from probebank.paths import CACHE_ENV, cache_root
from probebank.scale.local import RETRIES, WorkerLost, default_workers
from probebank.scale.progress import UnitProgress
from probebank.scale.units import ProbeUnit, run_unit

LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # a local Ray's object store: units are small, results live in the cache


@dataclass
class RayBatch:
    """One dataset's units: Ray tasks in flight, and units left for the driver."""

    progress: UnitProgress
    refs: dict[Any, ProbeUnit]
    inline: list[ProbeUnit] = field(default_factory=list)


class RayExecutor:
    """Runs portable probe units as Ray tasks; units holding the driver's fitted bases run in the driver."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers or default_workers()
        self.retried = 0
        self._ray: Any = None
        self._task: Any = None
        self._started = False  # whether this executor started the (local) Ray it uses

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = import_extra("ray", "ray", "--executor ray")
        if not ray.is_initialized():
            env = {"env_vars": {CACHE_ENV: str(cache_root())}}
            try:
                if self.address:
                    ray.init(address=self.address, runtime_env=env, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.workers, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                             include_dashboard=False, runtime_env=env, log_to_driver=False)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {self.address!r}: {exc}", field="--ray-address",
                                  fix="start it with `ray start --head` (or pass the address it printed), "
                                      "or leave --ray-address out for a local Ray") from None
            self._started = True
        self._ray = ray
        self._task = ray.remote(num_cpus=1, max_retries=0)(run_unit)  # retried here, where it can be reported
        return ray

    def submit(self, units: Sequence[ProbeUnit], *, progress: UnitProgress) -> RayBatch:
        """Submit the unfinished portable units as tasks and return at once."""
        pending = [u for u in units if not progress.skip_if_done(u)]
        portable = [u for u in pending if u.portable]
        refs = {}
        if portable:
            self._connect()
            refs = {self._task.remote(u): u for u in portable}
        return RayBatch(progress, refs, [u for u in pending if not u.portable])

    def wait(self, batch: RayBatch) -> None:
        """Return when every unit of the batch is finished; a lost task is submitted again (RETRIES times)."""
        ray, progress, refs = self._ray, batch.progress, batch.refs
        attempts: dict[str, int] = {}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                unit = refs.pop(done[0])
                try:
                    ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:  # the probing itself failed: the same error here
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else exc) from None
                except ray.exceptions.RayError as exc:  # the worker or node was lost: run the unit again
                    if unit.done:
                        progress.finished(unit)
                        continue
                    attempts[unit.key] = attempts.get(unit.key, 0) + 1
                    if attempts[unit.key] > RETRIES:
                        raise WorkerLost(f"the Ray task probing {unit.label} was lost {RETRIES + 1} times "
                                         f"({type(exc).__name__})", fix="look at `ray status` and the node's "
                                         "memory, or run with --executor local") from None
                    self.retried += 1
                    progress.note(f"ray: the task probing {unit.label} was lost ({type(exc).__name__}); "
                                  f"running it again (retry {attempts[unit.key]} of {RETRIES})")
                    refs[self._task.remote(unit)] = unit
                    continue
                progress.finished(unit)
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        for unit in batch.inline:
            run_unit(unit)
            progress.finished(unit)
        batch.inline = []

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray = self._task = None
        self._started = False
