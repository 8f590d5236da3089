"""Work units of the probing phase: one (store, site, layer) each, keyed by content, runnable anywhere.

A dataset's probes split into one unit per site x layer. A unit's records are exactly the records
`evaluate_store` yields for that site and layer (splits, shuffles and rotations are seeded per split
and per layer, so probing one layer alone gives the same numbers as probing it among others), so
any executor may run the units in any order, in any process, and the dataset's records are their
concatenation in plan order. Each unit is a records entry of the cache of its own, keyed by
everything that decides it: a rerun after a crash reuses every finished unit.

A unit holds only plain values and absolute paths (the store and the entry): its methods as the
specs the user gave (`mean_diff`, `milp:objective=logistic`) with the --include folders that
register them, and the driver's PROBEBANK_* settings, so a worker process or a Ray task on another
node that sees the same cache path resolves the same methods and runs it without the driver's
state (a method class of an --include module could not be unpickled where that module was never
loaded). Units with fitted bases (--bases) hold functions of the driver's fitted bases and run in
the driver (`ProbeUnit.portable` is False).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probebank.cache.entry import intact, reuse_or_make
from probebank.data.examples import BuiltDataset
from probebank.extract.store import ActivationStore  # numpy only: a probe worker never imports torch
from probebank.hashing import json_digest
from probebank.paths import CACHE_ENV, cache_root
from probebank.plugins import get_registered
from probebank.probing.evaluate import evaluate_store, resolve_methods
from probebank.probing.problem import Encoder
from probebank.probing.schema import ProbeConfig, Provenance
from probebank.probing.selection import Selector
from probebank.probing.transfer import HeldOut
from probebank.results.records import RECORDS_FILE, append_records

ENV_PREFIX = "PROBEBANK_"  # the settings a unit carries to its worker


@dataclass
class ProbeUnit:
    """The probes of one dataset's site x layer."""

    key: str                     # the unit's records key (content: store digest, settings, code, site, layer)
    entry: Path                  # its records entry in the cache: entry / records.jsonl
    store_root: Path             # the activation store is store_root / store_key
    store_key: str
    built: BuiltDataset
    provenance: Provenance
    cfg: ProbeConfig
    site: str
    layer: int
    methods: list[str]           # method specs, resolved where the unit runs
    include: list[Path]          # --include folders (plugins that may register those methods)
    controls: bool
    env: dict[str, str]          # the driver's PROBEBANK_* variables (cache, bank, entry points)
    encoders: Mapping[str, Encoder] | None = field(default=None, repr=False)  # fitted bases: driver only
    test_set: str | None = None          # --test-on: the held-out set's name, store and dataset (scored on it)
    test_store_root: Path | None = None
    test_store_key: str | None = None
    test_built: BuiltDataset | None = field(default=None, repr=False)

    def held_out(self) -> HeldOut | None:
        """The test set every probe of the unit is scored on (`--test-on`), or None."""
        if self.test_set is None or self.test_store_root is None or self.test_store_key is None \
                or self.test_built is None:
            return None
        return HeldOut(self.test_set, ActivationStore(self.test_store_root, self.test_store_key), self.test_built)

    @property
    def portable(self) -> bool:
        """Whether another process can run it (units that probe fitted bases hold the driver's functions)."""
        return self.encoders is None

    @property
    def records(self) -> Path:
        return self.entry / RECORDS_FILE

    @property
    def done(self) -> bool:
        return intact(self.entry)

    @property
    def label(self) -> str:
        return f"{self.built.name} {self.site} layer {self.layer}"


def selectors_of(methods: Sequence[str], include: Sequence[Path]) -> dict[str, Selector]:
    """The Selectors of method specs, resolved from the plugins of `include` (built once per process)."""
    return resolve_methods(methods, get_registered(include).methods)


def unit_key(dataset_key: str, site: str, layer: int) -> str:
    """A unit's key: the key its dataset's probes would have with this site and layer alone."""
    return json_digest({"probes": dataset_key, "site": site, "layer": layer})


def plan_units(*, key_of: Any, records_root: Path, store: Any, built: BuiltDataset, provenance: Provenance,
               cfg: ProbeConfig, sites: Sequence[str], layers: Sequence[int], include: Sequence[Path],
               controls: bool, encoders: Mapping[str, Encoder] | None = None,
               held_out: HeldOut | None = None) -> list[ProbeUnit]:
    """The units of one dataset, in the order its records are written (site-major, then layer).

    `key_of(site, layer)` gives the key of a one-site, one-layer probe of this dataset (so a unit's key
    does not depend on which other layers the run asked for).
    """
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    env[CACHE_ENV] = str(cache_root())
    test: dict[str, Any] = {}
    if held_out is not None:  # plain values, as for the task's own store
        test_store = held_out.store
        assert isinstance(test_store, ActivationStore), "a held-out set's rows are an activation store"
        test = {"test_set": held_out.name, "test_store_root": Path(test_store.root), "test_store_key": test_store.key,
                "test_built": held_out.built}
    units = []
    for site in sites:
        for layer in layers:
            key = unit_key(key_of(site, layer), site, layer)
            units.append(ProbeUnit(key=key, entry=Path(records_root) / key, store_root=Path(store.root),
                                   store_key=store.key, built=built, provenance=provenance, cfg=cfg, site=site,
                                   layer=int(layer), methods=list(cfg.methods),
                                   include=[Path(p).resolve() for p in include], controls=controls, env=env,
                                   encoders=encoders, **test))
    return units


def run_unit(unit: ProbeUnit) -> Path:
    """Probe one unit into its records entry (or reuse the entry); returns the records file.

    Safe in any process that sees the cache: the entry is written once, under its lock, into a
    staging folder that is sealed and renamed into place, so two executors never corrupt it.
    """
    # A worker forked from a server started earlier, or a Ray worker on another node, may see other
    # PROBEBANK_* settings than the driver: the unit's own say where its cache, locks and plugins are.
    for name in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in unit.env]:
        del os.environ[name]
    os.environ.update(unit.env)

    def make(staging: Path) -> None:
        store = ActivationStore(unit.store_root, unit.store_key)
        records = evaluate_store(store, unit.built, unit.provenance, unit.cfg, [unit.site], [unit.layer],
                                 progress=False, selectors=selectors_of(unit.methods, unit.include),
                                 controls=unit.controls, encoders=unit.encoders, held_out=unit.held_out())
        append_records(staging / RECORDS_FILE, records)

    reuse_or_make(unit.entry, make, what=f"the probes of {unit.label}")
    return unit.records
