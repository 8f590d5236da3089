"""Neuron cards: what one neuron does across the bank, read from the activation stores in the cache.

For (model, site, layer, neuron), every complete store of that model holding that layer gives
the neuron's activations on one dataset: a histogram per class, the top-activating examples
with their target span, and, from result records (results folders, or the probe records cached
by earlier runs), the (dataset, feature, k) probes that selected this neuron, and the causal checks
of it (`probebank inspect ... --ablate`; their causal.jsonl in the results folders, else the cache).
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probebank.causal.record import CausalRecord, cached_records, folder_records, unit_checks
from probebank.data.examples import row_values
from probebank.data.registry import load_catalog
from probebank.errors import ConfigError
from probebank.extract.store import STORE_FORMAT, ActivationStore
from probebank.hashing import RuntimeCache
from probebank.paths import bank_root, cache_dir, cache_root
from probebank.probing.schema import ResultRecord
from probebank.results.records import result_files

N_BINS = 12


@dataclass
class ClassHistogram:
    label: str
    count: int
    mean: float
    counts: list[int]


@dataclass
class TopExample:
    activation: float
    label: str
    text: str
    span: tuple[int, int]   # char span of the target inside text
    token_position: int


@dataclass
class DatasetView:
    dataset: str
    version: str
    store_key: str
    n_rows: int
    edges: list[float]
    histograms: list[ClassHistogram]
    top: list[TopExample]
    examples_found: bool  # False when the built dataset (texts) is no longer in the cache


@dataclass
class Selection:
    dataset: str
    feature: str
    method: str
    k: int
    score: float  # the probe's test F1, or R2 on a regression card (`metric`)
    rank: int  # position of the neuron in the probe's units (0 = first selected)
    metric: str = "F1"


@dataclass
class NeuronCard:
    model: str
    site: str
    layer: int
    neuron: int
    datasets: list[DatasetView] = field(default_factory=list)
    selections: list[Selection] = field(default_factory=list)
    causal: list[CausalRecord] = field(default_factory=list)


def model_stores(model: str, site: str, layer: int) -> list[ActivationStore]:
    """Complete stores in the cache made from `model` that hold (site, layer), newest dataset version first."""
    root = cache_dir("store")
    out = []
    for meta_path in sorted(root.glob("*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            continue
        parts = meta.get("parts", {})
        if (meta.get("status") == "complete" and meta.get("format") == STORE_FORMAT  # older layouts: not readable
                and parts.get("model", {}).get("name") == model
                and site in meta.get("sites", []) and layer in meta.get("layers", [])):
            out.append(ActivationStore(root, meta_path.parent.name))
    return out


def known_models() -> list[str]:
    names = set()
    for meta_path in cache_dir("store").glob("*/meta.json"):
        try:
            names.add(json.loads(meta_path.read_text())["parts"]["model"]["name"])
        except (ValueError, KeyError):
            continue
    return sorted(names)


# A report writes up to hundreds of neuron cards, each reading every store of a layer: the
# builds, the class names and the layer arrays are read once per process, not once per card.
_BUILT: RuntimeCache[tuple[str, str, str], object] = RuntimeCache()


def _built_dataset(name: str, content_hash: str) -> Any:
    """The cached build (datasets.Dataset) whose content hash is the store's, or None."""
    from datasets.load import load_from_disk

    folder = cache_root() / "built" / name
    if (str(folder), name, content_hash) in _BUILT:
        return _BUILT[(str(folder), name, content_hash)]
    for meta_path in sorted(folder.glob("*/meta.json")) if folder.is_dir() else []:
        try:
            if json.loads(meta_path.read_text()).get("content_hash") == content_hash:
                built = _BUILT[(str(folder), name, content_hash)] = load_from_disk(str(meta_path.parent / "data"))
                return built
        except (ValueError, OSError):
            continue
    return None  # not remembered: a later build in this process may still provide it


@functools.lru_cache(maxsize=8)
def _catalog_classes(bank: str) -> dict[str, list[str]]:
    catalog = load_catalog([])
    return {name: list(catalog.entries[name].card.labels.classes) for name in catalog.names()}


def _classes(name: str) -> list[str] | None:
    try:
        return _catalog_classes(str(bank_root())).get(name)
    except Exception:
        return None


