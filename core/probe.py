"""Probes: a k-sparse logistic regression on selected units, the dense baseline, and k sweeps.

All probes fit the same model as
    Pipeline([StandardScaler(), LogisticRegression(C=C, class_weight="balanced")])
on the selected columns: minimise C * sum_i w_i * logloss_i + ||coef||^2 / 2 (intercept
unpenalised, w_i = n / (2 n_class)). Coefficients are therefore per standard deviation of
each unit, comparable across units. Instead of sklearn's lbfgs we solve it with a damped
Newton method (`fit_logistic`), which reaches the same unique optimum in a handful of
iterations: the Hessian is (k+1)^2 for k <= n rows, and wider problems (the dense baseline
on a 1536-unit layer with ~600 rows) are solved in the span of the rows through the n x n
Gram matrix (Woodbury), so no d x d matrix is ever formed. tests/test_probe.py checks the
solutions against sklearn's; bench/probe.py measures the speed.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import linalg
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

from .metrics import binary_metrics
from .schema import SolverReport
from .select import (BUILTIN_SELECTORS, Selector, balanced_sample_weight, check_xy, column_scaling,
                     get_selector)

__all__ = ["fit_logistic", "SparseProbe", "DenseProbe", "SweepPoint", "sweep_feature"]


# ---------------------------------------------------------------- the solver

# Probing problems are small (hundreds of rows, <= a few thousand units): on the 2-core
# machines we target, 2 BLAS threads made the Cholesky steps ~5x slower than 1 (numpy and
# scipy each ship an OpenBLAS whose idle threads spin against each other). Fits therefore
# run with 1 BLAS thread; parallelise over features / layers (processes) instead.
BLAS_THREADS: int | None = 1
_controller: ThreadpoolController | None = None


def _blas_limit(n_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS threads for the duration of a fit (None = leave them alone)."""
    global _controller
    if n_threads is None:
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()  # scans loaded libraries once (~ms)
    return _controller.limit(limits=n_threads, user_api="blas")


def _objective(f: np.ndarray, w: np.ndarray, y: np.ndarray, cw: np.ndarray) -> float:
    # sum_i cw_i * (log(1 + e^f) - y f) + ||w||^2 / 2, stable for large |f|
    return float(np.dot(cw, np.logaddexp(0.0, f) - y * f) + 0.5 * np.dot(w, w))


