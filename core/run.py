"""The main job as a Python API: model + datasets -> extraction -> probes -> records + summary.

The CLI's `probebank run` is a thin shell over `run()`; notebooks call it directly.
"""
from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probebank.bases.run import BASES_FILE, BasisRun
from probebank.bases.spec import make_basis
from probebank.cache.entry import intact, reuse_or_make
from probebank.data.align import OFF_BOUNDARY_MAX, AlignmentReport
from probebank.data.examples import BuiltDataset, build_dataset
from probebank.data.registry import Catalog
from probebank.data.sources import SourceUnavailable
from probebank.errors import ConfigError
from probebank.extract.device import auto_batch_tokens, resolve_device, resolve_dtype
from probebank.extract.loaded import LoadedModel
from probebank.extract.pipeline import extract, resolve_layers
from probebank.extract.plan import ExtractionPlan
from probebank.extract.providers import load_model, open_model
from probebank.extract.store import ActivationStore
from probebank.paths import cache_dir
from probebank.plugins import Registered, get_registered
from probebank.probing.evaluate import probe_key, resolve_methods
from probebank.probing.regression_eval import regression_methods
from probebank.probing.schema import (
    Controls,
    Metrics,
    ProbeConfig,
    Provenance,
    RegressionControls,
    RegressionMetrics,
    ResultRecord,
)
from probebank.probing.selection import Selector
from probebank.probing.transfer import HeldOut
from probebank.results.folder import StagedResults, check_out
from probebank.results.records import RECORDS_FILE, append_records, read_records
from probebank.results.summary import protocol_line, write_summary_markdown
from probebank.results.summary_cache import summary_of
from probebank.scale import Executor, make_executor
from probebank.scale.progress import UnitProgress
from probebank.scale.ray_executor import RayExecutor
from probebank.scale.units import ProbeUnit, plan_units, run_unit
from probebank.settings import RunConfig, preflight
from probebank.specs import Spec, parse_specs
from probebank.version import __version__


@dataclass
class RunOutcome:
    out: Path
    summary: list[dict]
    skipped: dict[str, str]
    n_records: int
    seconds: float
    certificates: str | None = None  # the exact probes' certificate digest, when --methods has milp


@dataclass
class _Probes:
    """One stored dataset's probes: reused whole from the cache, or handed to the executor as work units."""

    entry: Path                       # the dataset's records entry (entry / records.jsonl)
    units: list[ProbeUnit]
    batch: Any = None                 # the executor's handle while units run
    progress: UnitProgress | None = None
    annotate: Callable[[list[ResultRecord]], Any] | None = None  # stamps basis keys (--bases)

    @property
    def records(self) -> Path:
        return self.entry / RECORDS_FILE


def _submit_probes(store: ActivationStore, built: BuiltDataset, provenance: Provenance, probe_cfg: ProbeConfig,
                   config: RunConfig, layers: list[int], selectors: dict[str, Selector], *, controls: bool,
                   executor: Executor, bases: BasisRun | None = None, held_out: HeldOut | None = None) -> _Probes:
    """Start the probes of one stored dataset, or find the records of an identical earlier probe (same store
    contents, settings and probing code), so a repeated run finishes in seconds.

    The probes run as one work unit per site x layer (probebank.scale.units) on `executor`, which returns at
    once: the driver goes on to the next dataset while they run. Each unit is a cache entry of its own, so an
    interrupted run resumes from its finished layers. The records are tied to the checksums of the store they
    came from, so they never outlive it.
    """
    store_id = f"{store.key}:{store.digest}" + (f"+{held_out.store.key}:{held_out.digest}" if held_out else "")

    def key_of(sites: list[str], layer_list: list[int]) -> str:
        key = probe_key(store_id, provenance, probe_cfg, sites, layer_list, built.card, selectors, controls=controls)
        return bases.probe_key(key) if bases is not None else key  # fitted bases' keys are part of it

    entry = cache_dir("records") / key_of(list(config.sites), layers)
    if intact(entry):
        return _Probes(entry, [])
    units = plan_units(key_of=lambda site, layer: key_of([site], [layer]), records_root=cache_dir("units"),
                       store=store, built=built, provenance=provenance, cfg=probe_cfg, sites=config.sites,
                       layers=layers, include=config.include, controls=controls,
                       encoders=bases.encoders() if bases is not None else None, held_out=held_out)
    progress = UnitProgress(len(units), desc=f"probe {built.name}", enabled=config.progress)
    annotate = (lambda records: bases.annotate(records, built, store, probe_cfg)) if bases is not None else None
    return _Probes(entry, units, executor.submit(units, progress=progress), progress, annotate)


