"""The small probes of a k sweep solved at once: damped Newton on nested supports that share one design.

A ranking method's supports are prefixes of one ranking, so the probes for k = 1, 2, ..., 16
all use leading columns of one block Z (n, k_max). One at a time, each Newton iteration of
such a probe is a dozen numpy calls on a few hundred numbers, and Python's overhead, not the
arithmetic, sets the cost. Here the P problems share every call: problem p uses the first
k_p columns, its coefficients beyond k_p are held at exactly 0 (gradient and Hessian masked
there, unit diagonal from the penalty), so it has the optimum of the narrow problem.
Scores for all problems are one product Z @ W; the P Hessians Z' diag(h_p) Z are one product
of the row-wise outer products of Z (computed once per block, reused every iteration) with
the (n, P) curvatures.

Each problem follows fit_logistic's rules (probebank.probing.newton): Armijo backtracking,
stop after a step whose Newton decrement lambda^2 / 2 was at most tol * F, the same rounding
fallbacks; a problem that has converged leaves the batch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit

# Above this width the outer products (n x k^2 numbers) cost more than they save: fit alone.
MAX_BATCH_WIDTH = 16
ROUNDING = 1e3 * np.finfo(np.float64).eps  # a decrease below this fraction of F is rounding noise


def fit_nested(Z: np.ndarray, ks: Sequence[int], y: np.ndarray, cw: np.ndarray, *,
               coef_init: np.ndarray | None = None, intercept_init: float = 0.0, max_iter: int = 100,
               tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit min sum_i cw_i logloss(y_i, Z_i[:k] w + b) + ||w||^2 / 2 for every k in ks at once.

    Z (n, k_max) float64, k_max = max(ks) <= MAX_BATCH_WIDTH recommended; y 0/1 (n,); cw (n,) =
    C * sample weights. coef_init (k_max,) warm-starts every problem from its first k entries
    (zeros by default), intercept_init likewise.
    Returns (coef (P, k_max) with zeros beyond each k, intercept (P,), n_iter (P,),
    converged (P,), training scores (P, n)).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, kmax = Z.shape
    kv = np.asarray(ks, dtype=np.int64)
    P = kv.size
    if kv.min(initial=1) < 1 or kv.max(initial=0) > kmax:
        raise ValueError(f"every k must be in 1..{kmax}, got {list(ks)}")
    yf = np.asarray(y, dtype=np.float64)
    cwf = np.asarray(cw, dtype=np.float64)
    gtol = 1e-6 * float(cwf.sum())
    mask = np.arange(kmax)[None, :] < kv[:, None]  # (P, k_max): which coefficients each problem has
    mask2 = mask[:, :, None] & mask[:, None, :]
    W = np.zeros((P, kmax)) if coef_init is None else np.asarray(coef_init, dtype=np.float64)[None, :] * mask
    b = np.full(P, float(intercept_init))
    outer = (Z[:, :, None] * Z[:, None, :]).reshape(n, kmax * kmax)  # row-wise z z', for every Hessian
    f = W @ Z.T + b[:, None]  # (P, n)
    F = _objectives(f, W, yf, cwf)
    steps = np.zeros(P, dtype=np.int64)
    converged = np.zeros(P, dtype=bool)
    active = np.arange(P) if max_iter > 0 else np.arange(0)
    diag = np.arange(kmax)
    while active.size:
        a = active
        m = a.size
        p = expit(f[a])
        r = cwf * (p - yf)
        gw = (r @ Z + W[a]) * mask[a]
        gb = r.sum(axis=1)
        gnorm = np.maximum(np.abs(gw).max(axis=1), np.abs(gb))
        h = cwf * p * (1.0 - p)
        A = np.zeros((m, kmax + 1, kmax + 1))
        A[:, :kmax, :kmax] = (h @ outer).reshape(m, kmax, kmax) * mask2[a]
        A[:, diag, diag] += 1.0
        A[:, :kmax, kmax] = A[:, kmax, :kmax] = (h @ Z) * mask[a]
        A[:, kmax, kmax] = h.sum(axis=1) + 1e-12 * float(cwf.sum())  # jitter: all rows may be saturated
        rhs = -np.concatenate([gw, gb[:, None]], axis=1)
        try:
            step = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # one singular system in the batch: solve them one by one
            step = np.stack([np.linalg.lstsq(A[i], rhs[i], rcond=None)[0] for i in range(m)])
        dw, db = step[:, :kmax] * mask[a], step[:, kmax]
        df = dw @ Z.T + db[:, None]
        slope = np.einsum("pk,pk->p", gw, dw) + gb * db  # = -lambda^2
        done = gnorm == 0.0
        converged[a[done]] = True
        stalled = ~done & ~(slope < 0)  # no descent direction: rounding dominates
        converged[a[stalled]] = gnorm[stalled] <= gtol
        go = ~done & ~stalled
        # A predicted decrease that float64 cannot resolve in F: backtracking would only halve
        # the step ~35 times to find that out. This close, the full Newton step is the right one.
        last = go & (-slope <= ROUNDING * np.abs(F[a]))
        t = np.ones(m)
        F_new = np.empty(m)
        todo = np.flatnonzero(go & ~last)
        while todo.size:  # Armijo backtracking, each problem with its own step length
            ti = t[todo][:, None]
            F_new[todo] = _objectives(f[a[todo]] + ti * df[todo], W[a[todo]] + ti * dw[todo], yf, cwf)
            ok = (F_new[todo] <= F[a[todo]] + 1e-4 * t[todo] * slope[todo]) | (t[todo] < 1e-10)
            todo = todo[~ok]
            t[todo] *= 0.5
        if last.any():
            F_new[last] = _objectives(f[a[last]] + df[last], W[a[last]] + dw[last], yf, cwf)
        floor = go & (t < 1e-10)  # no decrease measurable in float64: at the rounding floor
        converged[a[floor]] = gnorm[floor] <= gtol
        g = np.flatnonzero(go & ~floor)
        ag = a[g]
        tg = t[g][:, None]
        W[ag] += tg * dw[g]
        b[ag] += t[g] * db[g]
        f[ag] += tg * df[g]
        F_old = F[ag]
        F[ag] = F_new[g]
        steps[ag] += 1
        met = (-slope[g] / 2.0 <= tol * F_old) | last[g]
        converged[ag[met]] = True
        active = ag[~met & (steps[ag] < max_iter)]
    return W, b, steps, converged, f


def _objectives(f: np.ndarray, w: np.ndarray, y: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """Per problem (row): sum_i cw_i (log(1 + e^f_i) - y_i f_i) + ||w||^2 / 2, stable for large |f|."""
    return (np.logaddexp(0.0, f) - y * f) @ cw + 0.5 * np.einsum("pk,pk->p", w, w)
