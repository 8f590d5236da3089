"""The best k units for the balanced L2 logistic probe, with a proven gap (objective="logistic").

Solved by outer approximation after Bertsimas, Pauphilet and Van Parys (2021, "Sparse
classification: a scalable discrete optimization perspective"): the master problem
min eta  s.t.  eta >= A(u_t) - q(u_t)' z  for every cut t,  sum z = k,  z binary  is a small MILP
(m binaries, one continuous) solved by HiGHS (highspy), with the incumbent as objective cutoff, so
an infeasible master *is* the certificate. Supports with few subsets are enumerated instead, and
strategy="bnb" (default) replaces the HiGHS master by the branch and bound of logistic_search.
A time limit never raises: the best support found comes back with its proven gap.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from probebank.errors import import_extra
from probebank.probing.exact.logistic_fits import LogisticFits, greedy_support, swap_search
from probebank.probing.exact.logistic_search import branch_and_bound, enumerate_supports
from probebank.probing.exact.result import MilpResult, check_problem, gap_closed, rel_gap
from probebank.probing.problem import UnitsLike, balanced_sample_weight

# "bnb": branch and bound over supports (node bounds from the Boolean relaxation's dual);
# "oa": outer approximation with a HiGHS master (enumeration when there are few supports).
STRATEGIES: tuple[str, ...] = ("bnb", "oa")


def _highs() -> Any:
    """highspy (the `exact` extra), imported on first use: only exact logistic probes need it."""
    return import_extra("highspy", "exact", "the exact logistic probe (--methods milp:objective=logistic)")


def best_subset_logistic(Z: np.ndarray, y: np.ndarray, k: int, *, C: float = 1.0, tol: float = 1e-4,
                         time_limit: float = 10.0, warm_supports: Sequence[UnitsLike] = (),
                         local_search: bool = True, enumerate_max: int = 2000,
                         threads: int = 1, strategy: str = "bnb") -> MilpResult:
    """The best k columns of Z for the balanced L2 logistic probe, with a proven gap.

    Z: (n, m) standardised candidate columns; y: binary; warm_supports: heuristic supports
    (positions in Z's columns) to start from. Returns when the gap is <= tol or time_limit
    seconds have passed (then time_limited=True and the gap is what was proven).
    """
    hs = _highs()
    t0 = time.perf_counter()
    Z, yb, n, m = check_problem(Z, y, k)
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    fits = LogisticFits(Z, yb.astype(np.float64), C * balanced_sample_weight(yb))
    history: list[tuple[float, float, float]] = []

    def elapsed() -> float:
        return time.perf_counter() - t0

    # ---- incumbent: heuristics, greedy forward selection, swap local search
    starts = [np.unique(np.asarray(S, dtype=np.int64))[:k] for S in warm_supports]
    starts = [S for S in starts if S.size == k and S.min() >= 0 and S.max() < m]
    warm = bool(starts)
    starts.append(greedy_support(fits, k, m))
    upper, best = np.inf, starts[0]
    for S in starts:
        o = fits.fit(S)[0]
        if o < upper:
            upper, best = o, np.sort(S)
    if local_search and k < m:
        best = swap_search(fits, best, m, budget_s=max(0.0, min(0.25 * time_limit, time_limit - elapsed())))
        upper = fits.fit(best)[0]
    lower = 0.0  # the loss and the penalty are >= 0
    if k == m:
        lower = upper
    history.append((elapsed(), upper, lower))

    if math.comb(m, k) <= enumerate_max and not gap_closed(rel_gap(upper, lower), tol):
        return enumerate_supports(fits, k, best, upper, tol, t0, time_limit, warm, history)

    if strategy == "bnb" and not gap_closed(rel_gap(upper, lower), tol):
        return branch_and_bound(fits, k, best, upper, tol, t0, time_limit, warm, history)

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
    while not gap_closed(rel_gap(upper, lower), tol):
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

    return fits.result(best, upper, lower, tol=tol, time_s=elapsed(), time_limited=time_limited, warm_start=warm,
                       rounds=rounds, n_cuts=n_cuts, history=history)
