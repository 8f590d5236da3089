"""Probe one stored dataset: every feature x site x layer x method x seed -> ResultRecords.

Splits are made once per seed at the level of rows, grouped by the examples' `group` and
stratified by label; every layer, method and k reuses them, so results are comparable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from .examples import BuiltDataset
from .probe import sweep_feature
from .schema import DatasetCard, ProbeConfig, Provenance, ResultRecord
from .splits import balanced_one_vs_rest, grouped_stratified_split
from .store import ActivationStore


def _source_hash(objs: Sequence[object]) -> str:
    import hashlib
    import inspect
    import sys

    h = hashlib.sha256()
    for obj in objs:
        module = obj if inspect.ismodule(obj) else sys.modules.get(getattr(obj, "__module__", ""), None)
        try:
            h.update(inspect.getsource(module).encode() if module else repr(obj).encode())
        except (OSError, TypeError):
            h.update(repr(obj).encode())
    return h.hexdigest()


def probe_key(store_key: str, provenance: Provenance, cfg: ProbeConfig, sites: Sequence[str],
              layers: Sequence[int], card: DatasetCard, method_objs: Sequence[object]) -> str:
    """Everything that decides a dataset's probe records, including the probing code itself."""
    import hashlib
    import json

    from . import metrics, probe, select, splits

    blob = json.dumps({"store": store_key, "provenance": provenance.model_dump(mode="json"),
                       "config": cfg.model_dump(mode="json"), "sites": list(sites), "layers": list(layers),
                       "split": card.split.model_dump(mode="json"), "labels": card.labels.model_dump(mode="json"),
                       "aggregation": card.aggregation,
                       "code": _source_hash([metrics, probe, select, splits]
                                            + [m for m in method_objs if m is not None]
                                            + [feature_splits])}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class FeatureSplit:
    feature: str
    seed: int
    train: np.ndarray   # row indices
    test: np.ndarray
    y_train: np.ndarray  # binary 0/1
    y_test: np.ndarray


def feature_splits(built: BuiltDataset, rows: dict[str, np.ndarray], cfg: ProbeConfig) -> list[FeatureSplit]:
    """One-vs-rest binary tasks for each class (binary datasets: the positive class only), per seed."""
    card = built.card
    labels = rows["label"]
    groups_by_example = np.asarray(built.dataset["group"])
    groups = groups_by_example[rows["example"]] if card.split.grouped else None
    classes = card.labels.classes
    positives = [1] if card.labels.type == "binary" else list(range(len(classes)))
    out: list[FeatureSplit] = []
    for seed in cfg.seeds:
        split_seed = card.split.seed + seed
        train, test = grouped_stratified_split(labels, groups, card.split.test_size, split_seed)
        for pos in positives:
            n_tr, n_te = int((labels[train] == pos).sum()), int((labels[test] == pos).sum())
            if min(n_tr, n_te) < cfg.min_rows_per_class:
                continue  # too rare to probe honestly; reported by the caller via missing features
            if cfg.balance:
                tr, y_tr = balanced_one_vs_rest(labels, pos, train, split_seed)
                te, y_te = balanced_one_vs_rest(labels, pos, test, split_seed)
            else:
                tr, te = train, test
                y_tr, y_te = (labels[tr] == pos).astype(int), (labels[te] == pos).astype(int)
            out.append(FeatureSplit(classes[pos], seed, tr, te, y_tr, y_te))
    return out


Encoder = Callable[[str, int, np.ndarray], np.ndarray]  # (site, layer, activations) -> codes


def identity_encoder(site: str, layer: int, X: np.ndarray) -> np.ndarray:
    return X


def evaluate_store(store: ActivationStore, built: BuiltDataset, provenance: Provenance, cfg: ProbeConfig,
                   sites: Sequence[str], layers: Sequence[int], *, progress: bool = True,
                   registry_methods: dict | None = None,
                   encoders: Mapping[str, Encoder] | None = None) -> Iterator[ResultRecord]:
    """Yield records layer by layer (callers stream them to disk).

    `encoders` maps a basis name to a function turning a layer's activations into that basis's
    codes; probes run on each basis's codes in turn (default: the neurons themselves).
    """
    from tqdm.auto import tqdm

    from .select import get_selector

    rows = store.rows()
    splits = feature_splits(built, rows, cfg)
    # Resolve each method once, from the run's own plugin registry (so --include methods work).
    selectors = {name: (registry_methods[name]() if registry_methods and name in registry_methods
                        else get_selector(name)) for name in cfg.methods}
    encoders = dict(encoders or {"identity": identity_encoder})
    jobs = [(site, layer) for site in sites for layer in layers]
    for site, layer in tqdm(jobs, desc=f"probe {built.name}", unit="layer", disable=not progress, leave=False):
        X_layer = np.asarray(store.layer(site, layer), dtype=np.float32)  # fp16 on disk -> fp32 once per layer
        for basis, encode in encoders.items():
            X = np.asarray(encode(site, layer, X_layer), dtype=np.float32)
            for sp in splits:
                Xtr, Xte = X[sp.train], X[sp.test]
                for mi, method in enumerate(cfg.methods):
                    points = sweep_feature(Xtr, sp.y_train, Xte, sp.y_test, method=selectors[method],
                                           k_grid=cfg.k_grid, dense=cfg.dense and mi == 0, C=cfg.C,
                                           max_iter=cfg.max_iter, seed=sp.seed)
                    for p in points:
                        yield ResultRecord(
                            provenance=provenance, feature=sp.feature, site=site, layer=layer,
                            aggregation=built.card.aggregation, basis=basis,
                            method="dense" if p.method == "dense" else method,
                            method_params=selectors[method].get_params() if p.method != "dense" else {},
                            k=p.k, seed=sp.seed,
                            n_train=len(sp.train), n_test=len(sp.test), n_train_pos=int(sp.y_train.sum()),
                            n_test_pos=int(sp.y_test.sum()), metrics=p.metrics, units=[int(u) for u in p.units],
                            coef=[float(c) for c in p.coef], intercept=float(p.intercept),
                            wall_time_s=float(p.wall_time_s))