def fit_logistic(Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, C: float = 1.0, *,
                 coef_init: np.ndarray | None = None, intercept_init: float = 0.0,
                 max_iter: int = 100, tol: float = 1e-10) -> tuple[np.ndarray, float, int, bool]:
    """L2 logistic regression by damped Newton: returns (coef, intercept, n_iter, converged).

    Minimises F = C * sum_i sw_i * logloss(y_i, Z_i coef + b) + ||coef||^2 / 2 (sklearn's
    objective, intercept unpenalised). Stops after a step whose Newton decrement
    lambda^2 / 2 (the predicted gap to the optimum) was at most tol * F; Newton converges
    quadratically, so the gap after that step is far smaller still. (A gradient test
    relative to C * n, like sklearn's, is loose for large C, where F is mostly the penalty.)
    If rounding stalls the line search first, the fit counts as converged when
    |gradient| <= 1e-6 * C * sum(sw) (sklearn's lbfgs default is 1e-4).

    Problems wider than tall (k > n rows, e.g. the dense probe) are solved in the span of
    the rows (coef = Z' a), where every step costs O(n^2) instead of O(n k); they always
    start from zero (coef_init is ignored there; the optimum is unique anyway).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, k = Z.shape
    yf = np.asarray(y, dtype=np.float64)
    cw = C * np.asarray(sample_weight, dtype=np.float64)
    gtol = 1e-6 * float(cw.sum())
    if k > n:
        return _newton_kernel(Z, yf, cw, tol, gtol, max_iter)
    w = np.zeros(k) if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = float(intercept_init)
    # The Hessian is formed in float32 when it is big enough to matter: an inexact Hessian
    # only changes the search direction; gradient, objective and line search are float64.
    Zs = Z.astype(np.float32) if k >= 64 else Z
    f = Z @ w + b
    F = _objective(f, w, yf, cw)
    converged = False
    steps = 0
    diag = np.arange(k)
    while steps < max_iter:
        p = expit(f)
        r = cw * (p - yf)
        gw = Z.T @ r + w
        gb = float(r.sum())
        gnorm = max(float(np.abs(gw).max(initial=0.0)), abs(gb))
        if gnorm == 0.0:
            converged = True
            break
        h = cw * p * (1.0 - p)
        Zh = Zs * h.astype(Zs.dtype)[:, None]
        A = np.empty((k + 1, k + 1))
        A[:k, :k] = Zs.T @ Zh
        A[diag, diag] += 1.0
        A[:k, k] = A[k, :k] = Zh.sum(axis=0, dtype=np.float64)
        A[k, k] = float(h.sum()) + 1e-12 * float(cw.sum())  # jitter: all rows may be saturated
        try:
            step = np.linalg.solve(A, -np.append(gw, gb))
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(A, -np.append(gw, gb), rcond=None)[0]
        dw, db = step[:k], float(step[k])
        df = Z @ dw + db
        slope = float(gw @ dw) + gb * db  # = -lambda^2
        if not slope < 0:  # no descent direction: rounding dominates
            converged = gnorm <= gtol
            break
        t = 1.0
        while True:  # Armijo backtracking
            f_new = f + t * df
            w_new = w + t * dw
            F_new = _objective(f_new, w_new, yf, cw)
            if F_new <= F + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if t < 1e-10:  # no decrease measurable in float64: at the rounding floor
            converged = gnorm <= gtol
            break
        w, b, f, F_old, F = w_new, b + t * db, f_new, F, F_new
        steps += 1
        if -slope / 2.0 <= tol * F_old:
            converged = True
            break
    return w, b, steps, converged


def _newton_kernel(Z: np.ndarray, yf: np.ndarray, cw: np.ndarray, tol: float, gtol: float,
                   max_iter: int) -> tuple[np.ndarray, float, int, bool]:
    """Newton for k > n in the row span: coef = Z' a, scores f = K a + b with K = Z Z'.

    Starting from zero, every Newton iterate stays in the row span (the gradient Z'(r + a)
    does, and the Hessian maps the span to itself), so this is the same path as the primal
    Newton method. The primal Hessian [[Z'DZ + I, u], [u', sum h]] (u = Z'h) is inverted by
    Woodbury: (I + Z'DZ)^-1 Z'v = Z'(v - S M^-1 S K v), S = sqrt(D), M = I + S K S, n x n.
    M is factored in float32 (a direction only; float64 when that is too coarse, at large
    C); K stays float64 so f = K a + b is exact.
    """
    n = Z.shape[0]
    K = Z @ Z.T
    diag = np.arange(n)
    a = np.zeros(n)
    Ka = np.zeros(n)
    b = 0.0
    f = np.zeros(n)
    F = float(np.dot(cw, np.logaddexp(0.0, f) - yf * f))
    converged = False
    steps = 0
    while steps < max_iter:
        p = expit(f)
        r = cw * (p - yf)
        ra = r + a  # gradient in coef space is Z' ra
        Kra = K @ ra
        gb = float(r.sum())
        gnorm = max(float(np.sqrt(max(float(ra @ Kra), 0.0))), abs(gb))  # ||Z' ra||_2 >= max-norm
        if gnorm == 0.0:
            converged = True
            break
        h = cw * p * (1.0 - p)
        hbb = float(h.sum()) + 1e-12 * float(cw.sum())
        s = np.sqrt(h)
        Kh = K @ h
        for dtype in (np.float32, np.float64):
            try:
                M = K.astype(dtype)
                M *= s.astype(dtype)[:, None]
                M *= s.astype(dtype)[None, :]
                M[diag, diag] += 1.0
                cho = linalg.cho_factor(M, lower=True, check_finite=False)
            except linalg.LinAlgError:
                continue
            rhs = (s[:, None] * np.column_stack([Kra, Kh])).astype(dtype)
            c = np.column_stack([ra, h]) - s[:, None] * linalg.cho_solve(cho, rhs, check_finite=False)
            # (I + Z'DZ)^-1 gradient = Z' c0 and (I + Z'DZ)^-1 u = Z' c1; u' Z' c = Kh . c
            db = (-gb + float(Kh @ c[:, 0])) / (hbb - float(Kh @ c[:, 1]))
            da = -c[:, 0] - db * c[:, 1]
            slope = float(Kra @ da) + gb * db  # = -lambda^2
            if slope < 0:
                break
        else:  # no descent direction even in float64: rounding dominates
            converged = gnorm <= gtol
            break
        Kda = K @ da
        t = 1.0
        while True:  # Armijo backtracking; penalty ||coef||^2 / 2 = a' K a / 2
            a_new = a + t * da
            Ka_new = Ka + t * Kda
            b_new = b + t * db
            f_new = Ka_new + b_new
            F_new = float(np.dot(cw, np.logaddexp(0.0, f_new) - yf * f_new)) + 0.5 * float(a_new @ Ka_new)
            if F_new <= F + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if t < 1e-10:
            converged = gnorm <= gtol
            break
        a, Ka, b, f, F_old, F = a_new, Ka_new, b_new, f_new, F, F_new
        steps += 1
        if -slope / 2.0 <= tol * F_old:
            converged = True
            break
    return Z.T @ a, b, steps, converged


def _fit_std(Z: np.ndarray, yb: np.ndarray, sw: np.ndarray, C: float, max_iter: int) -> tuple[np.ndarray, float, int]:
    w, b, n_iter, ok = fit_logistic(Z, yb, sw, C, max_iter=max_iter)
    if not ok:
        warnings.warn(f"logistic regression did not converge in {max_iter} Newton iterations "
                      f"({Z.shape[1]} units, C={C})", ConvergenceWarning, stacklevel=3)
    return w, b, n_iter


# ---------------------------------------------------------------- estimators

class _LinearProbe(ClassifierMixin, BaseEstimator):
    """Shared predict side: standardise the selected columns, then a linear score."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # one-vs-rest is the caller's job
        return tags

    def _prepare_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(f"Only binary classification is supported: {type(self).__name__} got "
                             f"{self.classes_.size} class(es) (use one-vs-rest labels for multiclass features)")
        return X, y == self.classes_[1]

    def _fit_units(self, X: np.ndarray, yb: np.ndarray, units: np.ndarray) -> None:
        if not float(self.C) > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        self.selected_units_ = np.asarray(units, dtype=np.int64)
        Xs = X[:, self.selected_units_]
        self.scaler_mean_, self.scaler_scale_ = column_scaling(Xs)
        Z = (Xs - self.scaler_mean_) / self.scaler_scale_
        with _blas_limit(BLAS_THREADS):
            w, b, n_iter = _fit_std(Z, yb, balanced_sample_weight(yb), float(self.C), int(self.max_iter))
        self.coef_ = w[None, :]
        self.intercept_ = np.array([b])
        self.n_iter_ = np.array([n_iter], dtype=np.int32)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the positive class (classes_[1])."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Z = (X[:, self.selected_units_] - self.scaler_mean_) / self.scaler_scale_
        return Z @ self.coef_[0] + self.intercept_[0]

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]

    def predict_proba(self, X: Any) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))