def _finish_probes(probes: _Probes, executor: Executor, name: str) -> str:
    """Wait for a dataset's units and assemble its records entry; returns what happened: "reused",
    "computed", or "computed, N of M layers reused"."""
    if probes.progress is None:
        return "reused"
    progress = probes.progress
    try:
        executor.wait(probes.batch)
    finally:
        progress.close()

    def make(staging: Path) -> None:  # the dataset's records: its units' records in plan order
        with open(staging / RECORDS_FILE, "w", encoding="utf-8") as out:
            for unit in probes.units:
                if not unit.done:  # damaged since it was written: quarantined, so probe it again here
                    run_unit(unit)
                out.write(unit.records.read_text(encoding="utf-8"))
        if probes.annotate is not None:
            records = read_records(staging / RECORDS_FILE)
            (staging / RECORDS_FILE).write_text("", encoding="utf-8")
            append_records(staging / RECORDS_FILE, probes.annotate(records))

    reused = reuse_or_make(probes.entry, make, what=f"the probes of {name}")
    how = "reused" if reused or progress.computed == 0 else "computed"
    if progress.reused and progress.computed:
        how += f", {progress.reused} of {len(probes.units)} layers reused"
    return how


def check_before_loading(config: RunConfig, registered: Registered) -> tuple[dict[str, Selector], list[Spec]]:
    """Everything that can be checked without the model: methods, bases and their settings, the --out path."""
    try:
        selectors = resolve_methods(config.methods, registered.methods)
    except ValueError as exc:
        raise ConfigError(str(exc), field="--methods", fix=f"use one of: {', '.join(sorted(registered.methods))}") from None
    except TypeError as exc:  # a setting the method's constructor does not take
        raise ConfigError(f"a method does not take these settings: {exc}", field="--methods",
                          fix="see the method's parameters in docs/controls.md or its docstring") from None
    for selector in selectors.values():
        selector.check_params()
    specs = parse_specs(config.bases, option="--bases", example="identity,pca,sae-topk:k=16")
    for spec in specs:  # builds each basis unfitted (cheap): unknown names, settings and values fail here
        make_basis(spec, registered.bases)
    check_out(Path(config.out))
    resolve_dtype(config.dtype, resolve_device(config.device))  # a device this machine lacks fails here
    return selectors, specs


def _fill_random_init(records: list[ResultRecord], random_records: list[ResultRecord]) -> int:
    """Copy each random-init probe's F1 (R2 on a regression card) into the matching record's controls;
    returns how many matched."""
    def match(r: ResultRecord) -> tuple:
        return (r.feature, r.site, r.layer, r.basis, r.method, r.k, r.seed)

    score = {match(r): r.metrics.f1 if isinstance(r.metrics, Metrics) else r.metrics.r2
             for r in random_records if r.method != "single_unit"}
    n = 0
    for r in records:
        value = score.get(match(r))
        if value is None or r.method == "single_unit":
            continue
        if isinstance(r.metrics, RegressionMetrics):
            ctrl = r.controls if isinstance(r.controls, RegressionControls) else RegressionControls()
            r.controls = ctrl.model_copy(update={"random_init_r2": value})
        else:
            r.controls = (r.controls or Controls()).model_copy(update={"random_init_f1": value})
        n += 1
    return n


