"""Probe one stored dataset: every feature x site x layer x method x seed -> ResultRecords.

Splits are made once per seed at the level of rows, grouped by the examples' `group` and
stratified by label; every layer, method and k reuses them, so results are comparable.
With controls on (the default of `probebank run`), every sparse record also carries the
shuffled-label F1, selectivity, the random-rotation F1 and the token-identity baseline of the
same split, method and k (probebank.controls), and each (feature, layer, seed) gets one
`single_unit` record: the units that alone reach F1 >= 0.9.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from .controls import (MONO_F1, TOKEN_AGGREGATIONS, grouped_shuffle, random_rotation, single_unit_f1,
                       token_identity_f1)
from .examples import BuiltDataset
from .metrics import binary_metrics
from .probe import sweep_feature
from .schema import Controls, DatasetCard, ProbeConfig, Provenance, ResultRecord
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
              layers: Sequence[int], card: DatasetCard, method_objs: Sequence[object],
              controls: bool = False) -> str:
    """Everything that decides a dataset's probe records, including the probing code itself."""
    import hashlib
    import json

    from . import controls as controls_module
    from . import metrics, probe, select, shortcuts, splits

    blob = json.dumps({"store": store_key, "provenance": provenance.model_dump(mode="json"),
                       "config": cfg.model_dump(mode="json"), "sites": list(sites), "layers": list(layers),
                       "split": card.split.model_dump(mode="json"), "labels": card.labels.model_dump(mode="json"),
                       "aggregation": card.aggregation, "controls": controls,
                       "code": _source_hash([metrics, probe, select, splits, controls_module, shortcuts]
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
                   encoders: Mapping[str, Encoder] | None = None,
                   controls: bool = False) -> Iterator[ResultRecord]:
    """Yield records layer by layer (callers stream them to disk).

    `encoders` maps a basis name to a function turning a layer's activations into that basis's
    codes; probes run on each basis's codes in turn (default: the neurons themselves).
    `controls` adds the control probes (no dense baseline for them: it would dominate the cost).
    """
    from tqdm.auto import tqdm

    from .select import get_selector

    rows = store.rows()
    splits = feature_splits(built, rows, cfg)
    # Resolve each method once, from the run's own plugin registry (so --include methods work).
    selectors = {name: (registry_methods[name]() if registry_methods and name in registry_methods
                        else get_selector(name)) for name in cfg.methods}
    encoders = dict(encoders or {"identity": identity_encoder})
    split_controls = _split_controls(built, rows, splits) if controls else []
    jobs = [(site, layer) for site in sites for layer in layers]
    for site, layer in tqdm(jobs, desc=f"probe {built.name}", unit="layer", disable=not progress, leave=False):
        X_layer = np.asarray(store.layer(site, layer), dtype=np.float32)  # fp16 on disk -> fp32 once per layer
        for basis, encode in encoders.items():
            X = np.asarray(encode(site, layer, X_layer), dtype=np.float32)
            X_rot = random_rotation(X, ROTATION_SEED) if controls else None  # once per layer and basis
            for si, sp in enumerate(splits):
                Xtr, Xte = X[sp.train], X[sp.test]

                def record(**kw) -> ResultRecord:
                    return ResultRecord(
                        provenance=provenance, feature=sp.feature, site=site, layer=layer,
                        aggregation=built.card.aggregation, basis=basis, seed=sp.seed,
                        n_train=len(sp.train), n_test=len(sp.test), n_train_pos=int(sp.y_train.sum()),
                        n_test_pos=int(sp.y_test.sum()), **kw)

                if controls:
                    yield record(**_single_unit_fields(Xtr, sp.y_train, Xte, sp.y_test))
                for mi, method in enumerate(cfg.methods):
                    def sweep(Xa, ya, Xb, yb, dense: bool):
                        return sweep_feature(Xa, ya, Xb, yb, method=selectors[method], k_grid=cfg.k_grid,
                                             dense=dense, C=cfg.C, max_iter=cfg.max_iter, seed=sp.seed)

                    points = sweep(Xtr, sp.y_train, Xte, sp.y_test, cfg.dense and mi == 0)
                    shuffled, rotated, token_f1 = {}, {}, None
                    if controls:
                        y_sh_tr, y_sh_te, token_f1 = split_controls[si]
                        shuffled = {p.k: p.metrics["f1"] for p in sweep(Xtr, y_sh_tr, Xte, y_sh_te, False)}
                        rotated = {p.k: p.metrics["f1"] for p in sweep(X_rot[sp.train], sp.y_train, X_rot[sp.test],
                                                                       sp.y_test, False)}
                    for p in points:
                        ctrl = None
                        if controls:
                            sh = shuffled.get(p.k) if p.method != "dense" else None
                            ctrl = Controls(shuffled_f1=sh, rotation_f1=rotated.get(p.k) if p.method != "dense" else None,
                                            selectivity=None if sh is None else float(p.metrics["f1"]) - sh,
                                            token_identity_f1=token_f1)
                        yield record(
                            method="dense" if p.method == "dense" else method,
                            method_params=selectors[method].get_params() if p.method != "dense" else {},
                            k=p.k, metrics=p.metrics, units=[int(u) for u in p.units],
                            coef=[float(c) for c in p.coef], intercept=float(p.intercept),
                            wall_time_s=float(p.wall_time_s), controls=ctrl, solver=p.solver, train_f1=p.train_f1)


ROTATION_SEED = 0  # one random rotation per layer width, the same for every feature, layer and seed


def _split_controls(built: BuiltDataset, rows: dict[str, np.ndarray],
                    splits: Sequence[FeatureSplit]) -> list[tuple[np.ndarray, np.ndarray, float | None]]:
    """Per split: control-task labels (train, test) and the token-identity F1."""
    groups = np.asarray(built.dataset["group"])[rows["example"]]
    tokens = rows["token"] if built.card.aggregation in TOKEN_AGGREGATIONS else None
    out = []
    for sp in splits:
        y_tr, y_te = grouped_shuffle(sp.y_train, sp.y_test, groups[sp.train], groups[sp.test], sp.seed)
        out.append((y_tr, y_te, token_identity_f1(tokens, sp.train, sp.y_train, sp.test, sp.y_test)))
    return out


def _single_unit_fields(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray) -> dict:
    """The `single_unit` record: every unit as a threshold classifier; units reaching MONO_F1, best first.

    Its metrics are those of the best single unit on test (a descriptive maximum, as in the paper's
    neuron counts, not a held-out estimate).
    """
    f1, threshold, upward = single_unit_f1(Xtr, ytr, Xte, yte, return_rule=True)
    order = np.argsort(-f1, kind="stable")
    best = int(order[0])
    scores = (Xte[:, best] - threshold[best]) * (1.0 if upward[best] else -1.0)
    mono = [int(u) for u in order if f1[u] >= MONO_F1]
    return dict(method="single_unit", k=1, metrics=binary_metrics(yte, scores > 0, scores),
                method_params={"min_f1": MONO_F1, "n_units": len(mono), "rule": "best train-F1 threshold",
                               "unit_f1": [round(float(f1[u]), 6) for u in (mono or [best])]},
                units=mono or [best], intercept=float(-threshold[best]))
