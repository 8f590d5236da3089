"""Exact searches for the logistic objective: enumeration with cut pruning, and branch and bound over supports.

The branch and bound's node bounds are the dual of the node's Boolean (perspective) relaxation,
evaluated for every pooled dual point plus a few Frank-Wolfe steps aimed at the node.
"""
from __future__ import annotations

import time
from itertools import combinations

import numpy as np

from probebank.probing.exact.logistic_fits import SCALED_CUTS, LogisticFits, objective_and_dual
from probebank.probing.exact.result import MilpResult, gap_closed, rel_gap
from probebank.probing.newton import fit_logistic

QUICK_LEAVES = True  # bnb: bound leaves from a rough fit before the exact one


def enumerate_supports(fits: LogisticFits, k: int, best: np.ndarray, upper: float, tol: float, t0: float, time_limit: float,
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
    if not len(rest) or gap_closed(rel_gap(upper, lower), tol):
        lower = max(lower, upper * (1.0 - tol)) if len(rest) else upper
    elapsed = time.perf_counter() - t0
    history.append((elapsed, upper, lower))
    return fits.result(best, upper, lower, tol=tol, time_s=elapsed, time_limited=time_limited, warm_start=warm,
                       rounds=0, n_cuts=len(A), history=history, solver="enumeration")


class _CutPool:
    """Every dual point u seen so far as scaled cuts: c(S) >= max_t A_t(u) - t^2 sum_{j in S} q_j(u)."""

    def __init__(self, fits: LogisticFits, cap: int = 4000) -> None:
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


def _relaxed_u(fits: LogisticFits, cols: np.ndarray, zc: np.ndarray,
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


def _leaf_dual_bound(fits: LogisticFits, S: np.ndarray, init: tuple[dict[int, float], float] | None) -> float:
    """A lower bound on c(S) from a rough fit: weak duality at its (projected) dual point."""
    Zs = fits.Z[:, S]
    w0 = None if init is None else np.array([init[0].get(int(j), 0.0) for j in S])
    w, b, _, _ = fit_logistic(Zs, fits.yf, fits.cw, 1.0, coef_init=w0, intercept_init=0.0 if init is None else init[1],
                              tol=1e-4, max_iter=3)
    _, u = objective_and_dual(Zs, w, b, fits.yf, fits.cw)
    v = Zs.T @ u
    qS = 0.5 * float(v @ v)
    return max(a - (t * t) * qS for (a, _), t in zip(fits.cuts_a(u), SCALED_CUTS))


def branch_and_bound(fits: LogisticFits, k: int, best: np.ndarray, upper: float, tol: float, t0: float,
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
    return fits.result(best, upper, lower, tol=tol, time_s=elapsed, time_limited=time_limited, warm_start=warm,
                       rounds=n_nodes, n_cuts=len(pool.A) * len(SCALED_CUTS), history=history,
                       solver="branch_and_bound")
