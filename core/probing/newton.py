"""The probe's solver: balanced L2 logistic regression by damped Newton.

Minimises C * sum_i w_i * logloss_i + ||coef||^2 / 2 (intercept unpenalised, w_i = n / (2 n_class)),
sklearn's objective, in a handful of iterations: the Hessian is (k+1)^2 for k <= n rows, and wider
problems (the dense baseline on a 1536-unit layer with ~600 rows) are solved in the span of the
rows through the n x n Gram matrix (Woodbury), so no d x d matrix is ever formed.
tests/test_probe.py checks the solutions against sklearn's; bench/probe.py measures the speed.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import numpy as np
from scipy import linalg
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

# Probing problems are small (hundreds of rows, <= a few thousand units): on the 2-core
# machines we target, 2 BLAS threads made the Cholesky steps ~5x slower than 1 (numpy and
# scipy each ship an OpenBLAS whose idle threads spin against each other). Fits therefore
# run with 1 BLAS thread; parallelise over features / layers (processes) instead.
BLAS_THREADS: int | None = 1


@functools.cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded libraries once (~ms)


def blas_limit(n_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS threads for the duration of a fit (None = leave them alone)."""
    if n_threads is None:
        return contextlib.nullcontext()
    return _threadpools().limit(limits=n_threads, user_api="blas")


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


def fit_standardised(Z: np.ndarray, yb: np.ndarray, sw: np.ndarray, C: float, max_iter: int) -> tuple[np.ndarray, float, int]:
    w, b, n_iter, ok = fit_logistic(Z, yb, sw, C, max_iter=max_iter)
    if not ok:
        warnings.warn(f"logistic regression did not converge in {max_iter} Newton iterations "
                      f"({Z.shape[1]} units, C={C})", ConvergenceWarning, stacklevel=3)
    return w, b, n_iter
