"""Results folders -> merged records -> per-dataset scores -> per-category rankings (mean and Borda).

A results folder (the --out of `probebank run`) is the unit of exchange. Several folders merge
into one set; a record seen twice (same model revision, dataset content, feature, site, layer,
basis, method, k and seed) is counted once when both copies agree and refused when they do not.

An *entry* is what the leaderboard compares: the value of the --by field (model, method, layer
or basis), plus whichever of model / method / basis also varies across the records, so that two
different things are never averaged together.

Records of regression cards (R2, not F1) are scored apart (probebank.results.value_board:
`Leaderboard.values`) and never enter the F1 rankings.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from probebank.data.registry import load_catalog
from probebank.errors import ConfigError, ProbebankError
from probebank.probing.schema import ResultRecord
from probebank.probing.stats import mean_known
from probebank.results.ranking import CategoryRanking, RankRow, borda, competition_ranks
from probebank.results.records import RECORDS_FILE, read_records
from probebank.results.summary import NON_PROBE_METHODS
from probebank.results.ties import mark_ties
from probebank.results.value_board import ValueScore, value_scores

By = Literal["model", "method", "layer", "basis"]
BY_FIELDS: tuple[str, ...] = ("model", "method", "layer", "basis")
METRICS = {"f1_k1": "F1 k=1", "f1_k16": "F1 k=16", "f1_dense": "F1 dense", "k_auc": "k-curve AUC"}


# ---- loading and merging -----------------------------------------------------------------------
def record_identity(r: ResultRecord) -> tuple:
    p = r.provenance
    return (p.model, p.model_revision, p.dataset, p.dataset_version, p.dataset_hash, p.test_dataset_hash, r.feature,
            r.site, r.layer, r.aggregation, r.basis, r.basis_key, r.method, r.k, r.seed)


@dataclass
class ResultSet:
    records: list[ResultRecord]
    folders: list[Path]
    runs: dict[str, dict]                 # folder -> its run.json (when present)
    duplicates: int = 0                   # identical records seen more than once (counted once)
    origin: list[str] = field(default_factory=list)  # folder of each record (parallel to records)


def load_results(folders: Sequence[Path]) -> ResultSet:
    """Read and merge results folders (or single .jsonl files); identical duplicates are dropped."""
    if not folders:
        raise ConfigError("no results folder given", field="DIR", fix="pass one or more --out folders of `probebank run`")
    seen: dict[tuple, tuple[ResultRecord, str]] = {}
    out = ResultSet([], [], {})
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise ConfigError(f"results folder not found: {folder}", file=folder, field="DIR",
                              fix="pass the --out folder of a `probebank run`")
        out.folders.append(folder)
        run_json = folder / "run.json"
        if run_json.is_file():
            try:
                out.runs[str(folder)] = json.loads(run_json.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"run.json is not valid JSON: {exc}", file=run_json,
                                  fix="regenerate the folder with `probebank run`") from None
        records = read_records(folder / RECORDS_FILE if (folder / RECORDS_FILE).is_file() else folder)
        for r in records:
            key = record_identity(r)
            if key in seen:
                first, where = seen[key]
                if first.metrics != r.metrics or first.units != r.units:
                    raise ConfigError(
                        f"two results disagree on the same probe ({r.provenance.model}, {r.provenance.dataset}, "
                        f"feature {r.feature}, {r.site} layer {r.layer}, {r.method} k={r.k}, seed {r.seed}): "
                        f"{r.metric_name} {first.score:.4f} in {where} vs {r.score:.4f} in {folder}",
                        file=folder, field="metrics", fix="keep one of the two folders")
                out.duplicates += 1
                continue
            seen[key] = (r, str(folder))
            out.records.append(r)
            out.origin.append(str(folder))
    return out


# ---- scores --------------------------------------------------------------------------------------
def k_curve_auc(curve: dict[int, float]) -> float | None:
    """Area under F1 against log2 k, divided by the log2 k span: a mean F1 over the k grid on a log scale."""
    ks = sorted(curve)
    if not ks:
        return None
    if len(ks) == 1:
        return curve[ks[0]]
    xs = [math.log2(k) for k in ks]
    area = sum((xs[i + 1] - xs[i]) * (curve[ks[i]] + curve[ks[i + 1]]) / 2 for i in range(len(ks) - 1))
    return area / (xs[-1] - xs[0])


@dataclass
class FeatureScore:
    entry: str
    model: str
    method: str
    basis: str
    dataset: str
    category: str
    feature: str
    site: str
    best_layer: int
    f1_k1: float | None
    f1_k16: float | None
    f1_dense: float | None
    k_auc: float | None
    selectivity: float | None
    units_k1: list[int]
    curve: dict[int, float]                   # k -> F1 at the best layer (mean over seeds)
    layer_curves: dict[int, dict[int, float]]  # layer -> k -> F1
    flags: list[str] = field(default_factory=list)
    picked_on: str = "test"  # what chose best_layer: validation, train (records without val_f1) or test


@dataclass
class DatasetScore:
    entry: str
    dataset: str
    category: str
    n_features: int
    f1_k1: float | None
    f1_k16: float | None
    f1_dense: float | None
    k_auc: float | None
    selectivity: float | None


def _model_labels(records: Sequence[ResultRecord]) -> dict[tuple[str, str], str]:
    """(model, revision) -> label: the name, or name@revision when one name has several revisions
    (e.g. two random-init seeds), so different weights are never merged into one entry."""
    revisions: dict[str, set[str]] = defaultdict(set)
    for r in records:
        revisions[r.provenance.model].add(r.provenance.model_revision)
    return {(m, rev): (m if len(revs) == 1 else f"{m}@{rev[:12]}") for m, revs in revisions.items() for rev in revs}


def _varying(records: Sequence[ResultRecord], by: str, models: dict[tuple[str, str], str]) -> list[str]:
    """The fields besides `by` that take more than one value (dense records do not count as a method)."""
    values: dict[str, set] = {"model": set(), "method": set(), "basis": set()}
    for r in records:
        values["model"].add(models[(r.provenance.model, r.provenance.model_revision)])
        values["basis"].add(r.basis)
        if r.method not in NON_PROBE_METHODS:
            values["method"].add(r.method)
    return [f for f in ("model", "method", "basis") if f != by and len(values[f]) > 1]


def entry_name(r: ResultRecord, by: str, extra: Sequence[str], models: dict[tuple[str, str], str]) -> str:
    def value(name: str) -> str:
        if name == "model":
            return models[(r.provenance.model, r.provenance.model_revision)]
        if name == "method":
            return r.method
        if name == "layer":
            return f"layer {r.layer}"
        return r.basis
    return " / ".join([value(by)] + [value(f) for f in extra])


LAYER_BY = ("validation", "test", "train")
LAYER_WORD = {"validation": "validation", "test": "test (optimistic)",
              "train": "training"}  # for "picked on <word> k=1 F1"


def feature_scores(records: Sequence[ResultRecord], *, by: str = "model",
                   categories: dict[str, str] | None = None, layer_by: str = "validation") -> list[FeatureScore]:
    """Best-layer (or, for --by layer, per-layer) scores of every (entry, dataset, feature, site).

    layer_by="validation" (the default): the best layer is the one with the best k=1 `val_f1` (a
    validation split of the training rows, probebank.probing.evaluate), so no score looked at the
    test rows; a feature whose records have no val_f1 (older results) falls back to its k=1 training
    F1, then to test F1 (`FeatureScore.picked_on` says which). "test": the best k=1 test F1, as
    Gurnee et al. report it (optimistic, for comparison with the paper); "train": the best k=1
    *training* F1 (needs records with `train_f1`, written since session 3).
    """
    if by not in BY_FIELDS:
        raise ConfigError(f"cannot rank by '{by}'", field="--by", fix=f"use one of: {', '.join(BY_FIELDS)}")
    if layer_by not in LAYER_BY:
        raise ConfigError(f"unknown layer choice '{layer_by}'", field="--layer-by", fix="use test or train")
    categories = categories or {}
    records = [r for r in records if not r.regression]  # scored by value_board (R2), not here
    models = _model_labels(records)
    extra = _varying(records, by, models)
    # (model, dataset, feature, site, basis) -> layer -> seed -> dense F1 (shared by every method of that group)
    dense: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    # (group key) -> layer -> k -> [F1 over seeds]
    f1: dict[tuple, dict[int, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    sel: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    train1: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))  # k=1 training F1
    val1: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))  # k=1 validation F1
    units: dict[tuple, dict[int, tuple[int, list[int]]]] = defaultdict(dict)
    flags: dict[tuple, set[str]] = defaultdict(set)
    meta: dict[tuple, tuple[str, str, str]] = {}
    hashes: dict[tuple, set[str]] = defaultdict(set)
    for r in records:
        p = r.provenance
        base = (p.model, p.model_revision, p.dataset, r.feature, r.site, r.basis)
        if r.method == "dense":
            dense[base][r.layer].append(r.f1)
            continue
        if r.method in NON_PROBE_METHODS:  # the best-single-unit signal: not a probe to rank
            continue
        group_layer = r.layer if by == "layer" else None
        key = (entry_name(r, by, extra, models), p.dataset, r.feature, r.site, group_layer) + base
        hashes[(key[0], p.dataset)].add(p.dataset_hash)
        meta[key] = (p.model, r.method, r.basis)
        f1[key][r.layer][r.k].append(r.f1)
        if r.controls is not None and r.controls.selectivity is not None and r.k == 1:
            sel[key][r.layer].append(r.controls.selectivity)
        if r.k == 1 and r.train_f1 is not None:
            train1[key][r.layer].append(r.train_f1)
        if r.k == 1 and r.val_f1 is not None:
            val1[key][r.layer].append(r.val_f1)
        flags[key].update(r.basis_flags)
        if r.k == 1 and (r.layer not in units[key] or r.seed < units[key][r.layer][0]):
            units[key][r.layer] = (r.seed, list(r.units))
    mixed = [f"{entry} on {ds}" for (entry, ds), hs in hashes.items() if len(hs) > 1]
    if mixed:
        raise ConfigError(f"the same entry has results for two different contents of one dataset: {', '.join(mixed)}",
                          field="provenance.dataset_hash",
                          fix="compare folders run at the same --limit (and dataset version)")
    out: list[FeatureScore] = []
    for key, by_layer in sorted(f1.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        entry, dataset, feature, site = key[:4]
        base = key[5:]
        curves = {layer: {k: sum(v) / len(v) for k, v in ks.items()} for layer, ks in by_layer.items()}
        # best layer on k=1 validation F1 (else training F1), or on test F1 as the paper; ties: earlier layer
        picked_on = layer_by
        if layer_by == "validation":
            picked_on = "validation" if val1[key] else "train" if train1[key] else "test"
        if layer_by == "train" and not train1[key]:
            raise ConfigError(f"{entry} on {dataset}/{feature} has no training F1 to pick a layer with "
                              f"(results written before probebank recorded train_f1)", field="--layer-by",
                              fix="re-run those results, or use --layer-by test")
        if picked_on in ("validation", "train"):
            scores = {layer: sum(v) / len(v) for layer, v in (val1 if picked_on == "validation" else train1)[key].items()}
            best = max(scores, key=lambda layer: (scores[layer], -layer))
        else:
            best = max(curves, key=lambda layer: (curves[layer].get(1, -1.0), -layer))
        curve = curves[best]
        d = dense[base].get(best)
        model, method, basis = meta[key]
        out.append(FeatureScore(
            entry=entry, model=model, method=method, basis=basis, dataset=dataset,
            category=categories.get(dataset, "-"), feature=feature, site=site, best_layer=best,
            f1_k1=curve.get(1), f1_k16=curve.get(16), f1_dense=(sum(d) / len(d)) if d else None,
            k_auc=k_curve_auc(curve), selectivity=mean_known(sel[key].get(best, [])) if sel[key].get(best) else None,
            units_k1=units[key].get(best, (0, []))[1], curve=dict(sorted(curve.items())),
            layer_curves={layer: dict(sorted(c.items())) for layer, c in sorted(curves.items())},
            flags=sorted(flags[key]), picked_on=picked_on))
    return out


def dataset_scores(features: Sequence[FeatureScore]) -> list[DatasetScore]:
    """Mean over a dataset's features (and sites) of each feature's best-layer scores."""
    groups: dict[tuple[str, str], list[FeatureScore]] = defaultdict(list)
    for f in features:
        groups[(f.entry, f.dataset)].append(f)
    out = []
    for (entry, dataset), fs in sorted(groups.items()):
        means = {m: mean_known(getattr(f, m) for f in fs) for m in ("f1_k1", "f1_k16", "f1_dense", "k_auc", "selectivity")}
        out.append(DatasetScore(entry, dataset, fs[0].category, len(fs), **means))
    return out


# ---- rankings (RankRow, CategoryRanking, borda: probebank.results.ranking) ----------------------------
def rank_categories(scores: Sequence[DatasetScore], metric: str = "f1_k1") -> list[CategoryRanking]:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric '{metric}'", field="--metric", fix=f"use one of: {', '.join(METRICS)}")
    by_cat: dict[str, dict[str, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    for s in scores:
        by_cat[s.category][s.dataset][s.entry] = getattr(s, metric)
    out = []
    for category, datasets in sorted(by_cat.items()):
        entries = sorted({e for d in datasets.values() for e in d})
        refused = []
        for ds, per_entry in sorted(datasets.items()):
            for e in entries:
                if e not in per_entry:
                    refused.append(f"{e} has no results for {ds}")
                elif per_entry[e] is None:
                    refused.append(f"{e} has no {METRICS[metric]} for {ds}")
        if refused:
            out.append(CategoryRanking(category, sorted(datasets), [], refused))
            continue
        # every value is known here: a missing or None one refused the category above
        known = {d: {e: float(v) for e, v in per.items() if v is not None} for d, per in datasets.items()}
        means = {e: sum(known[d][e] for d in known) / len(known) for e in entries}
        points = borda(known)
        mean_ranks, borda_ranks = competition_ranks(means), competition_ranks(points)
        rows = [RankRow(e, len(datasets), means[e], mean_ranks[e], points[e], borda_ranks[e]) for e in entries]
        rows.sort(key=lambda r: (r.mean_rank, r.borda_rank, r.entry))
        out.append(CategoryRanking(category, sorted(datasets), rows, []))
    return out


@dataclass
class Leaderboard:
    by: str
    metric: str
    results: ResultSet
    features: list[FeatureScore]
    datasets: list[DatasetScore]
    rankings: list[CategoryRanking]
    layer_by: str = "validation"  # how each feature's best layer was picked: validation, test or training k=1 F1
    values: list[ValueScore] = field(default_factory=list)  # regression cards: R2, apart from the rankings


def dataset_categories(names: Iterable[str], include: Sequence[Path] = ()) -> dict[str, str]:
    """Category of each dataset from the registry; datasets the registry does not know get '-'."""

    catalog = load_catalog(list(include))
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = catalog.get(name).card.category
        except ProbebankError:  # a dataset only the submitter's plugins know: still shown, in category '-'
            out[name] = "-"
    return out


def build_leaderboard(folders: Sequence[Path], *, by: str = "model", category: str | None = None,
                      metric: str = "f1_k1", include: Sequence[Path] = (),
                      categories: dict[str, str] | None = None, layer_by: str = "validation") -> Leaderboard:
    results = load_results(folders)
    if categories is None:
        categories = dataset_categories({r.provenance.dataset for r in results.records}, include)
    feats = feature_scores(results.records, by=by, categories=categories, layer_by=layer_by)
    values = _value_scores(results.records, by, categories, layer_by)
    if category:
        known = sorted({f.category for f in feats} | {v.category for v in values})
        feats = [f for f in feats if f.category == category]
        values = [v for v in values if v.category == category]
        if not feats and not values:
            raise ConfigError(f"no results in category '{category}'", field="--category",
                              fix=f"use one of: {', '.join(known)}")
    ds = dataset_scores(feats)
    rankings = rank_categories(ds, metric)
    mark_ties(rankings, feats, metric)
    return Leaderboard(by, metric, results, feats, ds, rankings, layer_by, values)


def _value_scores(records: Sequence[ResultRecord], by: str, categories: dict[str, str],
                  layer_by: str) -> list[ValueScore]:
    """The regression records' scores, with entries named as for the F1 rankings."""
    values = [r for r in records if r.regression]
    models = _model_labels(values)
    extra = _varying(values, by, models)
    return value_scores(values, lambda r: entry_name(r, by, extra, models), categories=categories,
                        layer_by=layer_by)
