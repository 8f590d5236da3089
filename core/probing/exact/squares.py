"""Exact best-subset selection for the ridge least-squares probe, by branch and bound.

Problem (Z: the top-m candidate units, standardised; sw: balanced class weights; y in {0, 1}):

    min_{|S| = k}  g(S),   g(S) = min_{w, b}  C/2 * sum_i sw_i (y_i - b - Z_iS w)^2 + ||w||^2 / 2

the same weights and penalty as the logistic probe, with the squared loss (a Fisher-discriminant
style probe). With the weighted-centred Gram matrix G = Zc' W Zc, c = Zc' W yc and A = G + I/C,

    g(S) = C/2 * (T - e(S)),   e(S) = c_S' A_SS^{-1} c_S   ("explained" weighted sum of squares)

so the whole search runs on an m x m matrix, whatever the number of rows. The search is a
depth-first enumeration of supports (each support once: a node fixes F and may only add units
from the positions after its last choice), after Furnival and Wilson's leaps and bounds:

  * at a node, the residual problem after projecting out F is a Schur complement B (U x U) and a
    vector c~; adding unit j adds c~_j^2 / B_jj, and B, c~ update in O(U^2);
  * the node's remaining units are re-ordered, largest single gain c~_j^2 / B_jj first;
  * monotone bound: e(F + j + anything after j) <= e(F) + e~(suffix from j), and all U suffix
    values come from one Cholesky factorisation of the reversed B. The suffix values do not
    increase with j, so the children are a prefix: the loop stops at the first child whose
    bound cannot beat the incumbent by the tolerance;
  * the last two levels are evaluated in closed form (every single, every pair) without
    branching.

The kernel is compiled with numba and runs in slices of `NODES_PER_SLICE` nodes, so the time
limit is checked between slices and the search can resume where it stopped. On a time limit the
proven bound is the largest bound of any open child on the stack or any pruned child. Every
bound is exact arithmetic on float64 quantities of a positive definite matrix (the ridge I/C
keeps every Schur complement's pivots >= 1/C), so the certificate does not depend on a solver
tolerance.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from probebank.errors import import_extra
from probebank.probing.exact.result import MilpResult, gap_closed, rel_gap
from probebank.probing.problem import UnitsLike, balanced_sample_weight

# numba is the `exact` extra: without it this module raises MissingExtra naming `pip install 'probebank[exact]'`
njit = import_extra("numba", "exact", "the exact best-subset search (--methods milp)").njit

__all__ = ["SquaresProblem", "best_subset_squares", "NODES_PER_SLICE"]

NODES_PER_SLICE = 2000  # nodes per compiled slice; the time limit is checked between slices

# state vector slots of the resumable kernel
_LEVEL, _NODES, _BEST, _PRUNED = 0, 1, 2, 3


class SquaresProblem:
    """The Gram form of the weighted ridge least-squares probe on standardised columns Z."""

    def __init__(self, Z: np.ndarray, y: np.ndarray, C: float = 1.0) -> None:
        Z = np.asarray(Z, dtype=np.float64)
        yb = np.asarray(y, dtype=bool)
        sw = balanced_sample_weight(yb)
        wn = sw / sw.sum()
        Zc = (Z - wn @ Z) * np.sqrt(sw)[:, None]
        yf = yb.astype(np.float64)
        yc = (yf - wn @ yf) * np.sqrt(sw)
        self.C = float(C)
        self.A = Zc.T @ Zc + np.eye(Z.shape[1]) / self.C
        self.c = Zc.T @ yc
        self.total = float(yc @ yc)
        self._mean_z = wn @ Z
        self._mean_y = float(wn @ yf)

    @property
    def m(self) -> int:
        return int(self.c.size)

    def explained(self, S: UnitsLike) -> float:
        idx = np.asarray(S, dtype=np.int64)
        if idx.size == 0:
            return 0.0
        return float(self.c[idx] @ np.linalg.solve(self.A[np.ix_(idx, idx)], self.c[idx]))

    def objective(self, S: UnitsLike) -> float:
        return self.objective_of(self.explained(S))

    def objective_of(self, explained: float) -> float:
        return 0.5 * self.C * (self.total - explained)

    def coef(self, S: UnitsLike) -> tuple[np.ndarray, float]:
        idx = np.asarray(S, dtype=np.int64)
        w = np.linalg.solve(self.A[np.ix_(idx, idx)], self.c[idx])
        return w, float(self._mean_y - self._mean_z[idx] @ w)

    def gains(self, S: UnitsLike) -> tuple[float, np.ndarray]:
        """e(S) and, for every unit j, e(S + j) (-inf for j in S), from one k x k solve."""
        idx = np.asarray(S, dtype=np.int64)
        if idx.size == 0:
            return 0.0, self.c ** 2 / np.diag(self.A)
        A_SS = self.A[np.ix_(idx, idx)]
        M = np.linalg.solve(A_SS, self.A[idx])  # A_SS^-1 A_S:, (k, m)
        base = float(self.c[idx] @ np.linalg.solve(A_SS, self.c[idx]))
        resid_diag = np.diag(self.A) - np.einsum("km,km->m", self.A[idx], M)
        resid_c = self.c - M.T @ self.c[idx]
        out = base + resid_c ** 2 / np.maximum(resid_diag, 1e-300)
        out[idx] = -np.inf
        return base, out


def _greedy_swap(p: SquaresProblem, k: int, starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Forward selection, then best-improvement single swaps from it and from every start.

    Each step scores every candidate at once from the residual (Schur complement) formula.
    """
    S: list[int] = []
    for _ in range(k):
        S.append(int(np.argmax(p.gains(S)[1])))
    best_S, best_e = np.sort(np.array(S, dtype=np.int64)), p.explained(S)
    for start in [best_S] + starts:
        cur, cur_e = np.sort(start), p.explained(start)
        while True:
            move, move_e = None, cur_e * (1 + 1e-12) + 1e-300
            for pos in range(k):
                rest = np.delete(cur, pos)
                e = p.gains(rest)[1]
                e[cur[pos]] = -np.inf
                j = int(np.argmax(e))
                if e[j] > move_e:
                    move, move_e = np.sort(np.append(rest, j)), float(e[j])
            if move is None:
                break
            cur, cur_e = move, p.explained(move)
        if cur_e > best_e:
            best_S, best_e = cur, cur_e
    return best_S, best_e


