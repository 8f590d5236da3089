"""One exact solve: the support, its objective, the proven bound and gap (shared by every objective).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from probebank.probing.schema import SolverReport


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


def rel_gap(upper: float, lower: float) -> float:
    return max(0.0, (upper - lower) / max(abs(upper), 1e-12))


def check_problem(Z: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(Z as float64, y as bool, n, m) after checking 1 <= k <= m (shared by the exact solvers)."""
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    yb = np.asarray(y, dtype=bool)
    n, m = Z.shape
    if not 1 <= k <= m:
        raise ValueError(f"k must be between 1 and the number of candidates ({m}), got {k}")
    return Z, yb, n, m


def gap_closed(gap: float, tol: float) -> bool:
    return gap <= tol * (1.0 + 1e-9) + 1e-15  # the cutoff proof gives gap == tol up to rounding
