"""Exact k-sparse probes as a selection method: the best k of the top-m candidate units, with a certificate.

Two selection objectives (`MilpSelector(objective=...)`):

* "squares" (default): the balanced ridge least-squares probe, solved by a compiled leaps-and-
  bounds branch and bound on the m x m Gram matrix (probebank.probing.exact.squares). It proves a
  gap <= 1e-6 for every k <= 8 over 50 SmolLM2 candidates in seconds (docs/milp.md); the
  logistic probe is then fitted on the certified support, as the paper fitted one on the
  support of its hinge-loss MILP.
* "logistic": the logistic probe's own objective (probebank.probing.exact.logistic); exact but far
  slower to prove for k >= 3 (its Boolean relaxation is weak at the probe's C = 1).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probebank.errors import ConfigError, import_extra
from probebank.probing.exact.logistic import STRATEGIES, best_subset_logistic
from probebank.probing.exact.result import MilpResult
from probebank.probing.problem import column_scaling, order_by_score
from probebank.probing.schema import DEFAULT_K_GRID, SolverReport
from probebank.probing.selection import Adaptive, FStat, MeanDiff, Selector, f_scores, mean_diff_scores

# selection objectives: the ridge least-squares probe (default, fast proofs) or the logistic probe itself
OBJECTIVES: tuple[str, ...] = ("squares", "logistic")


def candidates(X: np.ndarray, yb: np.ndarray, m: int, prefilter: str = "f_stat") -> np.ndarray:
    """The top-m units of X by a filter method (f_stat or mean_diff), best first."""
    if prefilter == "f_stat":
        scores = f_scores(X, yb)
    elif prefilter == "mean_diff":
        scores = mean_diff_scores(X, yb)
    else:
        raise ValueError(f"prefilter must be 'f_stat' or 'mean_diff', got {prefilter!r}")
    return order_by_score(scores)[:m]


class MilpSelector(Selector):
    """Exact k-sparse probes: the best k of the top-m candidate units, with a certificate.

    For every k <= k_max the support minimises the selection objective (`objective`:
    "squares", the balanced ridge least-squares probe, default; or "logistic", the balanced L2
    logistic probe itself; both with this C, on standardised units) over all k-subsets of the m
    candidates (ranked by `prefilter`), proven to within relative gap `tol` or as far as
    `time_limit` seconds per k allowed. k above k_max is not solved: those supports are the
    top k of the filter ranking (prefixes), without a report. After fit(), `reports_`
    holds a SolverReport per solved k and `results_` the full MilpResult (support as unit
    indices). Warm start (`warm_start`): the supports of mean_diff and f_stat (and adaptive
    when `warm_adaptive`) restricted to the candidates seed the incumbent and the first cuts.
    k with at most `enumerate_max` subsets of the candidates are enumerated (with pruning).
    """

    nested = False

    def __init__(self, ks: Sequence[int] = DEFAULT_K_GRID, random_state: int = 0, m: int = 50, k_max: int = 8,
                 prefilter: str = "f_stat", C: float = 1.0, tol: float | None = None, time_limit: float = 5.0,
                 warm_start: bool = True, warm_adaptive: bool = False, enumerate_max: int = 2000, threads: int = 1,
                 strategy: str = "bnb", objective: str = "squares") -> None:
        super().__init__(ks, random_state)
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
    def gap_tol(self) -> float:
        """The relative gap to prove: `tol`, or by default 1e-6 for squares (it costs the same as
        1e-4 there, bench/milp.py --tol) and 1e-4 for the logistic objective."""
        if self.tol is not None:
            return float(self.tol)
        return 1e-6 if self.objective == "squares" else 1e-4

    def check_params(self) -> None:
        self._check_params(None)
        # the `exact` extra, checked before a run loads the model: numba compiles the squares search
        if self.objective == "squares":
            import_extra("numba", "exact", "the exact best-subset search (--methods milp)")
        else:
            import_extra("highspy", "exact", "the exact logistic probe (--methods milp:objective=logistic)")

    def _check_params(self, d: int | None) -> tuple[int, int]:
        if int(self.m) != self.m or int(self.m) < 1:
            raise ConfigError(f"milp: m (number of candidate units) must be a positive integer, got {self.m!r}",
                              field="m", fix="use e.g. m=50")
        if int(self.k_max) != self.k_max or int(self.k_max) < 1:
            raise ConfigError(f"milp: k_max must be a positive integer, got {self.k_max!r}", field="k_max",
                              fix="use e.g. k_max=8")
        m = int(self.m) if d is None else min(int(self.m), d)
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
        if not (float(self.time_limit) > 0 and self.gap_tol >= 0 and float(self.C) > 0):
            raise ConfigError("milp: time_limit and C must be > 0 and tol >= 0", field="time_limit",
                              fix="use e.g. time_limit=5.0, tol=1e-4, C=1.0")
        return m, int(self.k_max)

    def _supports(self, X: np.ndarray, yb: np.ndarray, wanted: list[int]) -> dict[int, np.ndarray]:
        d = X.shape[1]
        m, k_max = self._check_params(d)
        cand = candidates(X, yb, m, self.prefilter)
        mean, scale = column_scaling(X[:, cand])
        Z = (X[:, cand] - mean) / scale
        pos_of = {int(u): i for i, u in enumerate(cand)}
        warm: dict[int, list[np.ndarray]] = {}
        exact = sorted({k for k in wanted if k <= k_max})
        if self.warm_start and exact:
            heuristics: list[Selector] = [MeanDiff(), FStat()] + ([Adaptive()] if self.warm_adaptive else [])
            for heuristic in heuristics:
                heuristic.set_params(ks=exact, random_state=self.random_state).fit(X, yb)
                for k, S in heuristic.supports_.items():
                    inside = [pos_of[int(u)] for u in S if int(u) in pos_of]
                    warm.setdefault(k, []).append(np.asarray(inside, dtype=np.int64))
        self.reports_: dict[int, SolverReport] = {}
        self.results_: dict[int, MilpResult] = {}
        out: dict[int, np.ndarray] = {}
        squares = None
        if self.objective == "squares" and exact:
            from probebank.probing.exact.squares import SquaresProblem, best_subset_squares  # lazy: imports numba

            squares = SquaresProblem(Z, yb, float(self.C))
        for k in wanted:
            if k > k_max:
                out[k] = cand[:k].copy() if k <= cand.size else order_by_score(f_scores(X, yb))[:min(k, d)]
                continue
            if squares is not None:
                res = best_subset_squares(Z, yb, k, C=float(self.C), tol=self.gap_tol,
                                          time_limit=float(self.time_limit), warm_supports=warm.get(k, []),
                                          problem=squares)
            else:
                res = best_subset_logistic(Z, yb, k, C=float(self.C), tol=self.gap_tol,
                                       time_limit=float(self.time_limit), warm_supports=warm.get(k, []),
                                       enumerate_max=int(self.enumerate_max), threads=int(self.threads),
                                       strategy=str(self.strategy))
            res.support = cand[res.support]
            self.results_[k] = res
            self.reports_[k] = res.report()
            out[k] = res.support.copy()
        return out
