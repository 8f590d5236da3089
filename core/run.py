"""The main job as a Python API: model + datasets -> extraction -> probes -> records + summary.

The CLI's `probebank run` is a thin shell over `run()`; notebooks call it directly.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import ConfigError
from .evaluate import evaluate_store, probe_key
from .examples import BuiltDataset, build_dataset
from .extract import extract, resolve_layers
from .models import LoadedModel, load_model
from .paths import cache_dir
from .plugins import get_registered
from .registry import Catalog, load_catalog
from .results import RECORDS_FILE, append_records, certificates, read_records, summarise, write_summary_markdown
from .schema import DEFAULT_K_GRID, Controls, ExtractionPlan, ProbeConfig, Provenance, ResultRecord
from .sources import SourceUnavailable

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_SUITE = "quick"
DEFAULT_SEEDS = (0, 1, 2)  # three grouped splits: the 95% intervals of the summary are t intervals over them


@dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    datasets: list[str] | None = None
    suite: str | None = None
    sites: list[str] = field(default_factory=lambda: ["mlp"])
    layers: list[int] | None = None
    methods: list[str] = field(default_factory=lambda: ["mean_diff"])
    limit: int | None = None
    out: Path = Path("probebank-out")
    include: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    k_grid: list[int] = field(default_factory=lambda: list(DEFAULT_K_GRID))
    batch_size: int = 16
    dense: bool = True
    progress: bool = True
    bases: list[str] = field(default_factory=lambda: ["identity"])  # unsupervised bases to probe (issue 6)
    controls: bool = True          # shuffled-label, random-rotation and token-identity controls (issue 4)
    random_init: bool = False      # also probe a random-init copy of the model (a second extraction)


@dataclass
class RunOutcome:
    out: Path
    summary: list[dict]
    skipped: dict[str, str]
    n_records: int
    seconds: float
    certificates: str | None = None  # the exact probes' certificate digest, when --methods has milp


def _selected(config: RunConfig, catalog: Catalog) -> tuple[list[str], int | None]:
    if config.datasets and config.suite:
        raise ConfigError("give either --datasets or --suite, not both", field="--datasets",
                          fix="drop one of the two options")
    if config.datasets:
        for name in config.datasets:
            catalog.get(name)  # raises with a did-you-mean
        return list(config.datasets), config.limit
    suite = catalog.suite(config.suite or DEFAULT_SUITE)
    return list(suite.datasets), config.limit if config.limit is not None else suite.limit


def _probe(store, built: BuiltDataset, provenance: Provenance, probe_cfg: ProbeConfig, config: RunConfig,
           layers: list[int], methods: dict, *, controls: bool, bases=None) -> Path:
    """Probe one stored dataset, or reuse the records of an identical earlier probe (same store,
    settings and probing code), so a repeated run finishes in seconds. Returns the records file."""
    key = probe_key(store.key, provenance, probe_cfg, config.sites, layers, built.card,
                    [methods.get(m) for m in probe_cfg.methods], controls=controls)
    if bases is not None:  # a BasisRun (issue 6): its fitted bases' keys are part of the records' key
        key = bases.probe_key(key)
    cached = cache_dir("records") / f"{key}.jsonl"
    if not cached.is_file():
        tmp = cached.with_suffix(".tmp")
        tmp.write_text("")
        records = evaluate_store(store, built, provenance, probe_cfg, config.sites, layers,
                                 progress=config.progress, registry_methods=methods, controls=controls,
                                 encoders=bases.encoders() if bases is not None else None)
        append_records(tmp, bases.annotate(records, built, store, probe_cfg) if bases is not None else records)
        tmp.replace(cached)
    return cached


def _fill_random_init(records: list[ResultRecord], random_records: list[ResultRecord]) -> int:
    """Copy each random-init probe's F1 into the matching record's controls; returns how many matched."""
    def match(r: ResultRecord) -> tuple:
        return (r.feature, r.site, r.layer, r.basis, r.method, r.k, r.seed)

    f1 = {match(r): r.metrics.f1 for r in random_records if r.method != "single_unit"}
    n = 0
    for r in records:
        value = f1.get(match(r))
        if value is not None and r.method != "single_unit":
            r.controls = (r.controls or Controls()).model_copy(update={"random_init_f1": value})
            n += 1
    return n


def run(config: RunConfig, *, log: Callable[[str], None] = print) -> RunOutcome:
    started = time.perf_counter()
    catalog = load_catalog(config.include)
    names, limit = _selected(config, catalog)
    registered = get_registered(config.include)
    for method in config.methods:
        if method not in registered.methods:
            raise ConfigError(f"unknown method '{method}'", field="--methods",
                              fix=f"use one of: {', '.join(sorted(registered.methods))}")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    records_path = out / RECORDS_FILE
    probe_cfg = ProbeConfig(methods=config.methods, k_grid=config.k_grid, seeds=config.seeds, dense=config.dense)

    log(f"loading model {config.model} ...")
    loaded: LoadedModel = load_model(config.model)
    layers = resolve_layers(loaded, config.layers)
    bases = None
    if config.bases and config.bases != ["identity"]:  # fit or reuse each basis per site x layer (issue 6)
        from .basis_run import BASES_FILE, BasisRun
        bases = BasisRun.create(config.bases, loaded, config.sites, layers, registered.bases,
                                progress=config.progress, log=log)
    # Only now, with the model loaded and the bases fitted, is this folder's earlier output replaced:
    # a bad option or a failed load leaves it as it was. One run = one records file.
    (out / "run.json").write_text(json.dumps({
        "probebank_version": __version__, "config": {**asdict(config), "out": str(out),
                                                     "include": [str(p) for p in config.include]},
        "model": {"name": loaded.name, "revision": loaded.revision, "dtype": loaded.dtype, "notes": loaded.notes},
        "datasets": names, "limit": limit}, indent=1, default=str))
    records_path.write_text("")
    if bases is not None:
        (out / BASES_FILE).write_text("")
    random_loaded: LoadedModel | None = None  # loaded on first use (--random-init)
    alignment, skipped, n_records = {}, {}, 0
    for name in names:
        entry = catalog.get(name)
        try:
            built: BuiltDataset = build_dataset(entry, builders=registered.builders, limit=limit,
                                                include=config.include, progress=config.progress)
        except SourceUnavailable as exc:
            skipped[name] = exc.message
            log(f"{name}: {exc.message}")
            continue
        plan = ExtractionPlan(model=loaded.name, dataset=name, sites=config.sites, layers=layers,
                              aggregation=entry.card.aggregation, max_tokens=entry.card.max_tokens,
                              batch_size=config.batch_size)
        store, report = extract(loaded, built, plan, progress=config.progress)
        alignment[name] = report.as_dict()
        provenance = Provenance(probebank_version=__version__, model=loaded.name, model_revision=loaded.revision,
                                model_dtype=loaded.dtype, model_notes=loaded.notes, dataset=name,
                                dataset_version=entry.card.version, dataset_hash=built.content_hash,
                                store_key=store.key)
        cached = _probe(store, built, provenance, probe_cfg, config, layers, registered.methods,
                        controls=config.controls, bases=bases)
        if config.random_init:
            if random_loaded is None:
                log(f"loading random-init:{config.model} ...")
                random_loaded = load_model(f"random-init:{config.model}")
            r_plan = plan.model_copy(update={"model": random_loaded.name})
            r_store, _ = extract(random_loaded, built, r_plan, progress=config.progress)
            r_prov = provenance.model_copy(update={"model": random_loaded.name, "model_revision": random_loaded.revision,
                                                   "model_notes": random_loaded.notes, "store_key": r_store.key})
            # The random-init model gets the plain probes only (neuron basis): its controls would not be read.
            r_cached = _probe(r_store, built, r_prov, probe_cfg, config, layers, registered.methods, controls=False)
            records = read_records(cached)
            _fill_random_init(records, read_records(r_cached))
            added = append_records(records_path, records)
        else:  # copy the text as is: parsing every record twice would dominate a repeated run
            text = cached.read_text(encoding="utf-8")
            with open(records_path, "a", encoding="utf-8") as f:
                f.write(text)
            added = text.count("\n")
        if bases is not None and added:
            bases.write_metrics(out, store, built, provenance, probe_cfg, records_path)
        if not added:
            skipped[name] = (f"no feature has {probe_cfg.min_rows_per_class}+ positive rows on both sides of the "
                             f"split; use a larger --limit")
            log(f"{name}: skipped: {skipped[name]}")
        n_records += added
        (out / "alignment.json").write_text(json.dumps(alignment, indent=1))
    records = read_records(records_path) if n_records else []
    rows = summarise(records) if records else []
    digest = certificates(records)
    write_summary_markdown(rows, out / "summary.md", footer=digest)
    if skipped:
        (out / "skipped.json").write_text(json.dumps(skipped, indent=1))
    return RunOutcome(out, rows, skipped, n_records, time.perf_counter() - started, digest)
