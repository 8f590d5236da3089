"""The k sweep: one feature probed at every k of the grid (ranked once, standardised once, warm-started), plus the dense baseline.

sweep_features does the same for several label vectors on the same rows (the one-vs-rest
features of one split): the checks, the standardisation and the dense probe's Gram matrix are
shared, and every vector gets the points sweep_feature would give it alone. The dense probe's C
is chosen on an inner split of the training rows (probebank.probing.dense).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from probebank.metrics import binary_metrics, f1_score
from probebank.probing.batched import MAX_BATCH_WIDTH, fit_nested
from probebank.probing.dense import InnerSplit, check_C_grid, fit_dense, row_split
from probebank.probing.methods import get_selector, method_name
from probebank.probing.newton import BLAS_THREADS, blas_limit, fit_logistic, gram_matrix
from probebank.probing.problem import balanced_sample_weight, check_xy, column_scaling
from probebank.probing.schema import DEFAULT_DENSE_C_GRID, DenseFit, SolverReport
from probebank.probing.selection import Selector


@dataclass
class SweepPoint:
    """One probe of a k sweep. coef is per standardised unit, in the order of units.

    The dense baseline has method="dense", k = number of units, units = [] and coef = [].
    wall_time_s is this point's fit + scoring plus an equal share of the sweep's common
    work (validation, selection, standardisation), so the points sum to the sweep's time.
    solver is the selector's SolverReport for this k when it has one (`reports_`, e.g. milp).
    train_f1 is the same probe's F1 on its own training rows: a score for choosing a layer that
    never looks at the test rows. dense_fit (dense only) says which C was chosen, from which grid, how.
    """

    method: str
    k: int
    units: list[int]
    coef: list[float]
    intercept: float
    metrics: dict[str, float | None]
    wall_time_s: float
    solver: SolverReport | None = None  # the certificate, for exact selectors (e.g. milp)
    train_f1: float | None = None
    dense_fit: DenseFit | None = None


def sweep_feature(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
                  method: str | Selector, k_grid: Sequence[int], dense: bool = True, C: float = 1.0,
                  max_iter: int = 1000, seed: int = 0, method_params: dict[str, Any] | None = None,
                  n_threads: int | None = BLAS_THREADS, dense_C_grid: Sequence[float] = DEFAULT_DENSE_C_GRID,
                  dense_split: InnerSplit | None = None) -> list[SweepPoint]:
    """Probe one binary feature at every k of the grid (k < width), plus the dense baseline.

    Ranks once, standardises once, fits the small k's of a nested ranking together
    (probebank.probing.batched) and warm-starts each larger k from the previous solution
    (Newton converges to the same optimum either way).
    y is binary 0/1 (1 = feature present). Points come in ascending k, dense last.
    method_params go to the selector when `method` is a name; n_threads limits BLAS
    threads during the sweep (None = leave as is).
    C is the top-k probes'; the dense probe's is chosen from dense_C_grid on dense_split, (inner-train,
    validation) positions into the training rows (probebank.probing.evaluate passes its validation
    split; None: a stratified split of the rows seeded by `seed`), see probebank.probing.dense.
    """
    return sweep_features(X_train, [y_train], X_test, [y_test], method=method, k_grid=k_grid, dense=dense, C=C,
                          max_iter=max_iter, seed=seed, method_params=method_params, n_threads=n_threads,
                          dense_C_grid=dense_C_grid, dense_splits=[dense_split])[0]


def sweep_features(X_train: np.ndarray, y_train: Sequence[np.ndarray], X_test: np.ndarray,
                   y_test: Sequence[np.ndarray], *, method: str | Selector, k_grid: Sequence[int], dense: bool = True,
                   C: float = 1.0, max_iter: int = 1000, seed: int = 0, method_params: dict[str, Any] | None = None,
                   n_threads: int | None = BLAS_THREADS, dense_C_grid: Sequence[float] = DEFAULT_DENSE_C_GRID,
                   dense_splits: Sequence[InnerSplit | None] | None = None) -> list[list[SweepPoint]]:
    """sweep_feature for several label vectors on the same rows (e.g. every one-vs-rest feature of one split).

    What only depends on the rows is done once for all of them: the checks, the
    standardisation, and the dense probe's Gram matrix (its dominant cost). Returns one list
    of points per label vector, each equal to sweep_feature's for that vector alone. dense_splits: one
    inner split (or None) per label vector, as sweep_feature's dense_split.
    """
    with blas_limit(n_threads):
        return _sweep(X_train, y_train, X_test, y_test, method=method, k_grid=k_grid, dense=dense, C=C,
                      max_iter=max_iter, seed=seed, method_params=method_params, dense_C_grid=dense_C_grid,
                      dense_splits=dense_splits)


def _check_test(X_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X_test = np.asarray(X_test)
    yte = np.asarray(y_test)
    if X_test.ndim != 2 or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test must have {X_train.shape[1]} columns like X_train, got shape {X_test.shape}")
    if yte.shape != (X_test.shape[0],):
        raise ValueError("y_test must hold one label per row of X_test")
    if yte.dtype != bool:
        if not np.isin(yte, (0, 1)).all():
            raise ValueError("y_test must be binary 0/1")
        yte = yte.astype(bool)
    return X_test, yte


def _sweep(X_train: np.ndarray, y_train: Sequence[np.ndarray], X_test: np.ndarray, y_test: Sequence[np.ndarray], *,
           method: str | Selector, k_grid: Sequence[int], dense: bool, C: float, max_iter: int, seed: int,
           method_params: dict[str, Any] | None, dense_C_grid: Sequence[float],
           dense_splits: Sequence[InnerSplit | None] | None) -> list[list[SweepPoint]]:
    t0 = time.perf_counter()
    if len(y_train) != len(y_test):
        raise ValueError(f"{len(y_train)} training label vectors but {len(y_test)} test label vectors")
    if not len(y_train):
        return []
    X_train, _ = check_xy(X_train, y_train[0])
    ytrs = [check_xy(X_train[:, :1], y)[1] for y in y_train]
    d = X_train.shape[1]
    if not dense and not any(1 <= int(k) < d for k in k_grid):
        return [[] for _ in ytrs]
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    c_grid = check_C_grid(dense_C_grid)
    if dense_splits is not None and len(dense_splits) != len(ytrs):
        raise ValueError(f"{len(ytrs)} training label vectors but {len(dense_splits)} dense inner splits")
    tests = [_check_test(X_train, X_test, y) for y in y_test]
    X_test = tests[0][0]
    if not np.isfinite(X_test).all():
        raise ValueError("X_test contains NaN or inf")
    ytes = [yte for _, yte in tests]
    ks = sorted({int(k) for k in k_grid if 1 <= int(k) < d})
    name = method_name(method)
    supports: list[dict[int, np.ndarray]] = []
    reports: list[dict[int, SolverReport]] = []
    nested = False
    for ytr in ytrs:
        if ks:
            selector = get_selector(method, **(method_params or {})).set_params(ks=ks, random_state=seed)
            selector.fit(X_train, ytr)
            supports.append(selector.supports_)
            reports.append(dict(getattr(selector, "reports_", None) or {}))
            nested = type(selector).nested
        else:
            supports.append({})
            reports.append({})
    # Standardise once: every column for the dense probe, else only the selected ones.
    if dense:
        mean, scale = column_scaling(X_train)
        Ztr = (X_train - mean) / scale
        Zte = (X_test - mean) / scale
    else:
        cols = np.unique(np.concatenate([sup[k] for sup in supports for k in ks]))
        mean, scale = column_scaling(X_train[:, cols])
        Ztr = np.empty((X_train.shape[0], d))
        Zte = np.empty((X_test.shape[0], d))
        Ztr[:, cols] = (X_train[:, cols] - mean) / scale
        Zte[:, cols] = (X_test[:, cols] - mean) / scale
    common = time.perf_counter() - t0
    # shared by the features and by the inner fits that choose the dense C (a submatrix of it); its time
    # is the dense points' (as when fit_logistic forms it), not the common work of every k
    gram = gram_matrix(Ztr) if dense and d > Ztr.shape[0] and (len(ytrs) > 1 or len(c_grid) > 1) else None
    gram_share = (time.perf_counter() - t0 - common) / len(ytrs)

    out: list[list[SweepPoint]] = []
    for i, (ytr, yte) in enumerate(zip(ytrs, ytes)):
        t1 = time.perf_counter()
        sw = balanced_sample_weight(ytr)
        points, unconverged = _sparse_points(Ztr, Zte, ytr, yte, sw, ks, supports[i], reports[i], nested, name, C,
                                             max_iter)
        if dense:
            t2 = time.perf_counter()
            given = dense_splits[i] if dense_splits is not None else None
            split = given if given is not None else (row_split(ytr, seed) if len(c_grid) > 1 else None)
            # Cold start, like DenseProbe, so both give identical results at the chosen C (a warm start
            # from the k=256 solution, or from the inner fits, saved no iterations).
            w, b, ok, fit = fit_dense(Ztr, ytr, c_grid, split, "validation" if given is not None else "rows",
                                      max_iter=max_iter, gram=gram)
            scores = Zte @ w + b
            points.append(SweepPoint("dense", d, [], [], float(b), binary_metrics(yte, scores > 0, scores),
                                     time.perf_counter() - t2 + gram_share, train_f1=f1_score(ytr, Ztr @ w + b > 0),
                                     dense_fit=fit))
            if not ok:
                unconverged.append(d)
        if unconverged:
            warnings.warn(f"logistic regression did not converge in {max_iter} Newton iterations at k={unconverged}",
                          ConvergenceWarning, stacklevel=3)
        if points:
            # this feature's own selection and set-up, plus its share of the common work
            own = time.perf_counter() - t1 + (gram_share if dense else 0.0)  # with its share of the Gram
            shared = (own - sum(p.wall_time_s for p in points) + common / len(ytrs)) / len(points)
            for pt in points:
                pt.wall_time_s += shared
        out.append(points)
    return out


def _sparse_points(Ztr: np.ndarray, Zte: np.ndarray, ytr: np.ndarray, yte: np.ndarray, sw: np.ndarray,
                   ks: list[int], supports: dict[int, np.ndarray], reports: dict[int, SolverReport], nested: bool,
                   name: str, C: float, max_iter: int) -> tuple[list[SweepPoint], list[int]]:
    """The k-sparse probes of one feature, ascending k: the small k's of a nested ranking in one
    batch, each larger k warm-started from the previous solution."""
    points: list[SweepPoint] = []
    unconverged: list[int] = []
    full_w = np.zeros(Ztr.shape[1])  # previous solution, by unit, for warm starts
    b = 0.0
    small = [k for k in ks if k <= MAX_BATCH_WIDTH] if nested and len(ks) > 1 else []
    if small:
        t1 = time.perf_counter()
        top = supports[max(small)]
        W, B, _, done, f = fit_nested(Ztr[:, top], small, ytr, C * sw, max_iter=max_iter)
        S = Zte[:, top] @ W.T + B  # test scores, one column per k
        aucs = _roc_aucs(yte, S)
        share = (time.perf_counter() - t1) / len(small)
        for j, k in enumerate(small):
            t2 = time.perf_counter()
            w = W[j, :k]
            m = binary_metrics(yte, S[:, j] > 0, None)
            m["roc_auc"] = aucs[j]
            points.append(SweepPoint(name, k, supports[k].tolist(), w.tolist(), float(B[j]), m,
                                     share + time.perf_counter() - t2, solver=reports.get(k),
                                     train_f1=f1_score(ytr, f[j] > 0)))
            if not done[j]:
                unconverged.append(k)
        full_w[top[:small[-1]]] = W[-1, :small[-1]]
        b = float(B[-1])
    for k in ks[len(small):]:
        t1 = time.perf_counter()
        units = supports[k]
        Zk = Ztr[:, units]  # one copy of the selected columns, for the fit and the train F1
        w, b, _, ok = fit_logistic(Zk, ytr, sw, C, coef_init=full_w[units], intercept_init=b, max_iter=max_iter)
        full_w[:] = 0.0
        full_w[units] = w
        scores = Zte[:, units] @ w + b
        points.append(SweepPoint(name, k, units.tolist(), w.tolist(), float(b), binary_metrics(yte, scores > 0, scores),
                                 time.perf_counter() - t1, solver=reports.get(k), train_f1=f1_score(ytr, Zk @ w + b > 0)))
        if not ok:
            unconverged.append(k)
    return points, unconverged


def _roc_aucs(y: np.ndarray, S: np.ndarray) -> list[float | None]:
    """probebank.metrics.roc_auc of every column of S (one ranking call for all of them)."""
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return [None] * S.shape[1]
    from scipy.stats import rankdata

    ranks = rankdata(S, axis=0)  # average ranks for ties, as roc_auc
    u = ranks[y].sum(axis=0) - n_pos * (n_pos + 1) / 2.0
    return [float(v) for v in u / (n_pos * n_neg)]
