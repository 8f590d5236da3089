"""Probe one stored regression dataset: site x layer x basis x seed x method x k -> ResultRecords.

The regression counterpart of probebank.probing.evaluate (which hands regression cards here).
Each seed's split is grouped and stratified on value bins (probebank.data.values); each method
is ranked once per split on the training rows by its regression twin, then ridge is fitted at
every k (probebank.probing.regression), plus the dense ridge baseline. A record's `feature` is the
card's name for the value, `metrics` are RegressionMetrics (R2, Spearman, Pearson, RMSE, train R2)
and, with controls on, `controls` are RegressionControls: the shuffled-value R2 (values permuted
as probebank.probing.controls.grouped_shuffle does for labels) and selectivity, the R2 on a random
rotation of the layer, and the R2 of the token id alone (each token's mean training value). There
is no `single_unit` record: its F1 >= 0.9 threshold has no regression meaning.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from tqdm.auto import tqdm

from probebank.data.examples import BuiltDataset
from probebank.data.values import ValueSplit, categorical_shortcut_r2, value_splits
from probebank.probing.controls import ROTATION_SEED, TOKEN_AGGREGATIONS, grouped_shuffle, random_rotation
from probebank.probing.newton import BLAS_THREADS, blas_limit
from probebank.probing.problem import Encoder, StoredRows, column_scaling
from probebank.probing.regression import (
    DENSE_ALPHAS,
    check_xy_values,
    fit_ridge,
    regression_metrics,
    regression_selector,
)
from probebank.probing.schema import ProbeConfig, Provenance, RegressionControls, RegressionMetrics, ResultRecord
from probebank.probing.selection import Selector, method_params


@dataclass
class ValuePoint:
    """One ridge probe of a k sweep (method "dense": every unit, units and coef left empty)."""

    method: str
    k: int
    units: list[int]
    coef: list[float]
    intercept: float
    alpha: float
    metrics: dict[str, float | None]
    wall_time_s: float


def ridge_alpha(cfg: ProbeConfig) -> float:
    """The sparse probes' ridge alpha: 1 / C, the L2 strength the logistic probes use."""
    return 1.0 / cfg.C


def sweep_values(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
                 selector: Selector, k_grid: Sequence[int], dense: bool = True, alpha: float = 1.0,
                 seed: int = 0, name: str = "") -> list[ValuePoint]:
    """Ridge at every k of the grid (k < width) on the units `selector` ranks, plus the dense ridge baseline."""
    t0 = time.perf_counter()
    X_train, ytr = check_xy_values(X_train, y_train)
    yte = np.asarray(y_test, dtype=np.float64)
    d = X_train.shape[1]
    ks = sorted({int(k) for k in k_grid if 1 <= int(k) < d})
    points: list[ValuePoint] = []
    with blas_limit(BLAS_THREADS):
        supports = clone(selector).set_params(ks=ks, random_state=seed).fit(X_train, ytr).supports_ if ks else {}
        common = time.perf_counter() - t0
        for k in ks:
            t1 = time.perf_counter()
            units = np.asarray(supports[k], dtype=np.int64)
            mean, scale = column_scaling(X_train[:, units])
            Ztr = (X_train[:, units] - mean) / scale
            w, b, a = fit_ridge(Ztr, ytr, [alpha])
            m = regression_metrics(yte, ((X_test[:, units] - mean) / scale) @ w + b)
            m["train_r2"] = regression_metrics(ytr, Ztr @ w + b)["r2"]
            points.append(ValuePoint(name, k, units.tolist(), w.tolist(), b, a, m, time.perf_counter() - t1))
        if dense:
            t1 = time.perf_counter()
            mean, scale = column_scaling(X_train)
            Ztr = (X_train - mean) / scale
            w, b, a = fit_ridge(Ztr, ytr, DENSE_ALPHAS)
            m = regression_metrics(yte, ((X_test - mean) / scale) @ w + b)
            m["train_r2"] = regression_metrics(ytr, Ztr @ w + b)["r2"]
            points.append(ValuePoint("dense", d, [], [], b, a, m, time.perf_counter() - t1))
    for pt in points:
        pt.wall_time_s += common / max(len(points), 1)
    return points


def regression_methods(selectors: Mapping[str, Selector]) -> tuple[dict[str, Selector], dict[str, str]]:
    """({label: regression selector}, {label: why it is skipped}) for a run's methods."""
    usable: dict[str, Selector] = {}
    skipped: dict[str, str] = {}
    for label, sel in selectors.items():
        twin = regression_selector(sel)
        if isinstance(twin, str):
            skipped[label] = twin
        else:
            usable[label] = twin
    return usable, skipped