class SparseProbe(_LinearProbe):
    """Select k units with `method`, then a balanced L2 logistic regression on them.

    Parameters: k (capped at the number of units), method (registry name or a Selector),
    C, max_iter (Newton iterations), random_state (seed of the selection; None means 0,
    probebank runs are always seeded), method_params (keyword arguments for the selector). After fit: selected_units_ (best first), coef_
    (1, k) per standardised unit, intercept_ (1,), classes_, n_iter_, scaler_mean_ and
    scaler_scale_ (of the selected units). decision_function(X) takes all units of X.
    """

    def __init__(self, k: int = 1, method: str | Selector = "mean_diff", C: float = 1.0, max_iter: int = 1000,
                 random_state: int | None = 0, method_params: dict[str, Any] | None = None) -> None:
        self.k = k
        self.method = method
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.method_params = method_params

    def fit(self, X: Any, y: Any) -> "SparseProbe":
        X, yb = self._prepare_fit(X, y)
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        k = min(int(self.k), X.shape[1])
        selector = get_selector(self.method, **(self.method_params or {}))
        seed = 0 if self.random_state is None else int(self.random_state)
        units = selector.supports(X, yb, [k], seed)[k]
        self._fit_units(X, yb, units)
        return self


class DenseProbe(_LinearProbe):
    """The L2 baseline: balanced logistic regression on every (standardised) unit."""

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> "DenseProbe":
        X, yb = self._prepare_fit(X, y)
        self._fit_units(X, yb, np.arange(X.shape[1]))
        return self


# ---------------------------------------------------------------- the k sweep

@dataclass
class SweepPoint:
    """One probe of a k sweep. coef is per standardised unit, in the order of units.

    The dense baseline has method="dense", k = number of units, units = [] and coef = [].
    wall_time_s is this point's fit + scoring plus an equal share of the sweep's common
    work (validation, selection, standardisation), so the points sum to the sweep's time.
    solver is the selector's SolverReport for this k when it has one (`reports_`, e.g. milp).
    train_f1 is the same probe's F1 on its own training rows: a score for choosing a layer that
    never looks at the test rows.
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


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Binary F1 (0 when there is no true or predicted positive)."""
    tp = float(np.sum(y & pred))
    denom = float(np.sum(y) + np.sum(pred))
    return 2.0 * tp / denom if denom else 0.0


def _method_name(method: str | Selector) -> str:
    if isinstance(method, str):
        return method
    for name, cls in BUILTIN_SELECTORS.items():
        if type(method) is cls:
            return name
    return type(method).__name__


