"""`probebank replicate`: do Gurnee et al.'s findings hold on this model? Pre-registered, per protocol.

Everything that decides a pass is read from the pre-registered findings file
(probebank.results.preregistered; the packaged core/results/findings.yaml by default), which is
refused when it was edited without a new version. Per model, each dataset of the file is built and
extracted once; its probes run once with every protocol's method and the controls (shuffled labels,
a random rotation of the layer); language-udhr is also probed with shuffled labels (every group,
i.e. UDHR article, gets its own random permutation of the language labels, so a label says nothing
about the text's language that carries over from one article to another; the grouped split keeps
articles on one side). The causal finding mean-ablates each protocol's top language neurons against
random units of matched variance (probebank.causal). The findings are then judged from the records
alone (probebank.results.judge), per protocol:

- standard: units ranked by the F-statistic (scale-free), each feature's layer picked on a
  validation split of the training rows;
- paper: the raw class-mean difference and the layer with the best test F1, as Gurnee et al. did
  (optimistic: the test rows that score the finding also chose the layer).

Overrides of the file's layers, sizes or seeds (for quick looks and tests) make the run exploratory:
its table and findings.json say so.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probebank.causal.check import cached_check, find_target
from probebank.causal.record import CausalRecord, CausalSettings, add_causal
from probebank.data.examples import BuiltDataset, build_dataset
from probebank.data.registry import load_catalog
from probebank.extract.loaded import LoadedModel
from probebank.extract.pipeline import extract, resolve_layers
from probebank.extract.plan import ExtractionPlan
from probebank.extract.providers import load_model
from probebank.extract.store import ActivationStore
from probebank.plugins import get_registered
from probebank.probing.evaluate import evaluate_store
from probebank.probing.schema import ProbeConfig, Provenance, ResultRecord
from probebank.results import judge
from probebank.results.findings_io import FINDINGS_FILE, write_findings
from probebank.results.judge import Finding
from probebank.results.preregistered import Preregistered
from probebank.results.records import append_records
from probebank.results.summary import summarise
from probebank.version import __version__


@dataclass
class ReplicateConfig:
    model: str
    findings: Preregistered
    layers: list[int] | None = None   # overrides (exploratory): None = the file's rule
    limit: int | None = None          # texts per language of the language dataset
    category_limit: int | None = None
    seeds: list[int] | None = None
    causal: bool = True
    out: Path | None = None           # where records, causal checks and findings.json are written
    progress: bool = True
    device: str | None = None

    def overrides(self) -> list[str]:
        named = (("layers", self.layers), ("limit", self.limit), ("category limit", self.category_limit),
                 ("seeds", self.seeds))
        return [name for name, value in named if value is not None] + ([] if self.causal else ["no causal"])


@dataclass
class Replication:
    model: str
    findings: list[Finding]
    seconds: float
    layers: list[int]
    exploratory: list[str] = field(default_factory=list)


def shuffle_labels_per_group(labels: np.ndarray, groups: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """Relabel each group with its own random permutation of the classes (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.asarray(labels).copy()
    for g in np.unique(groups):
        rows = groups == g
        out[rows] = rng.permutation(n_classes)[out[rows]]
    return out


class RelabelledStore:
    """An activation store whose row labels are replaced (activations are read from the original)."""

    def __init__(self, store: ActivationStore, labels: np.ndarray) -> None:
        self._store, self._labels = store, np.asarray(labels, dtype=np.int64)
        self.key = f"{store.key}-relabelled"

    def rows(self) -> dict[str, np.ndarray]:
        return {**self._store.rows(), "label": self._labels}

    def layer(self, site: str, layer: int) -> np.ndarray:
        return self._store.layer(site, layer)


def preregistered_layers(n_layers: int) -> list[int]:
    """every_third_and_last: 0, 3, 6, ... and the last layer."""
    return sorted(set(range(0, n_layers, 3)) | {n_layers - 1})


@dataclass
class _Probed:
    built: BuiltDataset
    store: ActivationStore
    records: list[ResultRecord]


def _probe(loaded: LoadedModel, name: str, limit: int, layers: list[int], cfg: ProbeConfig, progress: bool,
           log: Callable[[str], None]) -> _Probed:
    catalog, registered = load_catalog(), get_registered()
    entry = catalog.get(name)
    built = build_dataset(entry, builders=registered.builders, limit=limit, progress=progress)
    plan = ExtractionPlan(model=loaded.name, dataset=name, sites=["mlp"], layers=layers,
                          aggregation=entry.card.aggregation, max_tokens=entry.card.max_tokens)
    store, _ = extract(loaded, built, plan, progress=progress)
    log(f"probing {name} ({len(built.dataset)} examples) on layers {layers} ...")
    records = list(evaluate_store(store, built, _provenance(loaded, built, store), cfg, ["mlp"], layers,
                                  progress=progress, controls=True))
    return _Probed(built, store, records)


def _provenance(loaded: LoadedModel, built: BuiltDataset, store: ActivationStore) -> Provenance:
    return Provenance(probebank_version=__version__, model=loaded.name, model_revision=loaded.revision,
                      model_dtype=loaded.dtype, model_notes=loaded.notes, dataset=built.name,
                      dataset_version=built.card.version, dataset_hash=built.content_hash, store_key=store.key)


def _top_languages(records: list[ResultRecord], method: str, pick: str, n: int) -> list[tuple[str, int]]:
    """(language, picked layer) of the n languages with the best k=1 F1 at their picked layer (ties: by name)."""
    rows = [r for r in summarise(records, method=method, pick=pick)
            if r["basis"] == "identity" and r["f1_k1"] is not None]
    rows.sort(key=lambda r: (-r["f1_k1"], r["feature"]))
    return [(r["feature"], int(r["best_layer"])) for r in rows[:n]]


def _causal_checks(loaded: LoadedModel, lang: _Probed, method: str, pick: str, cfg: Preregistered,
                   device: str, progress: bool, log: Callable[[str], None]) -> list[CausalRecord]:
    spec = cfg.spec.causal
    settings = CausalSettings(mode=spec.mode, draws=spec.draws, texts=spec.texts, max_tokens=spec.max_tokens)
    out = []
    for feature, layer in _top_languages(lang.records, method, pick, spec.languages):
        source = next(r for r in lang.records if r.method == method and r.feature == feature and r.layer == layer
                      and r.k == 1 and r.seed == 0 and r.basis == "identity")
        target = find_target(lang.records, loaded.name, "mlp", layer, source.units[0],
                             feature=f"{lang.built.name}/{feature}", k=1, method=method)
        target.downstream, target.downstream_note = None, "steering is not part of the pre-registered check"
        log(f"causal check ({method}): {feature} unit {source.units[0]} at layer {layer} ...")
        record, _ = cached_check(target, lang.built, lang.store, settings, lambda: loaded, device=device,
                                 progress=progress)
        out.append(record)
    return out


def replicate(config: ReplicateConfig, *, log: Callable[[str], None] = print) -> Replication:
    """Extract and probe the file's datasets on one model, run the causal checks, judge every finding."""
    started = time.perf_counter()
    spec = config.findings.spec
    catalog = load_catalog()
    log(f"loading model {config.model} ...")
    loaded = load_model(config.model, device=config.device)
    layers = resolve_layers(loaded, config.layers if config.layers is not None
                            else preregistered_layers(loaded.n_layers))
    methods = sorted({p.method for p in spec.protocols.values()})
    cfg = ProbeConfig(methods=methods, k_grid=spec.k_grid, seeds=config.seeds or spec.seeds, dense=False)
    lang_name = spec.language.dataset
    lang = _probe(loaded, lang_name, config.limit or spec.language.limit, layers, cfg, config.progress, log)
    rows = lang.store.rows()
    groups = np.asarray(lang.built.dataset["group"])[rows["example"]]
    labels = shuffle_labels_per_group(rows["label"], groups, len(lang.built.card.labels.classes),
                                      seed=spec.language.shuffle_seed)
    shuffled_prov = _provenance(loaded, lang.built, lang.store).model_copy(update={"dataset": f"{lang_name}-shuffled"})
    log("probing the shuffled-label copy ...")
    shuffled = list(evaluate_store(RelabelledStore(lang.store, labels), lang.built, shuffled_prov, cfg, ["mlp"],
                                   layers, progress=config.progress, controls=True))
    category_records: list[ResultRecord] = []
    for name in spec.categories.datasets:
        if name == lang_name:  # the language dataset's own records stand for its category
            category_records += lang.records
        else:
            category_records += _probe(loaded, name, config.category_limit or spec.categories.limit, layers, cfg,
                                       config.progress, log).records
    category_of = {name: catalog.get(name).card.category for name in spec.categories.datasets}
    device = config.device or "cpu"
    found: list[Finding] = []
    checks: list[CausalRecord] = []
    for pname, protocol in spec.protocols.items():
        found += [judge.single_neurons(spec, pname, protocol, lang.records),
                  judge.neuron_basis(spec, pname, protocol, lang.records),
                  judge.neuron_basis_by_category(spec, pname, protocol, category_records, category_of),
                  judge.grows_with_k(spec, pname, protocol, lang.records),
                  judge.early_distributed(spec, pname, protocol, category_records, loaded.n_layers),
                  judge.selectivity(spec, pname, protocol, lang.records, shuffled)]
        if config.causal:
            mine = _causal_checks(loaded, lang, protocol.method, protocol.layer_pick, config.findings, device,
                                  config.progress, log)
            checks += mine
            found.append(judge.causal(spec, pname, mine))
        else:
            found.append(judge.causal(spec, pname, [], note="skipped (--no-causal)"))
    result = Replication(loaded.name, [judge.with_line(spec, f) for f in found], time.perf_counter() - started,
                         layers, config.overrides())
    if config.out is not None:
        write_outputs(Path(config.out), result, config.findings, lang.records + [
            r for r in category_records if r.provenance.dataset != lang_name], shuffled, checks)
    return result


def write_outputs(out: Path, result: Replication, findings: Preregistered, records: Sequence[ResultRecord],
                  shuffled: Sequence[ResultRecord], checks: Sequence[CausalRecord]) -> None:
    """records.jsonl, shuffled.records.jsonl, causal.jsonl and findings.json (what `probebank report` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, recs in (("records.jsonl", records), ("shuffled.records.jsonl", shuffled)):
        (out / name).write_text("")
        append_records(out / name, recs)
    (out / "causal.jsonl").write_text("")
    add_causal(out / "causal.jsonl", checks)
    what = (f"{findings.path.name} v{findings.spec.version}, layers {result.layers[0]}-{result.layers[-1]}"
            + (f", exploratory ({', '.join(result.exploratory)})" if result.exploratory else ""))
    write_findings(out / FINDINGS_FILE, result.model, what, result.findings, findings_version=findings.spec.version,
                   findings_sha256=findings.sha256, exploratory=result.exploratory, layers=result.layers,
                   seconds=round(result.seconds, 1))


def render_findings(result: Replication, findings: Preregistered) -> object:
    from rich.table import Table

    title = (f"{result.model}: pre-registered findings v{findings.spec.version} ({findings.path.name}, sha256 "
             f"{findings.sha256[:12]}), layers {result.layers}")
    if result.exploratory:
        title += f"\nEXPLORATORY run, not the pre-registered one (overrides: {', '.join(result.exploratory)})"
    table = Table(title=title)
    for col in ("finding", "protocol", "check", "result", "figure [95% CI]"):
        table.add_column(col)
    for f in result.findings:
        table.add_row(f.name, f.protocol, f.check, "[green]pass[/green]" if f.passed else "[red]FAIL[/red]", f.figures)
    return table