@njit(cache=True)
def _prepare(Bs: np.ndarray, cs: np.ndarray, idxs: np.ndarray, sfx: np.ndarray, U: np.ndarray, base: np.ndarray,
             last: np.ndarray, nxt: np.ndarray, chosen: np.ndarray, lev: int, r: int,
             state: np.ndarray, best_sup: np.ndarray, tol: float, total: float, work: np.ndarray) -> bool:
    """Order node `lev`'s units, compute its suffix bounds; evaluate it at once when r <= 2.

    Returns True when the node has children to expand (r >= 3 and some child survives).
    """
    n = U[lev]
    B = Bs[lev]
    c = cs[lev]
    idx = idxs[lev]
    # order by single gain, largest first (insertion order into work arrays)
    gain = work[0, :n]
    for j in range(n):
        gain[j] = c[j] * c[j] / B[j, j]
    order = np.argsort(-gain)
    tmpB = work[1:1 + n, :n]
    for a in range(n):
        for b in range(n):
            tmpB[a, b] = B[order[a], order[b]]
    for a in range(n):
        for b in range(n):
            B[a, b] = tmpB[a, b]
    tc = work[1 + n, :n]
    ti = np.empty(n, dtype=np.int64)
    for a in range(n):
        tc[a] = c[order[a]]
        ti[a] = idx[order[a]]
    for a in range(n):
        c[a] = tc[a]
        idx[a] = ti[a]
    # suffix bounds: Cholesky of the reversed matrix; prefix sums of the solved vector
    L = tmpB  # reuse as workspace (n x n)
    for a in range(n):
        for b in range(a + 1):
            s = B[n - 1 - a, n - 1 - b]
            for t in range(b):
                s -= L[a, t] * L[b, t]
            if a == b:
                L[a, a] = np.sqrt(s) if s > 0.0 else 1e-300
            else:
                L[a, b] = s / L[b, b]
    acc = 0.0
    for a in range(n):
        s = c[n - 1 - a]
        for t in range(a):
            s -= L[a, t] * tc[t]
        tc[a] = s / L[a, a]
        acc += tc[a] * tc[a]
        sfx[lev, n - 1 - a] = acc
    best = state[_BEST]
    cut = best + tol * (total - best)
    hi = n - r
    lst = -1
    for j in range(hi + 1):
        if base[lev] + sfx[lev, j] > cut:
            lst = j
        else:
            if base[lev] + sfx[lev, j] > state[_PRUNED]:
                state[_PRUNED] = base[lev] + sfx[lev, j]
            break
    last[lev] = lst
    nxt[lev] = 0
    if lst < 0:
        return False
    if r == 1:
        for j in range(lst + 1):
            e = base[lev] + c[j] * c[j] / B[j, j]
            if e > state[_BEST]:
                state[_BEST] = e
                for t in range(lev):
                    best_sup[t] = chosen[t]
                best_sup[lev] = idx[j]
        return False
    if r == 2:
        for i in range(lst + 1):
            bii = B[i, i]
            for j in range(i + 1, n):
                bjj = B[j, j]
                bij = B[i, j]
                den = bii * bjj - bij * bij
                if den <= 0.0:
                    continue
                e = base[lev] + (c[i] * c[i] * bjj - 2.0 * c[i] * c[j] * bij + c[j] * c[j] * bii) / den
                if e > state[_BEST]:
                    state[_BEST] = e
                    for t in range(lev):
                        best_sup[t] = chosen[t]
                    best_sup[lev] = idx[i]
                    best_sup[lev + 1] = idx[j]
        return False
    return True


