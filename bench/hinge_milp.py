"""The textbook k-sparse hinge MILP the paper solved (big-M links, one HiGHS solve): the speed baseline of bench/milp.py."""
from __future__ import annotations

import time

import numpy as np

from probebank.probing.exact.logistic import _highs
from probebank.probing.exact.result import MilpResult, check_problem, rel_gap
from probebank.probing.problem import balanced_sample_weight


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
    Z, yb, n, m = check_problem(Z, y, k)
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
    gap = rel_gap(obj, bound) if np.isfinite(obj) else float("inf")
    return MilpResult(support=support, coef=w[support], intercept=float(x[m]), objective=obj, bound=bound, gap=gap,
                      time_s=time.perf_counter() - t0, time_limited=status == "Time limit reached",
                      status="optimal" if status == "Optimal" else status.lower().replace(" ", "_"),
                      n_candidates=m, warm_start=False)
