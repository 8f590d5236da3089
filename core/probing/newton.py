"""The probe's solver: balanced L2 logistic regression by damped Newton.

Minimises C * sum_i w_i * logloss_i + ||coef||^2 / 2 (intercept unpenalised, w_i = n / (2 n_class)),
sklearn's objective, in a handful of iterations: the Hessian is (k+1)^2 for k <= n rows, and wider
problems (the dense baseline on a 1536-unit layer with ~600 rows) are solved in the span of the
rows through the n x n Gram matrix (Woodbury), so no d x d matrix is ever formed. Big Hessians
and the Gram matrix are formed in float32 (they only steer the search direction) and a Cholesky
factor is reused while Newton converges fast; objective, gradient and line search stay float64.
The small probes of a k sweep are solved together by probebank.probing.batched; fit_logistic_dual
solves a wide problem from its Gram matrix alone, warm-started (the dense probe's C path,
probebank.probing.dense).
tests/test_probe.py and tests/test_sweep.py check the solutions against sklearn's;
bench/probe.py measures the speed.
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


# From this width the primal Hessian is formed in float32 (syrk) and its factor is reused
# while Newton converges fast (see _reuse_factor); below it forming the Hessian costs less
# than the Python around it, so every step gets a fresh one.
BIG_K = 64
ROUNDING = 1e3 * np.finfo(np.float64).eps  # a decrease below this fraction of F is rounding noise


def fit_logistic(Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, C: float = 1.0, *,
                 coef_init: np.ndarray | None = None, intercept_init: float = 0.0,
                 max_iter: int = 100, tol: float = 1e-10,
                 gram: np.ndarray | None = None) -> tuple[np.ndarray, float, int, bool]:
    """L2 logistic regression by damped Newton: returns (coef, intercept, n_iter, converged).

    Minimises F = C * sum_i sw_i * logloss(y_i, Z_i coef + b) + ||coef||^2 / 2 (sklearn's
    objective, intercept unpenalised). Stops after a step whose Newton decrement
    lambda^2 / 2 (the predicted gap to the optimum) was at most tol * F; Newton converges
    quadratically, so the gap after that step is far smaller still. (A gradient test
    relative to C * n, like sklearn's, is loose for large C, where F is mostly the penalty.)
    If rounding stalls the line search first, the fit counts as converged when
    |gradient| <= 1e-6 * C * sum(sw) (sklearn's lbfgs default is 1e-4); a step whose predicted
    decrease float64 cannot resolve in F is taken in full and ends the fit.

    From BIG_K units on, the Hessian is formed in float32 and its Cholesky factor is reused
    for the next step while the steps are full and the decrement falls at least tenfold
    (a simplified Newton step: the direction is inexact, gradient, objective and line search
    are not).

    Problems wider than tall (k > n rows, e.g. the dense probe) are solved in the span of
    the rows (coef = Z' a), where every step costs O(n^2) instead of O(n k); they always
    start from zero (coef_init is ignored there; the optimum is unique anyway). `gram` may
    give their Z Z' (as float32, e.g. shared by several label vectors on the same rows).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, k = Z.shape
    yf = np.asarray(y, dtype=np.float64)
    cw = C * np.asarray(sample_weight, dtype=np.float64)
    gtol = 1e-6 * float(cw.sum())
    if k > n:
        return _newton_kernel(Z, yf, cw, tol, gtol, max_iter, gram)
    w = np.zeros(k) if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = float(intercept_init)
    big = k >= BIG_K
    # An inexact Hessian only changes the search direction; gradient, objective and line search are float64.
    Zs = Z.astype(np.float32) if big else Z
    f = Z @ w + b
    F = _objective(f, w, yf, cw)
    converged = False
    steps = 0
    diag = np.arange(k)
    factor: Any = None  # the current Hessian's Cholesky factor (or None: form a fresh one)
    last_decrement = np.inf
    while steps < max_iter:
        p = expit(f)
        r = cw * (p - yf)
        gw = Z.T @ r + w
        gb = float(r.sum())
        gnorm = max(float(np.abs(gw).max(initial=0.0)), abs(gb))
        if gnorm == 0.0:
            converged = True
            break
        fresh = factor is None
        if fresh:
            h = cw * p * (1.0 - p)
            B = Zs * np.sqrt(h).astype(Zs.dtype)[:, None]
            A = np.empty((k + 1, k + 1))
            A[:k, :k] = B.T @ B  # Z' diag(h) Z (numpy computes B'B as one symmetric product)
            A[diag, diag] += 1.0
            A[:k, k] = A[k, :k] = (Zs * h.astype(Zs.dtype)[:, None]).sum(axis=0, dtype=np.float64)
            A[k, k] = float(h.sum()) + 1e-12 * float(cw.sum())  # jitter: all rows may be saturated
            factor = _factor(A)
        step = _solve(factor, -np.append(gw, gb))
        dw, db = step[:k], float(step[k])
        df = Z @ dw + db
        slope = float(gw @ dw) + gb * db  # = -lambda^2 (with a reused factor: its estimate)
        if not slope < 0:  # no descent direction: rounding dominates (or the reused factor is stale)
            if not fresh:
                factor = None
                continue
            converged = gnorm <= gtol
            break
        last = -slope <= ROUNDING * abs(F)  # float64 cannot see this decrease: take the full step
        t = 1.0
        while True:  # Armijo backtracking
            f_new = f + t * df
            w_new = w + t * dw
            F_new = _objective(f_new, w_new, yf, cw)
            if last or F_new <= F + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        if t < 1e-10:  # no decrease measurable in float64: at the rounding floor
            if not fresh:
                factor = None
                continue
            converged = gnorm <= gtol
            break
        w, b, f, F_old, F = w_new, b + t * db, f_new, F, F_new
        steps += 1
        if last or -slope / 2.0 <= _stop_tol(tol, fresh) * F_old:
            converged = True
            break
        if not (big and _reuse_factor(t, -slope, last_decrement)):
            factor = None
        last_decrement = -slope
    return w, b, steps, converged


def _reuse_factor(t: float, decrement: float, last_decrement: float) -> bool:
    """Keep the Hessian's factor for the next step: the last step was full and cut the decrement tenfold.

    Near the optimum the curvature barely changes and a factor costs far more than a step;
    while Newton is still damped, or a reused factor converges slowly, form a fresh one.
    """
    return t == 1.0 and decrement <= 0.1 * last_decrement


def _stop_tol(tol: float, fresh: bool) -> float:
    """The decrement that ends a fit, relative to F.

    After a Newton step with a fresh Hessian the gap is of the order of the decrement squared
    (quadratic convergence), so tol * F suffices. A reused factor converges only linearly
    (the gap after the step is up to a tenth of its decrement, see _reuse_factor), so it
    must get 1e4 times closer, which costs a few cheap steps.
    """
    return tol if fresh else 1e-4 * tol


def _factor(A: np.ndarray) -> Any:
    try:
        return linalg.cho_factor(A, lower=True, check_finite=False)
    except linalg.LinAlgError:
        return A  # not positive definite in floating point: _solve falls back to least squares


def _solve(factor: Any, rhs: np.ndarray) -> np.ndarray:
    if isinstance(factor, np.ndarray):
        return np.linalg.lstsq(factor, rhs, rcond=None)[0]
    return linalg.cho_solve(factor, rhs, check_finite=False)


def gram_matrix(Z: np.ndarray) -> np.ndarray:
    """Z Z' in float32 (one symmetric product), for the row-span solver's Hessian factors."""
    Z32 = np.asarray(Z, dtype=np.float32)
    return Z32 @ Z32.T


_KernelFactor = tuple[Any, np.ndarray, np.ndarray, np.ndarray, float]  # (Cholesky of M, s, h, K h, sum h)


def fit_logistic_dual(gram: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, C: float = 1.0, *,
                      dual_init: np.ndarray | None = None, intercept_init: float = 0.0, max_iter: int = 100,
                      tol: float = 1e-10) -> tuple[np.ndarray, float, int, bool]:
    """fit_logistic's problem for wide Z given only its Gram matrix K = Z Z' (float32, e.g. gram_matrix(Z)).

    Returns (dual, intercept, n_iter, converged): coef = Z' dual, and the scores of rows whose Gram
    entries with these rows are G (m, n) are G @ dual + intercept. Solved on K alone, without the final
    steps on Z that fit_logistic takes (so within K's float32 rounding of its optimum): for choosing C on
    an inner split, where only the scores of validation rows matter. dual_init / intercept_init warm-start
    it, e.g. from the solution at a nearby C along a path.
    """
    K32 = np.asarray(gram, dtype=np.float32)
    yf = np.asarray(y, dtype=np.float64)
    cw = C * np.asarray(sample_weight, dtype=np.float64)
    if K32.shape != (yf.size, yf.size):
        raise ValueError(f"gram must be ({yf.size}, {yf.size}) for {yf.size} rows, got {K32.shape}")
    return _newton_kernel(None, yf, cw, tol, 1e-6 * float(cw.sum()), max_iter, K32, dual_init, intercept_init)


def _newton_kernel(Z: np.ndarray | None, yf: np.ndarray, cw: np.ndarray, tol: float, gtol: float,
                   max_iter: int, gram: np.ndarray | None = None, a_init: np.ndarray | None = None,
                   b_init: float = 0.0) -> tuple[np.ndarray, float, int, bool]:
    """Newton for k > n in the row span: coef w = Z' a, scores f = K a + b with K = Z Z'.

    Starting from zero, every Newton iterate stays in the row span (the gradient Z'(r + a)
    does, and the Hessian maps the span to itself), so this is the same path as the primal
    Newton method. The primal Hessian [[Z'DZ + I, u], [u', sum h]] (u = Z'h) is inverted by
    Woodbury: (I + Z'DZ)^-1 Z'v = Z'(v - S M^-1 S K v), S = sqrt(D), M = I + S K S, n x n.
    K is formed in float32 (one symmetric product, the dominant cost), M is factored in
    float32 (float64 when that is too coarse, at large C), and the factor is reused while
    steps are full and converge fast. Every step then costs a few n x n products. K's float32
    rounding perturbs the problem slightly, so once that converges, the last steps are taken
    from Z itself (w = Z' a and f = Z w + b in float64, two products with Z per step) until the
    exact problem has converged too.
    Z=None (fit_logistic_dual): K alone, no exact phase, and the dual coefficients a are returned in
    place of coef; a_init, b_init then warm-start it (any a is in the row span).
    """
    if gram is not None:
        K32 = np.asarray(gram, dtype=np.float32)
    elif Z is not None:
        K32 = gram_matrix(Z)
    else:
        raise ValueError("the row-span solver needs Z or its Gram matrix")
    n = K32.shape[0]
    K = K32.astype(np.float64)
    a = np.zeros(n) if a_init is None else np.array(a_init, dtype=np.float64)
    Ka = K @ a
    w = np.zeros(0)  # kept from the exact phase on
    b = float(b_init)
    f = Ka + b
    F = float(np.dot(cw, np.logaddexp(0.0, f) - yf * f)) + 0.5 * float(a @ Ka)
    converged = False
    exact = False
    steps = 0
    factor: _KernelFactor | None = None  # the Hessian at the last fresh step
    float64_only = False  # set once a float32 factor gave no descent direction (large C)
    last_decrement = np.inf
    while steps < max_iter:
        p = expit(f)
        r = cw * (p - yf)
        ra = r + a  # gradient in coef space is Z' ra
        Kra = K @ ra
        gb = float(r.sum())
        gnorm = max(float(np.sqrt(max(float(ra @ Kra), 0.0))), abs(gb))  # ||Z' ra||_2 >= max-norm
        finished: bool | None = None  # set when this phase ends: converged or not
        fresh = factor is None
        if gnorm == 0.0:
            finished = True
        elif factor is None:
            factor = _kernel_factor(K32, K, cw * p * (1.0 - p), cw, float64_only)
            if factor is None:  # not positive definite even in float64: rounding dominates
                finished = gnorm <= gtol
        if factor is not None and finished is None:
            cho, s, h, Kh, hbb = factor
            rhs = s[:, None] * np.column_stack([Kra, Kh])
            c = np.column_stack([ra, h]) - s[:, None] * linalg.cho_solve(cho, rhs.astype(cho[0].dtype),
                                                                       check_finite=False)
            # (I + Z'DZ)^-1 gradient = Z' c0 and (I + Z'DZ)^-1 u = Z' c1; u' Z' c = Kh . c
            db = (-gb + float(Kh @ c[:, 0])) / (hbb - float(Kh @ c[:, 1]))
            da = -c[:, 0] - db * c[:, 1]
            if exact:
                assert Z is not None  # the exact phase needs Z
                dw = Z.T @ da
                Kda = Z @ dw
            else:
                Kda = K @ da
            df = Kda + db
            slope = float(ra @ Kda) + gb * db  # gradient . step = -lambda^2 (with a reused factor: its estimate)
            if not slope < 0:  # no descent direction: a stale factor, float32 too coarse, or rounding
                stale_or_coarse = not fresh or cho[0].dtype == np.float32
                float64_only = float64_only or fresh
                factor = None
                if stale_or_coarse:
                    continue
                finished = gnorm <= gtol
            else:
                last = -slope <= ROUNDING * abs(F)  # float64 cannot see this decrease: take the full step
                t = 1.0
                while True:  # Armijo backtracking
                    f_new = f + t * df
                    if exact:
                        w_new = w + t * dw
                        penalty = 0.5 * float(w_new @ w_new)
                    else:
                        Ka_new = Ka + t * Kda
                        penalty = 0.5 * float((a + t * da) @ Ka_new)
                    F_new = float(np.dot(cw, np.logaddexp(0.0, f_new) - yf * f_new)) + penalty
                    if last or F_new <= F + 1e-4 * t * slope or t < 1e-10:
                        break
                    t *= 0.5
                if t < 1e-10:
                    factor = None
                    if not fresh:
                        continue
                    finished = gnorm <= gtol
                else:
                    a, b, f, F_old, F = a + t * da, b + t * db, f_new, F, F_new
                    if exact:
                        w = w_new
                    else:
                        Ka = Ka_new
                    steps += 1
                    if last or -slope / 2.0 <= _stop_tol(tol, fresh) * F_old:
                        finished = True
                    elif not _reuse_factor(t, -slope, last_decrement):
                        factor = None
                    last_decrement = -slope
        if finished is None:
            continue
        if exact or Z is None:  # Z=None: K's problem is the one asked for
            converged = finished
            break
        # K's rounding has converged: polish on the exact problem, from this point.
        exact = True
        w = Z.T @ a
        f = Z @ w + b
        F = float(np.dot(cw, np.logaddexp(0.0, f) - yf * f)) + 0.5 * float(w @ w)
        last_decrement = np.inf
    if Z is None:
        return a, b, steps, converged
    if not exact:
        w = Z.T @ a
    return w, b, steps, converged


def _kernel_factor(K32: np.ndarray, K: np.ndarray, h: np.ndarray, cw: np.ndarray,
                   float64_only: bool) -> _KernelFactor | None:
    """Cholesky of M = I + S K S (S = sqrt(diag h)), in float32 unless that fails or float64_only;
    with s, h, K h and the intercept's curvature sum(h)."""
    s = np.sqrt(h)
    diag = np.arange(h.size)
    for dtype, base in ((np.float32, K32), (np.float64, K)):
        if float64_only and dtype == np.float32:
            continue
        M = base.astype(dtype, copy=True)
        M *= s.astype(dtype)[:, None]
        M *= s.astype(dtype)[None, :]
        M[diag, diag] += 1.0
        try:
            cho = linalg.cho_factor(M, lower=True, check_finite=False)
        except linalg.LinAlgError:
            continue
        return cho, s, h, K @ h, float(h.sum()) + 1e-12 * float(cw.sum())
    return None


def fit_standardised(Z: np.ndarray, yb: np.ndarray, sw: np.ndarray, C: float, max_iter: int) -> tuple[np.ndarray, float, int]:
    w, b, n_iter, ok = fit_logistic(Z, yb, sw, C, max_iter=max_iter)
    if not ok:
        warnings.warn(f"logistic regression did not converge in {max_iter} Newton iterations "
                      f"({Z.shape[1]} units, C={C})", ConvergenceWarning, stacklevel=3)
    return w, b, n_iter