@functools.lru_cache(maxsize=64)
def _layer_array(store_path: str, site: str, layer: int) -> np.ndarray:
    path = Path(store_path)
    return np.asarray(ActivationStore(path.parent, path.name).layer(site, layer))


def dataset_view(store: ActivationStore, site: str, layer: int, neuron: int, top_n: int = 8) -> DatasetView:
    width = store.meta["widths"][site]
    if not 0 <= neuron < width:
        raise ConfigError(f"neuron {neuron} does not exist at {site} (width {width})", field="NEURON",
                          fix=f"use 0..{width - 1}")
    acts = np.asarray(_layer_array(str(store.path), site, layer)[:, neuron], dtype=np.float64)
    rows = store.rows()
    ds_meta = store.meta["parts"]["dataset"]
    classes = _classes(ds_meta["name"])
    labels = rows["label"]

    def label_name(i: int) -> str:
        return classes[i] if classes and 0 <= i < len(classes) else str(i)

    lo, hi = (float(acts.min()), float(acts.max())) if acts.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, N_BINS + 1)
    hists = []
    for lab in sorted(set(labels.tolist())):
        vals = acts[labels == lab]
        hists.append(ClassHistogram(label_name(lab), int(vals.size), float(vals.mean()),
                                    np.histogram(vals, bins=edges)[0].astype(int).tolist()))
    dataset = _built_dataset(ds_meta["name"], ds_meta["content_hash"])
    top = []
    for i in np.argsort(-acts, kind="stable")[:top_n]:
        ex, t = int(rows["example"][i]), int(rows["target"][i])
        if dataset is not None:
            example = dataset[ex]
            tgt = example["targets"][t]
            text, span = example["text"], (int(tgt["start"]), int(tgt["end"]))
        else:
            text, span = f"(example {ex}, target {t}: the built dataset is not in the cache)", (0, 0)
        label = label_name(int(labels[i]))
        if dataset is not None and "value" in dataset.features:  # a regression card: show the target's value
            label = f"{label} = {row_values(example)[t]:.4g}"
        top.append(TopExample(float(acts[i]), label, text, span, int(rows["position"][i])))
    return DatasetView(ds_meta["name"], ds_meta["version"], store.key, int(acts.size), edges.tolist(), hists, top,
                       dataset is not None)


def record_files(results: Sequence[Path]) -> list[Path]:
    """Record files to search: the given results folders, else the probe records cached by earlier runs."""
    if results:
        return [path for folder in results for path in result_files(Path(folder))]
    return sorted((cache_root() / "records").glob("*.jsonl"))


def _file_records(files: Sequence[Path], model: str, layer: int) -> Iterator[ResultRecord]:
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            # cheap prefilter before validating: most lines are other layers or models
            if f'"layer":{layer},' in line and model in line:
                yield ResultRecord.model_validate_json(line)


def selections(model: str, site: str, layer: int, neuron: int, records: Iterable[ResultRecord],
               max_k: int = 16) -> list[Selection]:
    """Probes (k <= max_k) of this model that selected the neuron; the smallest k per (dataset, feature, method)."""
    best: dict[tuple[str, str, str], Selection] = {}
    for r in records:
        if (r.provenance.model != model or r.site != site or r.layer != layer or r.basis != "identity"
                or r.method == "dense" or r.k > max_k or neuron not in r.units):
            continue
        key = (r.provenance.dataset, r.feature, r.method)
        if key not in best or r.k < best[key].k:
            rank = r.units.index(neuron)
            best[key] = Selection(key[0], key[1], key[2], r.k, _own_score(r, rank), rank, r.metric_name)
    return sorted(best.values(), key=lambda s: (s.k, -s.score, s.dataset, s.feature))


def _own_score(r: ResultRecord, rank: int) -> float:
    """The score of the probe that holds the neuron; for a `single_unit` record (every unit that alone reaches
    F1 >= 0.9, best first, its metrics those of the best one) the F1 of this very unit."""
    per_unit = r.method_params.get("unit_f1") if r.method == "single_unit" else None
    if isinstance(per_unit, list) and rank < len(per_unit):
        return float(per_unit[rank])
    return r.score