def run(config: RunConfig, *, log: Callable[[str], None] = print) -> RunOutcome:
    """Run the probes of `config` into its results folder, which is replaced only when the run finishes:
    a failed or interrupted run leaves the earlier folder exactly as it was."""
    started = time.perf_counter()
    checked = preflight(config)  # names, model, layers, methods, bases: before anything heavy loads
    names, limit, catalog = checked.datasets, checked.limit, checked.catalog
    registered = get_registered(config.include)
    selectors, _ = check_before_loading(config, registered)
    staged = StagedResults(Path(config.out))
    executor = make_executor(config.executor, workers=config.workers, ray_address=config.ray_address)
    try:
        outcome = _run_into(staged.path, config, catalog, names, limit, registered, selectors, executor, log)
        staged.commit()
    finally:
        executor.close()
        staged.discard()
    if executor.retried:
        log(f"{executor.retried} probe unit(s) were run again after their worker was lost; their records are "
            f"those of a run without the loss")
    outcome.out, outcome.seconds = Path(config.out), time.perf_counter() - started
    return outcome


def _run_into(out: Path, config: RunConfig, catalog: Catalog, names: list[str], limit: int | None,
              registered: Registered, selectors: dict[str, Selector], executor: Executor,
              log: Callable[[str], None]) -> RunOutcome:
    """The run itself, writing into the staging folder `out`."""
    records_path = out / RECORDS_FILE
    probe_cfg = ProbeConfig(methods=config.methods, k_grid=config.k_grid, seeds=config.seeds, dense=config.dense)

    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    remote = isinstance(executor, RayExecutor)  # extraction by Ray actors, each with its own replica
    log(f"opening model {config.model} ({dtype} on {'the Ray actors' if remote else device}) ...")
    # weights deferred to the first forward pass when the model's shapes are known: a run whose
    # activations are all stored never loads them; with Ray, the driver's copy stays on the host
    loaded: LoadedModel = open_model(config.model, dtype=dtype, include=config.include,
                                     revision=config.revision, device="cpu" if remote else str(device))
    if not remote:
        loaded.to_device(device)
    batch_tokens = config.max_batch_tokens or auto_batch_tokens(device, loaded.widths["mlp"],
                                                                 2 if dtype != "float32" else 4)
    layers = resolve_layers(loaded, config.layers)
    bases = None
    if config.bases and config.bases != ["identity"]:  # fit or reuse each basis per site x layer (issue 6)
        bases = BasisRun.create(config.bases, loaded, config.sites, layers, registered.bases,
                                progress=config.progress, log=log)
    (out / "run.json").write_text(json.dumps({
        "probebank_version": __version__, "config": config.model_dump(mode="json"),
        "model": {"name": loaded.name, "revision": loaded.revision, "dtype": loaded.dtype, "notes": loaded.notes},
        "datasets": names, "limit": limit}, indent=1, default=str))
    records_path.write_text("")
    if bases is not None:
        (out / BASES_FILE).write_text("")
    random_loaded: LoadedModel | None = None  # loaded on first use (--random-init)
    alignment: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    n_records = 0
    waiting: _Dataset | None = None  # probed by the executor while the driver extracts the next dataset

    def finish(job: _Dataset) -> None:
        nonlocal n_records
        n_records += _finish_dataset(job, out, executor, probe_cfg, bases, skipped, log)

    test_builts: dict[str, BuiltDataset] = {}

    def prepared() -> Iterator[tuple[BuiltDataset, ExtractionPlan]]:
        for name in _overall(names, progress=config.progress):
            entry = catalog.get(name)
            try:
                built = build_dataset(entry, builders=registered.builders, limit=limit, include=config.include,
                                      progress=config.progress)
                if config.test_on is not None:  # --test-on: the card's held-out set, built like the dataset
                    test_builts[name] = build_dataset(catalog.get(entry.card.test_sets[config.test_on]),
                                                      builders=registered.builders, limit=limit,
                                                      include=config.include, progress=config.progress)
            except SourceUnavailable as exc:
                skipped[name] = exc.message
                log(f"{name}: {exc.message}")
                continue
            if entry.card.labels.type == "regression":  # methods with no regression twin: one line each
                for label, why in regression_methods(selectors)[1].items():
                    skipped[f"{name} --methods {label}"] = why
                    log(f"{name}: method {label} skipped: {why}")
            yield built, ExtractionPlan(model=loaded.name, dataset=name, sites=config.sites, layers=layers,
                                        aggregation=entry.card.aggregation, max_tokens=entry.card.max_tokens,
                                        batch_size=config.batch_size, max_batch_tokens=batch_tokens,
                                        store_dtype=config.store_dtype)

    if remote:
        assert isinstance(executor, RayExecutor)
        replicas = executor.open_extractors(config.model, dtype=dtype, include=config.include,
                                            revision=config.revision, device=str(device))
        log(f"extracting on {replicas} Ray actor(s), each with a replica of {config.model}")
        extracted = _extract_remote(prepared(), executor, window=replicas + 1)
    else:
        extracted = ((b, p, *extract(loaded, b, p, progress=config.progress)) for b, p in prepared())
    for built, plan, store, report in extracted:
        name, entry = built.name, catalog.get(built.name)
        test_built = test_builts.pop(name, None)
        alignment[name] = report.as_dict()
        (out / "alignment.json").write_text(json.dumps(alignment, indent=1))
        # probes would read tokens the spans do not name; a card that waives the gate has said why
        if report.off_boundary_share > OFF_BOUNDARY_MAX and "alignment" not in entry.card.waivers:
            log(f"{name}: warning: {report.notes[-1]} (the card's `alignment` gate: `probebank validate {name}`)")
        held_out = None
        if test_built is not None and config.test_on is not None:  # --test-on: its rows score every probe
            test_store, test_report = extract(loaded, test_built, plan.model_copy(update={"dataset": test_built.name}),
                                              progress=config.progress)
            alignment[f"{test_built.name} (--test-on {config.test_on})"] = test_report.as_dict()
            (out / "alignment.json").write_text(json.dumps(alignment, indent=1))
            held_out = HeldOut(config.test_on, test_store, test_built, test_store.digest)
        provenance = Provenance(probebank_version=__version__, model=loaded.name, model_revision=loaded.revision,
                                model_dtype=loaded.dtype, model_notes=loaded.notes, dataset=name,
                                dataset_version=entry.card.version, dataset_hash=built.content_hash,
                                store_key=store.key, store_dtype=store.store_dtype,
                                device=store.meta.get("device"), versions=store.meta.get("versions", {}),
                                test_set=config.test_on if held_out else None,
                                test_dataset=test_built.name if test_built else None,
                                test_dataset_hash=test_built.content_hash if test_built else None)
        job = _Dataset(built, store, provenance, _submit_probes(
            store, built, provenance, probe_cfg, config, layers, selectors, controls=config.controls,
            executor=executor, bases=bases, held_out=held_out))
        if config.random_init:
            if random_loaded is None:
                log(f"loading random-init:{config.model} ...")
                random_loaded = load_model(f"random-init:{config.model}", dtype=dtype, include=config.include)
                random_loaded.model.to(device)
            r_plan = plan.model_copy(update={"model": random_loaded.name})
            r_store, _ = extract(random_loaded, built, r_plan, progress=config.progress)
            r_prov = provenance.model_copy(update={"model": random_loaded.name, "model_revision": random_loaded.revision,
                                                   "model_notes": random_loaded.notes, "store_key": r_store.key})
            # The random-init model gets the plain probes only (neuron basis): its controls would not be read.
            job.random = _submit_probes(r_store, built, r_prov, probe_cfg, config, layers, selectors, controls=False,
                                        executor=executor)
        if waiting is not None:
            finish(waiting)
        waiting = job
    if waiting is not None:
        finish(waiting)
    rows, digest = summary_of(records_path, pick=config.layer_pick) if n_records else ([], None)
    footer = "\n\n".join(line for line in (protocol_line(config.protocol, config.methods), digest) if line)
    write_summary_markdown(rows, out / "summary.md", footer=footer)
    if skipped:
        (out / "skipped.json").write_text(json.dumps(skipped, indent=1))
    return RunOutcome(out, rows, skipped, n_records, 0.0, digest)