@njit(cache=True)
def _search(Bs: np.ndarray, cs: np.ndarray, idxs: np.ndarray, sfx: np.ndarray, U: np.ndarray, base: np.ndarray,
            last: np.ndarray, nxt: np.ndarray, chosen: np.ndarray, k: int,
            state: np.ndarray, best_sup: np.ndarray, tol: float, total: float, work: np.ndarray, budget: int) -> int:
    """Run the depth-first search for up to `budget` nodes from the saved stack. 1 = finished."""
    lev = int(state[_LEVEL])
    done = 0
    while lev >= 0:
        if done >= budget:
            state[_LEVEL] = lev
            return 0
        j = nxt[lev]
        best = state[_BEST]
        cut = best + tol * (total - best)
        if j > last[lev] or base[lev] + sfx[lev, j] <= cut:
            if j <= last[lev] and base[lev] + sfx[lev, j] > state[_PRUNED]:
                state[_PRUNED] = base[lev] + sfx[lev, j]
            lev -= 1
            continue
        nxt[lev] = j + 1
        # child: add position j, keep positions after it
        n = U[lev]
        B = Bs[lev]
        c = cs[lev]
        bj = B[j, j]
        cj = c[j]
        m2 = n - j - 1
        B2 = Bs[lev + 1]
        c2 = cs[lev + 1]
        for a in range(m2):
            fa = B[j + 1 + a, j] / bj
            c2[a] = c[j + 1 + a] - fa * cj
            idxs[lev + 1, a] = idxs[lev, j + 1 + a]
            for b in range(m2):
                B2[a, b] = B[j + 1 + a, j + 1 + b] - fa * B[j, j + 1 + b]
        U[lev + 1] = m2
        base[lev + 1] = base[lev] + cj * cj / bj
        chosen[lev] = idxs[lev, j]
        done += 1
        state[_NODES] += 1
        if _prepare(Bs, cs, idxs, sfx, U, base, last, nxt, chosen, lev + 1, k - lev - 1, state, best_sup, tol,
                    total, work):
            lev += 1
    state[_LEVEL] = -1
    return 1