def neuron_card(model: str, layer: int, neuron: int, *, site: str = "mlp", results: Sequence[Path] = (),
                records: Sequence[ResultRecord] | None = None, datasets: Sequence[str] | None = None,
                top_n: int = 8, causal: Sequence[CausalRecord] | None = None) -> NeuronCard:
    """The card of one neuron. Selections come from `records` if given, else from the record files of
    `results` folders, else from the probe records cached by earlier runs; causal checks from `causal` if
    given, else from the results folders' causal.jsonl, else from the cache."""
    stores = model_stores(model, site, layer)
    if datasets:
        stores = [s for s in stores if s.meta["parts"]["dataset"]["name"] in datasets]
    if not stores:
        models = known_models()
        raise ConfigError(f"no activation store of {model} with {site} layer {layer} in the cache {cache_root()}",
                          field="MODEL", fix=("run `probebank run --model MODEL` first (stores are kept in "
                                              "$PROBEBANK_CACHE/store)" + (f"; stored models: {', '.join(models)}"
                                                                          if models else "")))
    card = NeuronCard(model, site, layer, neuron)
    seen = set()
    for store in stores:
        view = dataset_view(store, site, layer, neuron, top_n)
        if (view.dataset, view.version) in seen:
            continue  # the same dataset stored at another limit: the first is enough for a card
        seen.add((view.dataset, view.version))
        card.datasets.append(view)
    found = records if records is not None else _file_records(record_files(results), model, layer)
    card.selections = selections(model, site, layer, neuron, found)
    if causal is None:
        causal = folder_records(results) if results else cached_records()
    card.causal = unit_checks(causal, model, site, layer, neuron)
    return card


# ---- text rendering -------------------------------------------------------------------------------
BAR = "▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    top = max(counts) or 1
    return "".join(" " if c == 0 else BAR[min(len(BAR) - 1, int(c / top * (len(BAR) - 1) + 0.5))] for c in counts)


def render_text(card: NeuronCard, markup: bool = True, max_selections: int = 20) -> str:
    """The neuron card as text (rich markup for the target span when markup=True, else [[...]])."""
    from rich.markup import escape

    def hl(ex: TopExample) -> str:
        a, b = ex.span
        text = ex.text.replace("\n", " ")
        before, target, after = text[max(0, a - 60):a], text[a:b], text[b:b + 40]
        if len(target) > 160:  # mean-pooled whole-text targets: keep the card readable
            target = target[:120] + " … " + target[-30:]
        before = ("…" if a > 60 else "") + before
        after = after + ("…" if len(text) > b + 40 else "")
        if markup:
            return f"{escape(before)}[bold reverse]{escape(target)}[/]{escape(after)}"
        return f"{before}[[{target}]]{after}"

    lines = [f"Neuron card: {card.model} {card.site} layer {card.layer} neuron {card.neuron}", ""]
    for v in card.datasets:
        lines.append(f"== {v.dataset} v{v.version} ({v.n_rows} rows, store {v.store_key}) ==")
        lines.append(f"activation histogram per class, {N_BINS} bins from {v.edges[0]:.3g} to {v.edges[-1]:.3g}:")
        width = max(len(h.label) for h in v.histograms)
        for h in v.histograms:
            lines.append(f"  {h.label:<{width}} |{sparkline(h.counts)}| n={h.count} mean={h.mean:.3g}")
        lines.append("top-activating examples (target in " + ("reverse video" if markup else "[[ ]]") + "):")
        for ex in v.top:
            lines.append(f"  {ex.activation:8.3f}  {ex.label:<{width}}  {hl(ex)}")
        lines.append("")
    if card.selections:
        lines.append("selected by probes (k <= 16; smallest k per dataset/feature/method):")
        for s in card.selections[:max_selections]:
            lines.append(f"  {s.dataset} / {s.feature}: {s.method} k={s.k} (unit #{s.rank + 1}), {s.metric} {s.score:.3f}")
        if len(card.selections) > max_selections:
            lines.append(f"  ... and {len(card.selections) - max_selections} more (with larger k)")
    else:
        lines.append("not selected by any probe with k <= 16 in the searched records")
    if card.causal:
        lines.append("")
        lines.append("causal checks (`probebank inspect ... --ablate`):")
        lines += [f"  {r.summary()}" for r in card.causal]
    return "\n".join(lines)