def token_identity_r2(tokens: np.ndarray | None, sp: ValueSplit) -> float | None:
    """R2 of predicting each test row by its token's mean training value; None when rows have no single token."""
    if tokens is None:
        return None
    return categorical_shortcut_r2(tokens[sp.train].tolist(), sp.y_train, tokens[sp.test].tolist(), sp.y_test)


def _r2(points: list[ValuePoint]) -> dict[int, float]:
    return {p.k: float(p.metrics["r2"] or 0.0) for p in points if p.method != "dense"}


def evaluate_values(store: StoredRows, built: BuiltDataset, provenance: Provenance, cfg: ProbeConfig,
                    sites: Sequence[str], layers: Sequence[int], *, selectors: Mapping[str, Selector],
                    progress: bool = True,
                    encoders: Mapping[str, Encoder] | None = None,
                    controls: bool = False) -> Iterator[ResultRecord]:
    """Yield the records of one regression dataset, layer by layer (methods without a twin are left out:
    `regression_methods` says why)."""
    rows = store.rows()
    splits = value_splits(built, rows, seeds=cfg.seeds, min_rows=cfg.min_rows_per_class)
    methods, _ = regression_methods(selectors)
    encoders = dict(encoders or {"identity": lambda site, layer, X: X})
    groups = np.asarray(built.dataset["group"])[rows["example"]]
    tokens = rows["token"] if built.card.aggregation in TOKEN_AGGREGATIONS else None
    shuffled = [grouped_shuffle(sp.y_train, sp.y_test, groups[sp.train], groups[sp.test], sp.seed)
                for sp in splits] if controls else []
    token_r2 = [token_identity_r2(tokens, sp) for sp in splits] if controls else []
    aggregation = built.card.aggregation
    jobs = [(site, layer) for site in sites for layer in layers]
    for site, layer in tqdm(jobs, desc=f"probe {built.name}", unit="layer", disable=not progress, leave=False):
        X_layer = np.asarray(store.layer(site, layer), dtype=np.float32)
        for basis, encode in encoders.items():
            X = np.asarray(encode(site, layer, X_layer), dtype=np.float32)
            X_rot = random_rotation(X, ROTATION_SEED) if controls else None
            for si, sp in enumerate(splits):
                shared = dict(provenance=provenance, feature=sp.feature, site=site, layer=layer,
                              aggregation=aggregation, basis=basis, seed=sp.seed, n_train=len(sp.train),
                              n_test=len(sp.test), n_train_pos=0, n_test_pos=0)
                for mi, (label, selector) in enumerate(methods.items()):
                    yield from _method_records(X, X_rot, sp, label, selector, cfg, cfg.dense and mi == 0,
                                               shuffled[si] if controls else None,
                                               token_r2[si] if controls else None, shared)


def _method_records(X: np.ndarray, X_rot: np.ndarray | None, sp: ValueSplit, label: str, selector: Selector,
                    cfg: ProbeConfig, dense: bool, shuffled: tuple[np.ndarray, np.ndarray] | None,
                    token_r2: float | None, shared: dict[str, Any]) -> Iterator[ResultRecord]:
    """One method's sweep on one split (and its control sweeps when `shuffled` is given) as records."""
    alpha = ridge_alpha(cfg)

    def sweep(Xs: np.ndarray, y_tr: np.ndarray, y_te: np.ndarray, with_dense: bool) -> list[ValuePoint]:
        return sweep_values(Xs[sp.train], y_tr, Xs[sp.test], y_te, selector=selector, k_grid=cfg.k_grid,
                            dense=with_dense, alpha=alpha, seed=sp.seed, name=label)

    points = sweep(X, sp.y_train, sp.y_test, dense)
    sh_r2 = _r2(sweep(X, *shuffled, False)) if shuffled is not None else {}
    rot_r2 = _r2(sweep(X_rot, sp.y_train, sp.y_test, False)) if shuffled is not None and X_rot is not None else {}
    params = method_params(selector)
    for p in points:
        is_dense = p.method == "dense"
        ctrl = None
        if shuffled is not None:
            sh = None if is_dense else sh_r2.get(p.k)
            ctrl = RegressionControls(shuffled_r2=sh, rotation_r2=None if is_dense else rot_r2.get(p.k),
                                      selectivity=None if sh is None else float(p.metrics["r2"] or 0.0) - sh,
                                      token_identity_r2=token_r2)
        yield ResultRecord(**shared, method=p.method,
                           method_params={"alpha": p.alpha} if is_dense else {**params, "alpha": p.alpha, "probe": "ridge"},
                           k=p.k, metrics=RegressionMetrics.model_validate(p.metrics), units=p.units, coef=p.coef,
                           intercept=p.intercept, wall_time_s=p.wall_time_s, controls=ctrl)