def _extract_remote(prepared: Iterator[tuple[BuiltDataset, ExtractionPlan]], executor: RayExecutor, *,
                    window: int) -> Iterator[tuple[BuiltDataset, ExtractionPlan, ActivationStore, AlignmentReport]]:
    """Each dataset's store, made by the Ray actors with up to `window` datasets in flight, in the run's order."""
    in_flight: deque[tuple[BuiltDataset, ExtractionPlan, Any]] = deque()
    for built, plan in prepared:
        in_flight.append((built, plan, executor.submit_extract(built, plan)))
        if len(in_flight) >= window:
            b, p, pending = in_flight.popleft()
            yield (b, p, *executor.wait_extract(pending))
    while in_flight:
        b, p, pending = in_flight.popleft()
        yield (b, p, *executor.wait_extract(pending))


@dataclass
class _Dataset:
    """A dataset whose stores are made and whose probes are on the executor."""

    built: BuiltDataset
    store: ActivationStore
    provenance: Provenance
    probes: _Probes
    random: _Probes | None = None  # --random-init: the random-init copy's probes


def _finish_dataset(job: _Dataset, out: Path, executor: Executor, probe_cfg: ProbeConfig, bases: BasisRun | None,
                    skipped: dict[str, str], log: Callable[[str], None]) -> int:
    """Wait for one dataset's probes and append its records to the results folder; returns how many."""
    built, store = job.built, job.store
    how = _finish_probes(job.probes, executor, built.name)
    log(f"{built.name}: {store.reused_shards} of {store.n_shards} activation shards reused from the cache, "
        f"probe results {how}")
    records_path = out / RECORDS_FILE
    if job.random is not None:
        _finish_probes(job.random, executor, f"random-init {built.name}")
        records = read_records(job.probes.records)
        _fill_random_init(records, read_records(job.random.records))
        added = append_records(records_path, records)
    else:  # copy the text as is: parsing every record twice would dominate a repeated run
        text = job.probes.records.read_text(encoding="utf-8")
        with open(records_path, "a", encoding="utf-8") as f:
            f.write(text)
        added = text.count("\n")
    regression = built.card.labels.type == "regression"
    if bases is not None and added and not regression:  # basis metrics are per class
        bases.write_metrics(out, store, built, job.provenance, probe_cfg,
                            [r for r in read_records(records_path) if r.provenance.dataset == built.name])
    if not added and regression:
        skipped[built.name] = (f"no split leaves {probe_cfg.min_rows_per_class}+ rows with varying values on both "
                               f"sides, or no method has a regression twin; use a larger --limit or --methods f_stat")
    elif not added:
        skipped[built.name] = (f"no feature has {probe_cfg.min_rows_per_class}+ positive rows on both sides of the "
                               f"split; use a larger --limit")
        log(f"{built.name}: skipped: {skipped[built.name]}")
    return added


def _overall(names: list[str], *, progress: bool) -> Iterator[str]:
    """The run's datasets under one overall bar (done of N, time left); per-dataset bars show below it."""
    from tqdm.auto import tqdm

    bar = tqdm(names, desc="run", unit="dataset", disable=not progress or len(names) < 2, leave=False)
    for name in bar:
        bar.set_postfix_str(name, refresh=True)
        yield name
