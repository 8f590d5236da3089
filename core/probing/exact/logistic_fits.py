"""The logistic objective of an exact probe: fits of supports, their dual points and cuts, and incumbents.

    min_{S, |S| = k}  c(S),   c(S) = min_{w, b} C * sum_i sw_i * logloss(y_i, Z_iS w + b) + ||w||^2 / 2

with sw the balanced class weights: exactly the objective `probebank.probing.newton.fit_logistic`
minimises for the probe fitted afterwards. With z in {0,1}^m the indicator of S, Fenchel duality
gives for every dual point u (sum u = 0, y_i + u_i / cw_i in [0, 1], cw = C * sw)

    c(z) >= A(u) - sum_j z_j q_j(u),   A(u) = -sum_i cw_i H(y_i + u_i / cw_i),  q_j(u) = (Z_j' u)^2 / 2

(H(s) = s log s + (1-s) log(1-s)), tight at the support whose fit produced u (u = cw * (p - y)).
For t in (0, 1], t * u is dual feasible too, and A(t u) - t^2 q(u)' z is a different cut
(`SCALED_CUTS`): a handful of t per fit gives the searches the curvature one tangent lacks.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.special import expit, xlogy

from probebank.probing.exact.result import MilpResult, gap_closed, rel_gap
from probebank.probing.newton import fit_logistic
from probebank.probing.problem import UnitsLike

# Dual scalings t of each fit's cut (see the module docstring). 1.0 is the tangent.
SCALED_CUTS: tuple[float, ...] = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.05)


def objective_and_dual(Zs: np.ndarray, w: np.ndarray, b: float, yf: np.ndarray,
                       cw: np.ndarray) -> tuple[float, np.ndarray]:
    """The probe's objective at (w, b) and a dual-feasible point u built from its gradient.

    Dual feasibility needs sum u = 0 exactly (the free intercept): the larger side is shrunk
    towards zero, which keeps every y_i + u_i / cw_i inside [0, 1]. Any such u gives a valid
    lower bound; one from a more exact fit gives a slightly higher one.
    """
    f = Zs @ w + b
    obj = float(np.dot(cw, np.logaddexp(0.0, f) - yf * f) + 0.5 * np.dot(w, w))
    u = cw * (expit(f) - yf)
    pos, neg = u > 0, u < 0
    sp, sn = float(u[pos].sum()), float(-u[neg].sum())
    if sp > sn:
        u[pos] *= sn / sp
    elif sn > sp:
        u[neg] *= sp / sn
    return obj, u


class LogisticFits:
    """Logistic fits of supports (memoised) and the cuts they give."""

    def __init__(self, Z: np.ndarray, yf: np.ndarray, cw: np.ndarray) -> None:
        self.Z, self.yf, self.cw = Z, yf, cw
        self.cache: dict[tuple[int, ...], tuple[float, np.ndarray, float, np.ndarray]] = {}
        self.n_fits = 0

    def fit(self, S: UnitsLike, init: tuple[dict[int, float], float] | None = None
            ) -> tuple[float, np.ndarray, float, np.ndarray]:
        """(objective, coef, intercept, u) of the probe on support S (sorted positions).

        init: ({unit: coef}, intercept) to start Newton from (e.g. the fit of a subset of S);
        only the number of Newton steps depends on it, not the optimum.
        """
        key = tuple(sorted(int(j) for j in np.asarray(S, dtype=np.int64).ravel()))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        Zs = self.Z[:, list(key)]
        if init is None:
            w, b, _, _ = fit_logistic(Zs, self.yf, self.cw, 1.0)  # cw already holds C
        else:
            w, b, _, _ = fit_logistic(Zs, self.yf, self.cw, 1.0, coef_init=np.array([init[0].get(j, 0.0) for j in key]),
                                      intercept_init=init[1])
        obj, u = objective_and_dual(Zs, w, b, self.yf, self.cw)
        out = (obj, w, float(b), u)
        self.cache[key] = out
        self.n_fits += 1
        return out

    def result(self, best: UnitsLike, upper: float, lower: float, *, tol: float, time_s: float,
               time_limited: bool, **report: Any) -> MilpResult:
        """The best support refitted, as a MilpResult: units by |coef| (largest first), gap and status from
        the incumbent `upper` and the proven `lower` bound (every logistic search ends here)."""
        obj, w, b, _ = self.fit(best)
        order = np.argsort(-np.abs(w), kind="stable")
        gap = rel_gap(upper, lower)
        done = gap_closed(gap, tol)
        return MilpResult(support=np.asarray(best)[order], coef=w[order], intercept=b, objective=obj,
                          bound=min(lower, upper), gap=gap, time_s=time_s, time_limited=time_limited and not done,
                          status="optimal" if done else "time_limit", n_candidates=self.Z.shape[1],
                          n_fits=self.n_fits, **report)

    def cuts_a(self, u: np.ndarray) -> list[tuple[float, None]]:
        """The constants A(t u) of the scaled cuts, without q (for a bound on one support)."""
        out: list[tuple[float, None]] = []
        for t in SCALED_CUTS:
            s = self.yf + (t * u) / self.cw
            out.append((-float(np.dot(self.cw, xlogy(s, s) + xlogy(1.0 - s, 1.0 - s))), None))
        return out

    def cuts(self, u: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(A, q) pairs: c(z) >= A - q'z for every z, one per dual scaling t."""
        v = self.Z.T @ u
        q = 0.5 * v * v
        out = []
        for t in SCALED_CUTS:
            s = self.yf + (t * u) / self.cw
            a = -float(np.dot(self.cw, xlogy(s, s) + xlogy(1.0 - s, 1.0 - s)))
            out.append((a, (t * t) * q))
        return out


def swap_search(fits: LogisticFits, S: np.ndarray, m: int, budget_s: float, n_try: int = 6) -> np.ndarray:
    """Best-improvement swaps (one unit out, one in), in-candidates ranked by the dual pull q_j.

    Stops at a local optimum or after budget_s seconds.
    """
    t_end = time.perf_counter() + budget_s
    S = np.sort(S)
    obj, _, _, u = fits.fit(S)
    while time.perf_counter() < t_end:
        v = fits.Z.T @ u
        pull = v * v
        pull[S] = -np.inf
        ins = np.argsort(-pull, kind="stable")[:n_try]
        best = (obj, S)
        for j_in in ins:
            if not np.isfinite(pull[j_in]):
                continue
            for pos in range(S.size):
                T = np.sort(np.append(np.delete(S, pos), j_in))
                o = fits.fit(T)[0]
                if o < best[0] - 1e-12 * abs(best[0]):
                    best = (o, T)
        if best[1] is S:
            break
        obj, S = best
        u = fits.fit(S)[3]
    return S


def greedy_support(fits: LogisticFits, k: int, m: int) -> np.ndarray:
    """Forward selection by dual pull: add the unit with the largest (Z_j' u)^2, refit."""
    S = np.zeros(0, dtype=np.int64)
    u = fits.cw * (0.5 - fits.yf)  # balanced intercept-only fit: p = 1/2
    for _ in range(k):
        v = fits.Z.T @ u
        pull = v * v
        pull[S] = -np.inf
        S = np.sort(np.append(S, int(np.argmax(pull))))
        u = fits.fit(S)[3]
    return S
