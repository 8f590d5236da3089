"""Optimal k-sparse probes with a certificate: exact best-subset selection over the top-m units.

Two selection objectives (`MilpSelector(objective=...)`):

* "squares" (default): the balanced ridge least-squares probe, solved by a compiled leaps-and-
  bounds branch and bound on the m x m Gram matrix (`probebank.subset_squares`). It proves a
  gap <= 1e-4 for every k <= 8 over 50 SmolLM2 candidates in seconds (docs/milp.md); the
  logistic probe is then fitted on the certified support, as the paper fitted one on the
  support of its hinge-loss MILP.
* "logistic": the logistic probe's own objective, below; exact but far slower to prove for
  k >= 3 (its Boolean relaxation is weak at the probe's C = 1).

The logistic problem (over the top-m candidate units of a filter method, columns standardised):

    min_{S, |S| = k}  c(S),   c(S) = min_{w, b} C * sum_i sw_i * logloss(y_i, Z_iS w + b) + ||w||^2 / 2

with sw the balanced class weights: exactly the objective `probebank.probe.fit_logistic`
minimises for the probe fitted afterwards, so the support returned here is the best k units
*for that probe* (not for a proxy loss).

Solved by outer approximation after Bertsimas, Pauphilet and Van Parys (2021, "Sparse
classification: a scalable discrete optimization perspective"): with z in {0,1}^m the
indicator of S, Fenchel duality gives for every dual point u (sum u = 0, y_i + u_i / cw_i in
[0, 1], cw = C * sw)

    c(z) >= A(u) - sum_j z_j q_j(u),   A(u) = -sum_i cw_i H(y_i + u_i / cw_i),  q_j(u) = (Z_j' u)^2 / 2

(H(s) = s log s + (1-s) log(1-s)), tight at the support whose fit produced u (u = cw * (p - y)).
The master problem  min eta  s.t.  eta >= A(u_t) - q(u_t)' z  for every cut t,  sum z = k,
z binary  is a small MILP (m binaries, one continuous) solved by HiGHS (highspy). Every
master solution z is a support whose logistic fit (a Newton solve, ~1 ms) gives an upper
bound and new cuts; the master's dual bound is a proven lower bound. Three things make it
converge in few rounds:
  * scaled cuts: for t in (0, 1], t * u is dual feasible too, and A(t u) - t^2 q(u)' z is a
    different cut; a handful of t per fit gives the master the curvature that one tangent lacks
    (one cut per fit left gaps near 100% after 20 s on SmolLM2 features);
  * when there are at most `enumerate_max` supports (k <= 2 at m = 50) they are enumerated
    instead, skipping every support whose cut bound already rules it out (solver
    "enumeration"): the master's cuts are too weak to beat 50 or 1225 fits of ~1 ms;
  * a warm start: the best of the heuristic supports (mean_diff, f_stat, ... re-fitted) plus a
    swap local search give the incumbent and the first cuts;
  * the incumbent as objective cutoff: each master solve only looks for z whose cut value
    beats incumbent * (1 - tol) and stops at the first one; an infeasible master *is* the
    certificate (every support is proven within tol of the incumbent).
The default strategy="bnb" replaces the HiGHS master by a depth-first branch and bound over
supports whose node bounds are the dual of the node's Boolean relaxation (pooled dual points plus
Frank-Wolfe steps at the node; see _branch_and_bound); strategy="oa" is the master above.
A time limit never raises: the best support found comes back with its proven gap and
time_limited=True.

`naive_bigm_hinge` is the textbook model the issue measured (hinge loss, big-M links
|w_j| <= M z_j, one HiGHS MILP), kept as the baseline for bench/milp.py.
"""
from __future__ import annotations

import math
import time
from itertools import combinations
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.special import expit, xlogy

from .probe import fit_logistic
from .select import (Selector, _check_ks, _f_scores, _mean_diff, _order, balanced_sample_weight, check_xy,
                     column_scaling, get_selector)
from .schema import SolverReport

__all__ = ["MilpResult", "best_subset_logistic", "naive_bigm_hinge", "MilpSelector", "heuristic_matches",
           "probe_objective", "candidates", "SCALED_CUTS", "STRATEGIES", "OBJECTIVES"]

# Dual scalings t of each fit's cut (see the module docstring). 1.0 is the tangent.
SCALED_CUTS: tuple[float, ...] = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.05)
# "bnb": branch and bound over supports (node bounds from the Boolean relaxation's dual);
# "oa": outer approximation with a HiGHS master (enumeration when there are few supports).
STRATEGIES: tuple[str, ...] = ("bnb", "oa")
# selection objectives: the ridge least-squares probe (default, fast proofs) or the logistic probe itself
OBJECTIVES: tuple[str, ...] = ("squares", "logistic")
QUICK_LEAVES = True  # bnb: bound leaves from a rough fit before the exact one


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