def sweep_feature(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
                  method: str | Selector, k_grid: Sequence[int], dense: bool = True, C: float = 1.0,
                  max_iter: int = 1000, seed: int = 0, method_params: dict[str, Any] | None = None,
                  n_threads: int | None = BLAS_THREADS) -> list[SweepPoint]:
    """Probe one binary feature at every k of the grid (k < width), plus the dense baseline.

    Ranks once, standardises once, and warm-starts each k from the previous solution
    (Newton converges to the same optimum; it saves ~20% of the iterations).
    y is binary 0/1 (1 = feature present). Points come in ascending k, dense last.
    method_params go to the selector when `method` is a name; n_threads limits BLAS
    threads during the sweep (None = leave as is).
    """
    with _blas_limit(n_threads):
        return _sweep(X_train, y_train, X_test, y_test, method=method, k_grid=k_grid, dense=dense, C=C,
                      max_iter=max_iter, seed=seed, method_params=method_params)


def _sweep(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
           method: str | Selector, k_grid: Sequence[int], dense: bool, C: float, max_iter: int, seed: int,
           method_params: dict[str, Any] | None) -> list[SweepPoint]:
    t0 = time.perf_counter()
    X_train, ytr = check_xy(X_train, y_train)
    if not dense and not any(1 <= int(k) < X_train.shape[1] for k in k_grid):
        return []
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    X_test = np.asarray(X_test)
    yte = np.asarray(y_test)
    if X_test.ndim != 2 or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test must have {X_train.shape[1]} columns like X_train, got shape {X_test.shape}")
    if yte.shape != (X_test.shape[0],):
        raise ValueError("y_test must hold one label per row of X_test")
    if not np.isfinite(X_test).all():
        raise ValueError("X_test contains NaN or inf")
    if yte.dtype != bool:
        if not np.isin(yte, (0, 1)).all():
            raise ValueError("y_test must be binary 0/1")
        yte = yte.astype(bool)
    d = X_train.shape[1]
    ks = sorted({int(k) for k in k_grid if 1 <= int(k) < d})
    name = _method_name(method)
    sw = balanced_sample_weight(ytr)
    supports = {}
    reports: dict[int, SolverReport] = {}
    if ks:
        selector = get_selector(method, **(method_params or {}))
        supports = selector.supports(X_train, ytr, ks, seed)
        reports = dict(getattr(selector, "reports_", None) or {})
    # Standardise once: every column for the dense probe, else only the selected ones.
    if dense:
        mean, scale = column_scaling(X_train)
        Ztr = (X_train - mean) / scale
        Zte = (X_test - mean) / scale
    else:
        cols = np.unique(np.concatenate([supports[k] for k in ks]))
        mean, scale = column_scaling(X_train[:, cols])
        Ztr = np.empty((X_train.shape[0], d))
        Zte = np.empty((X_test.shape[0], d))
        Ztr[:, cols] = (X_train[:, cols] - mean) / scale
        Zte[:, cols] = (X_test[:, cols] - mean) / scale
    common = time.perf_counter() - t0

    points: list[SweepPoint] = []
    unconverged: list[int] = []
    full_w = np.zeros(d)  # previous solution, by unit, for warm starts
    b = 0.0
    for k in ks:
        t1 = time.perf_counter()
        units = supports[k]
        Zk = Ztr[:, units]  # one copy of the selected columns, for the fit and the train F1
        w, b, _, ok = fit_logistic(Zk, ytr, sw, C, coef_init=full_w[units], intercept_init=b, max_iter=max_iter)
        full_w[:] = 0.0
        full_w[units] = w
        scores = Zte[:, units] @ w + b
        m = binary_metrics(yte, scores > 0, scores)
        points.append(SweepPoint(name, k, units.tolist(), w.tolist(), float(b), m, time.perf_counter() - t1,
                                 solver=reports.get(k), train_f1=_f1(ytr, Zk @ w + b > 0)))
        if not ok:
            unconverged.append(k)
    if dense:
        t1 = time.perf_counter()
        # Cold start, like DenseProbe, so both give identical results (a warm start from the
        # k=256 solution saved no iterations in the primal solver).
        w, b, _, ok = fit_logistic(Ztr, ytr, sw, C, max_iter=max_iter)
        scores = Zte @ w + b
        m = binary_metrics(yte, scores > 0, scores)
        points.append(SweepPoint("dense", d, [], [], float(b), m, time.perf_counter() - t1,
                                 train_f1=_f1(ytr, Ztr @ w + b > 0)))
        if not ok:
            unconverged.append(d)
    if unconverged:
        warnings.warn(f"logistic regression did not converge in {max_iter} Newton iterations at k={unconverged}",
                      ConvergenceWarning, stacklevel=2)
    for pt in points:
        pt.wall_time_s += common / len(points)
    return points
