"""Heuristics against the optimum: the selection objective of any support, and whether mean_diff / f_stat / adaptive already found the certified support.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probebank.probing.exact.logistic_fits import LogisticFits
from probebank.probing.exact.result import gap_closed, rel_gap
from probebank.probing.exact.selector import MilpSelector
from probebank.probing.methods import get_selector
from probebank.probing.problem import UnitsLike, balanced_sample_weight, check_xy, column_scaling


def probe_objective(X: np.ndarray, yb: np.ndarray, units: UnitsLike, C: float = 1.0,
                    objective: str = "logistic") -> float:
    """The selection objective on `units` (standardised), as the exact solver minimises it."""
    cols = np.asarray(units, dtype=np.int64)
    mean, scale = column_scaling(X[:, cols])
    Z = (X[:, cols] - mean) / scale
    if objective == "squares":
        from probebank.probing.exact.squares import SquaresProblem

        return SquaresProblem(Z, yb, C).objective(np.arange(cols.size))
    return LogisticFits(Z, yb.astype(np.float64), C * balanced_sample_weight(yb)).fit(np.arange(cols.size))[0]


def heuristic_matches(X: np.ndarray, y: np.ndarray, selector: MilpSelector,
                      methods: Sequence[str] = ("mean_diff", "f_stat", "adaptive"),
                      seed: int = 0) -> dict[int, dict[str, dict[str, Any]]]:
    """For each k the selector solved: did each heuristic already find the optimal support?

    Returns {k: {method: {"same_support", "objective", "as_good", "certified"}}}:
    same_support is set equality with the MILP's support; as_good means the heuristic's
    probe objective is no worse than the MILP's best support (within tol; ties count);
    certified means it is moreover proven optimal: objective - bound <= tol * objective,
    which needs the MILP to have closed its gap. Call after selector.fit(X, y).
    """
    X, yb = check_xy(X, y)
    if not getattr(selector, "results_", None):
        raise ValueError("call selector.fit(X, y) first: it has no solved k yet")
    ks = sorted(selector.results_)
    tol = selector.gap_tol
    out: dict[int, dict[str, dict[str, Any]]] = {k: {} for k in ks}
    for name in methods:
        sup = get_selector(name, ks=ks, random_state=seed).fit(X, yb).supports_
        for k in ks:
            res = selector.results_[k]
            obj = probe_objective(X, yb, sup[k], float(selector.C), str(selector.objective))
            as_good = obj <= res.objective + tol * abs(res.objective) + 1e-9
            certified = as_good and gap_closed(rel_gap(obj, res.bound), tol)
            out[k][name] = {"same_support": set(map(int, sup[k])) == set(map(int, res.support)),
                            "objective": obj, "as_good": bool(as_good), "certified": bool(certified)}
    return out