@dataclass
class MilpResult:
    """One exact solve. support: positions in the candidate columns, largest |coef| first."""

    support: np.ndarray
    coef: np.ndarray
    intercept: float
    objective: float
    bound: float
    gap: float
    time_s: float
    time_limited: bool
    status: str
    n_candidates: int
    warm_start: bool
    rounds: int = 0
    n_cuts: int = 0
    n_fits: int = 0
    history: list[tuple[float, float, float]] = field(default_factory=list)  # (t, upper, lower)
    solver: str = "highs"  # "highs" (OA master), "enumeration", "branch_and_bound" or "leaps-bnb" (squares)

    def report(self) -> SolverReport:
        return SolverReport(solver=self.solver, status=self.status, objective=float(self.objective),
                            bound=float(self.bound), gap=float(self.gap), time_s=float(self.time_s),
                            time_limited=bool(self.time_limited), n_candidates=int(self.n_candidates),
                            warm_start=bool(self.warm_start))


def _highs() -> Any:
    import highspy  # lazy: only exact probes need it

    return highspy


def _rel_gap(upper: float, lower: float) -> float:
    return max(0.0, (upper - lower) / max(abs(upper), 1e-12))


def _check_problem(Z: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(Z as float64, y as bool, n, m) after checking 1 <= k <= m (shared by the exact solvers)."""
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    yb = np.asarray(y, dtype=bool)
    n, m = Z.shape
    if not 1 <= k <= m:
        raise ValueError(f"k must be between 1 and the number of candidates ({m}), got {k}")
    return Z, yb, n, m


def _within(gap: float, tol: float) -> bool:
    return gap <= tol * (1.0 + 1e-9) + 1e-15  # the cutoff proof gives gap == tol up to rounding


class _Fits:
    """Logistic fits of supports (memoised) and the cuts they give."""

    def __init__(self, Z: np.ndarray, yf: np.ndarray, cw: np.ndarray) -> None:
        self.Z, self.yf, self.cw = Z, yf, cw
        self.cache: dict[tuple[int, ...], tuple[float, np.ndarray, float, np.ndarray]] = {}
        self.n_fits = 0

    def fit(self, S: Sequence[int], init: tuple[dict[int, float], float] | None = None
            ) -> tuple[float, np.ndarray, float, np.ndarray]:
        """(objective, coef, intercept, u) of the probe on support S (sorted positions).

        init: ({unit: coef}, intercept) to start Newton from (e.g. the fit of a subset of S);
        only the number of Newton steps depends on it, not the optimum.
        """
        key = tuple(sorted(int(j) for j in S))
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


def _local_search(fits: _Fits, S: np.ndarray, m: int, budget_s: float, n_try: int = 6) -> np.ndarray:
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


def _greedy(fits: _Fits, k: int, m: int) -> np.ndarray:
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


def best_subset_logistic(Z: np.ndarray, y: np.ndarray, k: int, *, C: float = 1.0, tol: float = 1e-4,
                         time_limit: float = 10.0, warm_supports: Sequence[Sequence[int]] = (),
                         local_search: bool = True, enumerate_max: int = 2000,
                         threads: int = 1, strategy: str = "bnb") -> MilpResult:
    """The best k columns of Z for the balanced L2 logistic probe, with a proven gap.

    Z: (n, m) standardised candidate columns; y: binary; warm_supports: heuristic supports
    (positions in Z's columns) to start from. Returns when the gap is <= tol or time_limit
    seconds have passed (then time_limited=True and the gap is what was proven).
    """
    hs = _highs()
    t0 = time.perf_counter()
    Z, yb, n, m = _check_problem(Z, y, k)
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    fits = _Fits(Z, yb.astype(np.float64), C * balanced_sample_weight(yb))
    history: list[tuple[float, float, float]] = []

    def elapsed() -> float:
        return time.perf_counter() - t0

    # ---- incumbent: heuristics, greedy forward selection, swap local search
    starts = [np.unique(np.asarray(S, dtype=np.int64))[:k] for S in warm_supports]
    starts = [S for S in starts if S.size == k and S.min() >= 0 and S.max() < m]
    warm = bool(starts)
    starts.append(_greedy(fits, k, m))
    upper, best = np.inf, starts[0]
    for S in starts:
        o = fits.fit(S)[0]
        if o < upper:
            upper, best = o, np.sort(S)
    if local_search and k < m:
        best = _local_search(fits, best, m, budget_s=max(0.0, min(0.25 * time_limit, time_limit - elapsed())))
        upper = fits.fit(best)[0]
    lower = 0.0  # the loss and the penalty are >= 0
    if k == m:
        lower = upper
    history.append((elapsed(), upper, lower))

    if math.comb(m, k) <= enumerate_max and not _within(_rel_gap(upper, lower), tol):
        return _enumerate(fits, k, best, upper, tol, t0, time_limit, warm, history)

    if strategy == "bnb" and not _within(_rel_gap(upper, lower), tol):
        return _branch_and_bound(fits, k, best, upper, tol, t0, time_limit, warm, history)

    # ---- master MILP over z with every cut gathered so far
    h = hs.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    inf = hs.kHighsInf
    idx = np.arange(m + 1, dtype=np.int32)
    h.addVars(m, np.zeros(m), np.ones(m))
    h.addVar(0.0, inf)  # eta
    h.changeColCost(m, 1.0)
    h.changeColsIntegrality(m, np.arange(m, dtype=np.int32), np.full(m, hs.HighsVarType.kInteger))
    h.addRow(float(k), float(k), m, idx[:m], np.ones(m))
    n_cuts = 0

    def add_cuts(S: np.ndarray) -> None:
        nonlocal n_cuts
        for a, q in fits.cuts(fits.fit(S)[3]):
            h.addRow(a, inf, m + 1, idx, np.append(q, 1.0))
            n_cuts += 1

    for key in list(fits.cache):
        add_cuts(np.asarray(key, dtype=np.int64))

    rounds = 0
    time_limited = False
    while not _within(_rel_gap(upper, lower), tol):
        left = time_limit - elapsed()
        if left <= 0:
            time_limited = True
            break
        rounds += 1
        # Only z whose cut value beats the incumbent by more than tol are of interest: HiGHS
        # prunes with the cutoff, and stops at the first such z.
        h.setOptionValue("objective_bound", upper * (1.0 - tol) if upper > 0 else upper)
        h.setOptionValue("mip_max_improving_sols", 1)
        h.setOptionValue("time_limit", float(left))
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        if status == "Infeasible":  # no support can beat incumbent * (1 - tol): proven
            lower = max(lower, upper * (1.0 - tol) if upper > 0 else upper)
            history.append((elapsed(), upper, lower))
            break
        if status == "Optimal":  # the master's optimum is a lower bound on c over all supports
            lower = max(lower, float(info.objective_function_value))
        elif np.isfinite(info.mip_dual_bound):
            lower = max(lower, float(info.mip_dual_bound))
        lower = min(lower, upper)
        if info.primal_solution_status != 2:  # no z from the master (time limit in the master)
            time_limited = elapsed() >= time_limit
            history.append((elapsed(), upper, lower))
            if time_limited:
                break
            continue
        z = np.asarray(h.getSolution().col_value[:m])
        S = np.flatnonzero(z > 0.5)
        if S.size != k:  # numerical trouble in the master: fall back to its top k
            S = np.sort(np.argsort(-z, kind="stable")[:k])
        o = fits.fit(S)[0]
        if o < upper:
            upper, best = o, S
        add_cuts(S)
        history.append((elapsed(), upper, lower))

    obj, w, b, _ = fits.fit(best)
    order = np.argsort(-np.abs(w), kind="stable")
    gap = _rel_gap(upper, lower)
    return MilpResult(support=best[order], coef=w[order], intercept=b, objective=obj, bound=min(lower, upper),
                      gap=gap, time_s=elapsed(), time_limited=time_limited and not _within(gap, tol),
                      status="optimal" if _within(gap, tol) else "time_limit", n_candidates=m, warm_start=warm,
                      rounds=rounds, n_cuts=n_cuts, n_fits=fits.n_fits, history=history)


def _enumerate(fits: _Fits, k: int, best: np.ndarray, upper: float, tol: float, t0: float, time_limit: float,
               warm: bool, history: list[tuple[float, float, float]]) -> MilpResult:
    """Exact by enumeration of every k-subset, pruning with the cuts of the fits done so far.

    On a time limit the proven lower bound is the smallest cut bound over the supports not
    yet fitted (cuts are valid for every support).
    """
    m = fits.Z.shape[1]
    todo = np.array(list(combinations(range(m), k)), dtype=np.int64)
    A: list[float] = []
    Q: list[np.ndarray] = []

    def cut_bounds(rows: np.ndarray) -> np.ndarray:
        if not A:
            return np.zeros(len(rows))
        Qm = np.asarray(Q)  # (T, m)
        return np.max(np.asarray(A)[:, None] - Qm[:, rows].sum(axis=2), axis=0)

    for key in list(fits.cache):
        for a, q in fits.cuts(fits.cache[key][3]):
            A.append(a)
            Q.append(q)
    time_limited = False
    i = 0
    while i < len(todo):
        if i % 64 == 0:  # prune the rest with every cut so far
            rest = todo[i:]
            keep = cut_bounds(rest) < upper * (1.0 - tol)
            todo = np.concatenate([todo[:i], rest[keep]])
            if i >= len(todo):
                break
            if time.perf_counter() - t0 > time_limit:
                time_limited = True
                break
        S = todo[i]
        obj, _, _, u = fits.fit(S)
        if obj < upper:
            upper, best = obj, S
        for a, q in fits.cuts(u):
            A.append(a)
            Q.append(q)
        i += 1
    rest = todo[i:]
    lower = upper if not len(rest) else float(min(upper, max(0.0, cut_bounds(rest).min())))
    if not len(rest) or _within(_rel_gap(upper, lower), tol):
        lower = max(lower, upper * (1.0 - tol)) if len(rest) else upper
    elapsed = time.perf_counter() - t0
    history.append((elapsed, upper, lower))
    obj, w, b, _ = fits.fit(best)
    order = np.argsort(-np.abs(w), kind="stable")
    gap = _rel_gap(upper, lower)
    done = _within(gap, tol)
    return MilpResult(support=np.asarray(best)[order], coef=w[order], intercept=b, objective=obj, bound=lower,
                      gap=gap, time_s=elapsed, time_limited=time_limited and not done,
                      status="optimal" if done else "time_limit", n_candidates=m, warm_start=warm, rounds=0,
                      n_cuts=len(A), n_fits=fits.n_fits, history=history, solver="enumeration")


# ---------------------------------------------------------------- branch and bound over supports

class _CutPool:
    """Every dual point u seen so far as scaled cuts: c(S) >= max_t A_t(u) - t^2 sum_{j in S} q_j(u)."""

    def __init__(self, fits: _Fits, cap: int = 4000) -> None:
        self.fits, self.cap = fits, cap
        self.t2 = np.asarray(SCALED_CUTS) ** 2
        self._A = np.empty((cap, len(SCALED_CUTS)))
        self._Q = np.empty((cap, fits.Z.shape[1]))
        self.n = 0  # rows filled; when full, the oldest are overwritten (ring buffer)
        self.last = -1

    @property
    def A(self) -> np.ndarray:
        return self._A[:min(self.n, self.cap)]

    @property
    def Q(self) -> np.ndarray:
        return self._Q[:min(self.n, self.cap)]

    def add(self, u: np.ndarray) -> None:
        cuts = self.fits.cuts(u)
        i = self.n % self.cap
        self._A[i] = [c[0] for c in cuts]
        self._Q[i] = cuts[0][1]  # t = 1: q itself
        self.n += 1
        self.last = i

    def single_bounds(self, F: np.ndarray, U: np.ndarray) -> np.ndarray:
        """For each j in U, the pooled bound on c(F + j) (the r = 1 children of a node)."""
        Q, A = self.Q, self.A
        if not len(Q):
            return np.zeros(U.size)
        tot = Q[:, F].sum(axis=1)[:, None] + Q[:, U]  # (P, |U|)
        vals = A[:, :, None] - self.t2[None, :, None] * tot[:, None, :]  # (P, T, |U|)
        return vals.max(axis=(0, 1))

    def node_bound(self, F: np.ndarray, U: np.ndarray, r: int, rows: slice = slice(None)) -> tuple[float, int]:
        """max over pooled u of  A(u) - q_F(u) - (sum of the r largest q_j(u) over j in U): a lower
        bound on c(S) for every S with F in S, S minus F a r-subset of U. Returns (bound, row)."""
        Q, A = self.Q[rows], self.A[rows]
        if not len(Q):
            return 0.0, -1
        tot = Q[:, F].sum(axis=1)
        if r > 0:
            QU = Q[:, U]
            tot = tot + (np.partition(QU, QU.shape[1] - r, axis=1)[:, -r:].sum(axis=1) if r < QU.shape[1]
                         else QU.sum(axis=1))
        vals = (A - self.t2[None, :] * tot[:, None]).max(axis=1)
        i = int(np.argmax(vals))
        return float(vals[i]), i


def _relaxed_u(fits: _Fits, cols: np.ndarray, zc: np.ndarray,
               w0: dict[int, float] | None = None) -> tuple[float, np.ndarray, dict[int, float]]:
    """A dual point for the perspective relaxation at fractional z (zc on cols):
    c(z) = min loss + sum w_j^2 / (2 z_j), a plain ridge on the columns Z_j sqrt(z_j).

    Returns (c(z) as fitted, u, {unit: w_j}). The fit is loose (Newton tol 1e-6, warm-started from w0): any
    dual-feasible u gives a valid bound, a more exact one only a slightly higher one.
    """
    sq = np.sqrt(zc)
    Zs = fits.Z[:, cols] * sq[None, :]
    init = None if not w0 else np.array([w0.get(int(j), 0.0) for j in cols]) / sq
    w, b, _, _ = fit_logistic(Zs, fits.yf, fits.cw, 1.0, coef_init=init, intercept_init=w0.get(-1, 0.0) if w0 else 0.0,
                              tol=1e-6, max_iter=20)
    obj, u = objective_and_dual(Zs, w, b, fits.yf, fits.cw)
    wo = {int(j): float(v) for j, v in zip(cols, w * sq)}
    wo[-1] = float(b)
    return obj, u, wo


def _leaf_dual_bound(fits: _Fits, S: np.ndarray, init: tuple[dict[int, float], float] | None) -> float:
    """A lower bound on c(S) from a rough fit: weak duality at its (projected) dual point."""
    Zs = fits.Z[:, S]
    w0 = None if init is None else np.array([init[0].get(int(j), 0.0) for j in S])
    w, b, _, _ = fit_logistic(Zs, fits.yf, fits.cw, 1.0, coef_init=w0, intercept_init=0.0 if init is None else init[1],
                              tol=1e-4, max_iter=3)
    _, u = objective_and_dual(Zs, w, b, fits.yf, fits.cw)
    v = Zs.T @ u
    qS = 0.5 * float(v @ v)
    return max(a - (t * t) * qS for (a, _), t in zip(fits.cuts_a(u), SCALED_CUTS))


def _branch_and_bound(fits: _Fits, k: int, best: np.ndarray, upper: float, tol: float, t0: float,
                      time_limit: float, warm: bool, history: list[tuple[float, float, float]],
                      fw_iters: int = 20, quick_leaves: bool = QUICK_LEAVES) -> MilpResult:
    """Depth-first branch and bound over supports (units forced in F, free units U).

    Node bound: the dual of the Boolean (perspective) relaxation restricted to the node,
    max_u A(u) - q_F(u) - top_r(q_U(u)), evaluated for every pooled dual point u (each fit's
    u, scaled). When the pool does not prune a node, a few Frank-Wolfe steps on the node's
    relaxation (each a ridge fit on the columns Z_j sqrt(z_j)) add dual points aimed at it.
    Every bound is weak duality evaluated in float64, so it is valid whatever the fits' accuracy.
    """
    m = fits.Z.shape[1]
    pool = _CutPool(fits)
    for key in list(fits.cache):
        pool.add(fits.cache[key][3])
    cutoff = upper * (1.0 - tol)
    pruned_min = np.inf  # smallest bound of a pruned node (every pruned bound >= cutoff at pruning time)
    # stack of (F, U, inherited bound)
    stack: list[tuple[np.ndarray, np.ndarray, float]] = [(np.zeros(0, dtype=np.int64), np.arange(m), 0.0)]
    n_nodes = 0
    time_limited = False
    while stack:
        if time.perf_counter() - t0 > time_limit:
            time_limited = True
            break
        F, U, inherited = stack.pop()
        n_nodes += 1
        r = k - F.size
        if r == 0 or F.size + U.size == k:  # a leaf: one support
            S = np.sort(np.concatenate([F, U])) if r else np.sort(F)
            obj, _, _, u = fits.fit(S)
            pool.add(u)
            if obj < upper:
                upper, best = obj, S
                cutoff = upper * (1.0 - tol)
            else:
                pruned_min = min(pruned_min, obj)
            continue
        if r == 1:  # the children are single supports: bound them all at once, fit the survivors
            sb = np.maximum(pool.single_bounds(F, U), inherited)
            init = None
            if F.size and (sb < cutoff).any():  # warm-start the children's fits from the fit of F
                _, wf, bf, _ = fits.fit(np.sort(F))
                init = (dict(zip(np.sort(F).tolist(), wf.tolist())), bf)
            for i in np.argsort(sb, kind="stable"):
                if sb[i] >= cutoff:
                    pruned_min = min(pruned_min, float(sb[i]))
                    continue
                S = np.sort(np.append(F, U[i]))
                n_nodes += 1
                if quick_leaves and tuple(S.tolist()) not in fits.cache:
                    # a rough fit (3 Newton steps) usually gives a dual point whose bound already
                    # rules S out; only the others get the exact fit
                    lb_quick = _leaf_dual_bound(fits, S, init)
                    if lb_quick >= cutoff:
                        pruned_min = min(pruned_min, lb_quick)
                        continue
                obj, _, _, u = fits.fit(S, init)
                pool.add(u)
                if obj < upper:
                    upper, best = obj, S
                    cutoff = upper * (1.0 - tol)
                else:
                    pruned_min = min(pruned_min, obj)
            continue
        lb, row = pool.node_bound(F, U, r)
        lb = max(lb, inherited)
        if lb < cutoff:
            # Frank-Wolfe on the node's relaxation: z = 1 on F, fractional on U, sum_U z = r.
            q = pool.Q[row] if row >= 0 else np.zeros(m)
            zU = np.zeros(U.size)
            zU[np.argsort(-q[U], kind="stable")[:r]] = 1.0
            w_prev: dict[int, float] | None = None
            for it in range(fw_iters):
                on = zU > 1e-9
                cols = np.concatenate([F, U[on]])
                zc = np.concatenate([np.ones(F.size), zU[on]])
                if it == 0:  # an integral point: the ordinary fit (cached, and a candidate incumbent)
                    S = np.sort(cols)
                    obj, w_s, b_s, u = fits.fit(S)
                    w_prev = {int(j): float(v) for j, v in zip(S, w_s)}
                    w_prev[-1] = b_s
                    if obj < upper:
                        upper, best = obj, S
                        cutoff = upper * (1.0 - tol)
                else:
                    relaxed, u, w_prev = _relaxed_u(fits, cols, zc, w_prev)
                pool.add(u)
                nb, _ = pool.node_bound(F, U, r, rows=slice(pool.last, pool.last + 1))
                lb = max(lb, nb)
                if lb >= cutoff:
                    break
                if it > 0 and relaxed < cutoff:  # the relaxation itself is below the cutoff: branch
                    break
                qU = pool.Q[pool.last][U]
                s = np.zeros(U.size)
                s[np.argsort(-qU, kind="stable")[:r]] = 1.0
                gamma = 2.0 / (it + 3.0)
                zU = (1.0 - gamma) * zU + gamma * s
        if lb >= cutoff:
            pruned_min = min(pruned_min, lb)
            continue
        # branch on the free unit the relaxation wants most (largest pull in the last dual point)
        qU = pool.Q[pool.last][U]
        j = int(np.argmax(qU))
        rest = np.delete(U, j)
        stack.append((F, rest, lb))  # exclude j (explored later)
        stack.append((np.append(F, U[j]), rest, lb))  # include j (explored first)
    elapsed = time.perf_counter() - t0
    if stack:  # time limit: the open nodes' bounds (re-evaluated with the final pool) bound the rest
        lower = min([upper, pruned_min] + [max(b, pool.node_bound(F, U, k - F.size)[0]) for F, U, b in stack])
    else:
        lower = min(upper, pruned_min)
    lower = max(0.0, lower)
    history.append((elapsed, upper, lower))
    obj, w, b, _ = fits.fit(best)
    order = np.argsort(-np.abs(w), kind="stable")
    gap = _rel_gap(upper, lower)
    done = _within(gap, tol)
    return MilpResult(support=np.asarray(best)[order], coef=w[order], intercept=b, objective=obj, bound=lower,
                      gap=gap, time_s=elapsed, time_limited=time_limited and not done,
                      status="optimal" if done else "time_limit", n_candidates=m, warm_start=warm,
                      rounds=n_nodes, n_cuts=len(pool.A) * len(SCALED_CUTS), n_fits=fits.n_fits, history=history,
                      solver="branch_and_bound")


# ---------------------------------------------------------------- the baseline the issue measured

def naive_bigm_hinge(Z: np.ndarray, y: np.ndarray, k: int, *, C: float = 1.0, big_m: float = 100.0,
                     time_limit: float = 60.0, tol: float = 1e-4, threads: int = 1) -> MilpResult:
    """The textbook k-sparse hinge MILP, one HiGHS solve, no warm start:

        min C * sum_i sw_i xi_i   s.t.  xi_i >= 1 - y~_i (Z_i w + b),  xi >= 0,
            -M z_j <= w_j <= M z_j,  sum z = k,  z binary          (y~ = +-1)

    with one constant M for every column. A different loss than `best_subset_logistic`
    (hinge, unregularised): it is the speed baseline, as in the issue and in Gurnee et al.
    """
    hs = _highs()
    import scipy.sparse as sp

    t0 = time.perf_counter()
    Z, yb, n, m = _check_problem(Z, y, k)
    ys = np.where(yb, 1.0, -1.0)
    cw = C * balanced_sample_weight(yb)
    inf = hs.kHighsInf
    # columns: w (m), b, xi (n), z (m)
    nv = 2 * m + 1 + n
    cost = np.concatenate([np.zeros(m + 1), cw, np.zeros(m)])
    lower = np.concatenate([np.full(m, -big_m), [-inf], np.zeros(n), np.zeros(m)])
    upper = np.concatenate([np.full(m, big_m), [inf], np.full(n, inf), np.ones(m)])
    margin = sp.hstack([sp.csr_matrix(ys[:, None] * Z), sp.csr_matrix(ys[:, None]), sp.identity(n, format="csr"),
                        sp.csr_matrix((n, m))])
    eye = sp.identity(m, format="csr")
    link_hi = sp.hstack([eye, sp.csr_matrix((m, 1 + n)), -big_m * eye])  # w - M z <= 0
    link_lo = sp.hstack([eye, sp.csr_matrix((m, 1 + n)), big_m * eye])  # w + M z >= 0
    card = sp.hstack([sp.csr_matrix((1, m + 1 + n)), sp.csr_matrix(np.ones((1, m)))])
    A = sp.vstack([margin, link_hi, link_lo, card]).tocsc()
    row_lo = np.concatenate([np.ones(n), np.full(m, -inf), np.zeros(m), [k]])
    row_hi = np.concatenate([np.full(n, inf), np.zeros(m), np.full(m, inf), [k]])
    lp = hs.HighsLp()
    lp.num_col_, lp.num_row_ = nv, A.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = hs.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    lp.integrality_ = [hs.HighsVarType.kContinuous] * (m + 1 + n) + [hs.HighsVarType.kInteger] * m
    h = hs.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(tol))
    h.passModel(lp)
    h.run()
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    x = np.asarray(h.getSolution().col_value) if info.primal_solution_status == 2 else np.zeros(nv)
    z, w = x[m + 1 + n:], x[:m]
    support = np.sort(np.argsort(-z, kind="stable")[:k])
    obj = float(info.objective_function_value) if info.primal_solution_status == 2 else float("inf")
    bound = float(info.mip_dual_bound)
    gap = _rel_gap(obj, bound) if np.isfinite(obj) else float("inf")
    return MilpResult(support=support, coef=w[support], intercept=float(x[m]), objective=obj, bound=bound, gap=gap,
                      time_s=time.perf_counter() - t0, time_limited=status == "Time limit reached",
                      status="optimal" if status == "Optimal" else status.lower().replace(" ", "_"),
                      n_candidates=m, warm_start=False)


# ---------------------------------------------------------------- the selection method

def candidates(X: np.ndarray, yb: np.ndarray, m: int, prefilter: str = "f_stat") -> np.ndarray:
    """The top-m units of X by a filter method (f_stat or mean_diff), best first."""
    if prefilter == "f_stat":
        scores = _f_scores(X, yb)
    elif prefilter == "mean_diff":
        scores = _mean_diff(X, yb)
    else:
        raise ValueError(f"prefilter must be 'f_stat' or 'mean_diff', got {prefilter!r}")
    return _order(scores)[:m]


class MilpSelector(Selector):
    """Exact k-sparse probes: the best k of the top-m candidate units, with a certificate.

    For every k <= k_max the support minimises the selection objective (`objective`:
    "squares", the balanced ridge least-squares probe, default; or "logistic", the balanced L2
    logistic probe itself; both with this C, on standardised units) over all k-subsets of the m
    candidates (ranked by `prefilter`), proven to within relative gap `tol` or as far as
    `time_limit` seconds per k allowed. k above k_max is not solved: those supports are the
    top k of the filter ranking (prefixes), without a report. After supports(), `reports_`
    holds a SolverReport per solved k and `results_` the full MilpResult (support as unit
    indices). Warm start (`warm_start`): the supports of mean_diff and f_stat (and adaptive
    when `warm_adaptive`) restricted to the candidates seed the incumbent and the first cuts.
    k with at most `enumerate_max` subsets of the candidates are enumerated (with pruning).
    """

    nested = False

    def __init__(self, m: int = 50, k_max: int = 8, prefilter: str = "f_stat", C: float = 1.0, tol: float | None = None,
                 time_limit: float = 5.0, warm_start: bool = True, warm_adaptive: bool = False,
                 enumerate_max: int = 2000, threads: int = 1, strategy: str = "bnb",
                 objective: str = "squares") -> None:
        self.m = m
        self.k_max = k_max
        self.prefilter = prefilter
        self.C = C
        self.tol = tol
        self.time_limit = time_limit
        self.warm_start = warm_start
        self.warm_adaptive = warm_adaptive
        self.enumerate_max = enumerate_max
        self.threads = threads
        self.strategy = strategy
        self.objective = objective

    @property
    def tol_(self) -> float:
        """The relative gap to prove: `tol`, or by default 1e-6 for squares (it costs the same as
        1e-4 there, bench/milp.py --tol) and 1e-4 for the logistic objective."""
        if self.tol is not None:
            return float(self.tol)
        return 1e-6 if self.objective == "squares" else 1e-4

    def _check_params(self, d: int) -> tuple[int, int]:
        from .errors import ConfigError

        if int(self.m) != self.m or int(self.m) < 1:
            raise ConfigError(f"milp: m (number of candidate units) must be a positive integer, got {self.m!r}",
                              field="m", fix="use e.g. m=50")
        if int(self.k_max) != self.k_max or int(self.k_max) < 1:
            raise ConfigError(f"milp: k_max must be a positive integer, got {self.k_max!r}", field="k_max",
                              fix="use e.g. k_max=8")
        m = min(int(self.m), d)
        if int(self.k_max) > m:
            raise ConfigError(f"milp: k_max={self.k_max} exceeds the {m} candidate units: an exact k-sparse probe "
                              f"chooses k of the m candidates", field="k_max",
                              fix=f"lower k_max to at most {m} or raise m")
        if self.prefilter not in ("f_stat", "mean_diff"):
            raise ConfigError(f"milp: unknown prefilter {self.prefilter!r}", field="prefilter",
                              fix="use 'f_stat' or 'mean_diff'")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"milp: unknown objective {self.objective!r}", field="objective",
                              fix="use 'squares' (ridge least squares, default) or 'logistic'")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"milp: unknown strategy {self.strategy!r}", field="strategy",
                              fix="use 'bnb' (branch and bound, default) or 'oa' (outer approximation)")
        if not (float(self.time_limit) > 0 and self.tol_ >= 0 and float(self.C) > 0):
            raise ConfigError("milp: time_limit and C must be > 0 and tol >= 0", field="time_limit",
                              fix="use e.g. time_limit=5.0, tol=1e-4, C=1.0")
        return m, int(self.k_max)

    def supports(self, X: np.ndarray, y: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, np.ndarray]:
        X, yb = check_xy(X, y)
        wanted = _check_ks(ks)
        d = X.shape[1]
        m, k_max = self._check_params(d)
        cand = candidates(X, yb, m, self.prefilter)
        mean, scale = column_scaling(X[:, cand])
        Z = (X[:, cand] - mean) / scale
        pos_of = {int(u): i for i, u in enumerate(cand)}
        warm: dict[int, list[np.ndarray]] = {}
        exact = sorted({k for k in wanted if k <= k_max})
        if self.warm_start and exact:
            names = ["mean_diff", "f_stat"] + (["adaptive"] if self.warm_adaptive else [])
            for name in names:
                for k, S in get_selector(name).supports(X, yb, exact, seed).items():
                    inside = [pos_of[int(u)] for u in S if int(u) in pos_of]
                    warm.setdefault(k, []).append(np.asarray(inside, dtype=np.int64))
        self.reports_: dict[int, SolverReport] = {}
        self.results_: dict[int, MilpResult] = {}
        out: dict[int, np.ndarray] = {}
        squares = None
        if self.objective == "squares" and exact:
            from .subset_squares import SquaresProblem, best_subset_squares  # lazy: imports numba

            squares = SquaresProblem(Z, yb, float(self.C))
        for k in wanted:
            if k > k_max:
                out[k] = cand[:k].copy() if k <= cand.size else _order(_f_scores(X, yb))[:min(k, d)]
                continue
            if squares is not None:
                res = best_subset_squares(Z, yb, k, C=float(self.C), tol=self.tol_,
                                          time_limit=float(self.time_limit), warm_supports=warm.get(k, []),
                                          problem=squares)
            else:
                res = best_subset_logistic(Z, yb, k, C=float(self.C), tol=self.tol_,
                                       time_limit=float(self.time_limit), warm_supports=warm.get(k, []),
                                       enumerate_max=int(self.enumerate_max), threads=int(self.threads),
                                       strategy=str(self.strategy))
            res.support = cand[res.support]
            self.results_[k] = res
            self.reports_[k] = res.report()
            out[k] = res.support.copy()
        return out


# ---------------------------------------------------------------- heuristics vs the optimum

def probe_objective(X: np.ndarray, yb: np.ndarray, units: Sequence[int], C: float = 1.0,
                    objective: str = "logistic") -> float:
    """The selection objective on `units` (standardised), as the exact solver minimises it."""
    cols = np.asarray(units, dtype=np.int64)
    mean, scale = column_scaling(X[:, cols])
    Z = (X[:, cols] - mean) / scale
    if objective == "squares":
        from .subset_squares import SquaresProblem

        return SquaresProblem(Z, yb, C).objective(np.arange(cols.size))
    return _Fits(Z, yb.astype(np.float64), C * balanced_sample_weight(yb)).fit(np.arange(cols.size))[0]


def heuristic_matches(X: np.ndarray, y: np.ndarray, selector: MilpSelector,
                      methods: Sequence[str] = ("mean_diff", "f_stat", "adaptive"),
                      seed: int = 0) -> dict[int, dict[str, dict[str, Any]]]:
    """For each k the selector solved: did each heuristic already find the optimal support?

    Returns {k: {method: {"same_support", "objective", "as_good", "certified"}}}:
    same_support is set equality with the MILP's support; as_good means the heuristic's
    probe objective is no worse than the MILP's best support (within tol; ties count);
    certified means it is moreover proven optimal: objective - bound <= tol * objective,
    which needs the MILP to have closed its gap. Call after selector.supports(X, y, ...).
    """
    X, yb = check_xy(X, y)
    if not getattr(selector, "results_", None):
        raise ValueError("call selector.supports(X, y, ks) first: it has no solved k yet")
    ks = sorted(selector.results_)
    tol = selector.tol_
    out: dict[int, dict[str, dict[str, Any]]] = {k: {} for k in ks}
    for name in methods:
        sup = get_selector(name).supports(X, yb, ks, seed)
        for k in ks:
            res = selector.results_[k]
            obj = probe_objective(X, yb, sup[k], float(selector.C), str(selector.objective))
            as_good = obj <= res.objective + tol * abs(res.objective) + 1e-9
            certified = as_good and _within(_rel_gap(obj, res.bound), tol)
            out[k][name] = {"same_support": set(map(int, sup[k])) == set(map(int, res.support)),
                            "objective": obj, "as_good": bool(as_good), "certified": bool(certified)}
    return out