def _open_bound(sfx: np.ndarray, base: np.ndarray, last: np.ndarray, nxt: np.ndarray, level: int) -> float:
    """Largest bound of a child still on the stack (not yet explored)."""
    out = -np.inf
    for lev in range(level + 1):
        j = int(nxt[lev])
        if j <= last[lev]:
            out = max(out, float(base[lev] + sfx[lev, j]))
    return out


def best_subset_squares(Z: np.ndarray, y: np.ndarray, k: int, *, C: float = 1.0, tol: float = 1e-4,
                        time_limit: float = 10.0, warm_supports: Sequence[UnitsLike] = (),
                        problem: SquaresProblem | None = None) -> MilpResult:
    """The best k columns of Z for the balanced ridge least-squares probe, with a proven gap.

    Returns a probebank.probing.exact.result.MilpResult (solver "leaps-bnb"); `rounds` counts search nodes.
    """

    t0 = time.perf_counter()
    p = problem if problem is not None else SquaresProblem(Z, y, C)
    m = p.m
    if not 1 <= k <= m:
        raise ValueError(f"k must be between 1 and the number of candidates ({m}), got {k}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    starts = [np.unique(np.asarray(S, dtype=np.int64))[:k] for S in warm_supports]
    starts = [S for S in starts if S.size == k and S.min() >= 0 and S.max() < m]
    inc, inc_e = _greedy_swap(p, k, starts)

    Bs = np.zeros((k + 1, m, m))
    cs = np.zeros((k + 1, m))
    idxs = np.zeros((k + 1, m), dtype=np.int64)
    sfx = np.zeros((k + 1, m))
    U = np.zeros(k + 1, dtype=np.int64)
    base = np.zeros(k + 1)
    last = np.full(k + 1, -1, dtype=np.int64)
    nxt = np.zeros(k + 1, dtype=np.int64)
    chosen = np.zeros(k + 1, dtype=np.int64)
    work = np.zeros((m + 2, m))
    best_sup = np.full(k, -1, dtype=np.int64)
    state = np.array([0.0, 0.0, inc_e, -np.inf])
    Bs[0] = p.A
    cs[0] = p.c
    idxs[0] = np.arange(m)
    U[0] = m
    finished = not _prepare(Bs, cs, idxs, sfx, U, base, last, nxt, chosen, 0, k, state, best_sup, float(tol),
                            p.total, work)
    while not finished:
        finished = bool(_search(Bs, cs, idxs, sfx, U, base, last, nxt, chosen, k, state, best_sup, float(tol),
                                p.total, work, NODES_PER_SLICE))
        if not finished and time.perf_counter() - t0 >= time_limit:
            break
    if best_sup[0] >= 0 and state[_BEST] > inc_e:
        inc = np.sort(best_sup.copy())
    best_e = p.explained(inc)  # recomputed directly: the reported objective is the support's own
    upper_e = max(best_e, float(state[_PRUNED]))
    if not finished:
        upper_e = max(upper_e, _open_bound(sfx, base, last, nxt, int(state[_LEVEL])))
    objective = p.objective_of(best_e)
    bound = max(0.0, p.objective_of(upper_e))
    gap = rel_gap(objective, bound)
    w, b = p.coef(inc)
    order = np.argsort(-np.abs(w), kind="stable")
    return MilpResult(support=inc[order], coef=w[order], intercept=b, objective=objective, bound=bound, gap=gap,
                      time_s=time.perf_counter() - t0, time_limited=not finished,
                      status="optimal" if finished or gap_closed(gap, tol) else "time_limit",
                      n_candidates=m, warm_start=bool(starts), rounds=int(state[_NODES]), solver="leaps-bnb")
