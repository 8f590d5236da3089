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

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probebank.data.align import AlignmentReport
from probebank.data.examples import BuiltDataset
from probebank.errors import ConfigError, import_extra
from probebank.extract.plan import ExtractionPlan
from probebank.extract.store import ActivationStore
from probebank.paths import CACHE_ENV, cache_root
from probebank.scale.local import RETRIES, WorkerLost, default_workers
from probebank.scale.progress import UnitProgress
from probebank.scale.units import ENV_PREFIX, ProbeUnit, run_unit

LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # a local Ray's object store: units are small, results live in the cache


def store_of(result: dict[str, Any]) -> tuple[ActivationStore, AlignmentReport]:
    """The store an actor made, opened (and its seal checked) in this process, with its alignment report."""
    store = ActivationStore(Path(result["root"]), result["key"])
    if not store.complete:
        raise ConfigError(f"the store {result['key']} an extraction actor made is not complete in the driver's view "
                          f"of the cache ({result['root']})", field="PROBEBANK_CACHE",
                          fix="put the cache on a path every node of the cluster shares, named the same on each")
    store.reused_shards, store.n_shards = int(result["reused_shards"]), int(result["n_shards"])
    return store, AlignmentReport.from_dict(result["alignment"])


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
        self._extractors: list[Any] = []
        self._next = 0

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
                             include_dashboard=False, runtime_env=env, log_to_driver=False,
                             logging_level=logging.WARNING)  # its "Started a local Ray instance" is noise here
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

    # ---- extraction: actors that each hold a model replica ----------------------------------------
    def open_extractors(self, model: str, *, dtype: str, include: Sequence[Path], revision: str | None,
                        device: str) -> int:
        """Start one extraction actor per GPU of the cluster (one on the CPU where it has none); returns how many.

        A GPU actor reserves its GPU and one CPU. A CPU actor reserves no CPU, so the probe tasks keep every
        core (as the local executor's workers do beside the driver's extraction) and a Ray of one CPU
        cannot deadlock; its torch uses the node's cores.
        """
        ray = self._connect()
        from probebank.scale.extractors import Extractor  # imports torch: only the driver and the actors need it

        gpus = int(ray.cluster_resources().get("GPU", 0))
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        env[CACHE_ENV] = str(cache_root())
        options = dict(num_gpus=1, num_cpus=1) if gpus else dict(num_gpus=0, num_cpus=0)
        actor = ray.remote(**options)(Extractor)
        self._extractors = [actor.remote(model, dtype=dtype, include=[str(p) for p in include], revision=revision,
                                         device="cuda" if gpus else device, env=env)
                            for _ in range(max(gpus, 1))]
        self._next = 0
        return len(self._extractors)

    def submit_extract(self, built: BuiltDataset, plan: ExtractionPlan) -> Any:
        """Hand one dataset to the next actor (round robin); returns the pending result."""
        actor = self._extractors[self._next % len(self._extractors)]
        self._next += 1
        return actor.extract.remote(built, plan)

    def wait_extract(self, pending: Any) -> tuple[ActivationStore, AlignmentReport]:
        """The store an actor made, read back from the shared cache; an actor's error is raised as it was."""
        ray = self._ray
        try:
            result = ray.get(pending)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, BaseException) else exc) from None
        return store_of(result)

    def close(self) -> None:
        self._extractors = []
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray = self._task = None
        self._started = False
