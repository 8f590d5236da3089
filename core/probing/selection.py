"""Selection methods: which k units (neurons, or latents of any basis) to probe.

Every method is a scikit-learn estimator (`Selector`): its settings are constructor parameters,
stored unchanged (so `get_params`, `set_params`, `clone` and `GridSearchCV` work), among them
`ks`, the k grid, and `random_state`, the seed of any randomness; `fit(X, y)` sets `supports_`,
one support per k, best unit first. Ranking methods implement `_rank` (every unit, best first;
fit also sets `ranking_`, and score methods `scores_`) and get nested supports for free;
`adaptive` and `milp` override `_supports`, because their support for k is not a prefix of one
ranking. Registry names (probebank.probing.methods): mean_diff, f_stat, mutual_info, l1,
adaptive, random, milp.

X is (n_rows, n_units) float (float32 from an fp16 store is fine: sums run in float64);
y is binary 0/1 with both classes present. Ties are broken by the lower unit index, NaN
scores rank last, and every method returns valid, distinct unit indices.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression

from probebank.errors import ConfigError
from probebank.probing.problem import balanced_sample_weight, check_ks, check_xy, column_scaling, order_by_score
from probebank.probing.schema import DEFAULT_K_GRID

RUN_PARAMS = ("ks", "random_state")  # set per sweep from the run's k grid and seed, recorded as k and seed


def method_params(selector: BaseEstimator) -> dict[str, Any]:
    """A selector's settings as records keep them (the k grid and seed are recorded per record)."""
    return {k: v for k, v in selector.get_params(deep=False).items() if k not in RUN_PARAMS}


class Selector(BaseEstimator):
    """Base class of the selection methods: `fit(X, y)` sets `supports_` = {k: unit indices, best first}.

    k above the number of units is capped (the support is then every unit). Subclasses either
    implement `_rank` (nested supports; fit also sets `ranking_`) or override `_supports`. A
    subclass with settings of its own lists `ks` and `random_state` first in its constructor.
    """

    nested: ClassVar[bool] = True  # supports are prefixes of one ranking

    def __init__(self, ks: Sequence[int] = DEFAULT_K_GRID, random_state: int = 0) -> None:
        self.ks = ks
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Selector:
        X, yb = self._check_xy(X, y)
        self.supports_ = self._supports(X, yb, check_ks(self.ks))
        self.n_units_ = int(X.shape[1])
        return self

    def _check_xy(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """The problem as arrays: two classes, y as booleans (True = positive)."""
        return check_xy(X, y)

    @property
    def seed_(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _supports(self, X: np.ndarray, yb: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
        self.ranking_ = np.asarray(self._rank(X, yb), dtype=np.int64)
        d = X.shape[1]
        return {k: self.ranking_[:min(k, d)].copy() for k in ks}

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        """All unit indices, best first."""
        raise NotImplementedError(f"{type(self).__name__} does not rank units")

    def check_params(self) -> None:
        """Raise ConfigError for settings that can never work (called before a run loads anything)."""


class ScoreSelector(Selector):
    """A ranking method defined by one score per unit (higher is better); fit sets `scores_`."""

    def _scores(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        self.scores_ = self._scores(X, yb)
        return order_by_score(self.scores_)


def mean_diff_scores(X: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """|mean(pos) - mean(neg)| per unit, in float64."""
    return np.abs(X[yb].mean(axis=0, dtype=np.float64) - X[~yb].mean(axis=0, dtype=np.float64))


def f_scores(X: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Two-class ANOVA F per unit, in float64 with centred (two-pass) sums; constant units -> 0.

    Same statistic as sklearn's f_classif, which uses one-pass sums in the input dtype:
    on fp16-origin float32 units with a large offset that cancels catastrophically (it
    returned F = -398 for a constant unit at 300.0).
    """
    n = yb.size
    n_pos = int(yb.sum())
    Xp = np.asarray(X[yb], dtype=np.float64)
    Xn = np.asarray(X[~yb], dtype=np.float64)
    m_pos = Xp.mean(axis=0)
    m_neg = Xn.mean(axis=0)
    m_all = (n_pos * m_pos + (n - n_pos) * m_neg) / n
    Xp -= m_pos
    Xn -= m_neg
    ss_within = np.einsum("ij,ij->j", Xp, Xp) + np.einsum("ij,ij->j", Xn, Xn)
    ss_between = n_pos * (m_pos - m_all) ** 2 + (n - n_pos) * (m_neg - m_all) ** 2
    # Noise floor: what rounding alone leaves in a constant unit of this magnitude.
    floor = n * (10.0 * np.finfo(np.float64).eps * np.maximum(np.abs(m_all), 1.0)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = ss_between / (ss_within / (n - 2))
    f = np.where(ss_between + ss_within <= floor, 0.0, f)  # constant unit
    f = np.where(ss_within <= floor, np.where(ss_between > floor, np.finfo(np.float64).max, 0.0), f)
    return np.nan_to_num(f, nan=0.0, posinf=np.finfo(np.float64).max)


def top_by_f(X: np.ndarray, yb: np.ndarray, size: int | None) -> np.ndarray:
    """The top `size` units by F-statistic (all units, best first, when size is None)."""
    order = order_by_score(f_scores(X, yb))
    return order if size is None else order[:size]


class MeanDiff(ScoreSelector):
    """|mean(pos) - mean(neg)| per unit: the paper's default ranking.

    Computed on the raw activations, as in Gurnee et al. (their default run does not
    normalise): it therefore favours high-variance units. That is the paper's behaviour on
    purpose; `f_stat` is the scale-free alternative.
    """

    def _scores(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return mean_diff_scores(X, yb)


class FStat(ScoreSelector):
    """ANOVA F-statistic per unit (as sklearn f_classif, computed stably); constant units score 0."""

    def _scores(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return f_scores(X, yb)


class MutualInfo(Selector):
    """Mutual information with the label (sklearn mutual_info_classif, kNN estimator, seeded).

    sklearn's kNN estimator costs ~3 ms per unit at 600 rows (~5 s for a 1536-unit layer),
    so only the top `prefilter` units by F-statistic are scored (the rest follow in F
    order), on at most `max_rows` rows drawn per class in proportion (seeded).
    prefilter=None / max_rows=None disable either cut.
    """

    def __init__(self, ks: Sequence[int] = DEFAULT_K_GRID, random_state: int = 0, prefilter: int | None = 256,
                 max_rows: int | None = 3000, n_neighbors: int = 3) -> None:
        super().__init__(ks, random_state)
        self.prefilter = prefilter
        self.max_rows = max_rows
        self.n_neighbors = n_neighbors

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        by_f = self._f_order(X, yb)
        cand = by_f if self.prefilter is None else by_f[: self.prefilter]
        rows = np.arange(X.shape[0])
        if self.max_rows is not None and X.shape[0] > self.max_rows:
            rows = np.sort(self._sample_rows(yb, np.random.default_rng(self.seed_)))
        Xs = np.asarray(X[np.ix_(rows, cand)], dtype=np.float64)
        mi = self._mutual_info(Xs, yb[rows])
        # sklearn jitters constant units with tiny noise, which can score above zero.
        mi[np.ptp(Xs, axis=0) == 0] = -np.inf
        top = cand[order_by_score(mi)]
        rest = by_f[np.isin(by_f, cand, invert=True)]
        return np.concatenate([top, rest])

    # What differs for a real-valued y (probebank.probing.regression.MutualInfoRegression):
    def _f_order(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return top_by_f(X, yb, None)

    def _sample_rows(self, yb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`max_rows` rows, drawn per class in proportion."""
        frac = (self.max_rows or yb.size) / yb.size
        return np.concatenate([rng.permutation(np.flatnonzero(yb == c))[: max(2, int(round(frac * (yb == c).sum())))]
                               for c in (False, True)])

    def _mutual_info(self, Xs: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.asarray(mutual_info_classif(Xs, yb.astype(np.int64), discrete_features=False,
                                              n_neighbors=self.n_neighbors, random_state=self.seed_ % (2**32)))


class L1Path(Selector):
    """Rank units by when they enter an L1-regularised logistic regression path.

    On standardised columns with balanced class weights, C grows geometrically (x `growth`)
    from the smallest C with a non-zero coefficient, C_min = 1 / max_j |grad_j(0)|, until
    as many units as the largest k of the grid are active (or `max_fits` fits). A unit's
    rank is the first C at which it is active; units entering at the same C are ordered by
    |coef|, and units that never enter follow by |grad_j(0)| (their pull at the origin).
    Fits use liblinear (~10-100 ms each). `prefilter` keeps the top units by F-statistic
    (512 by default, as the paper filters to 512 before its rankings, there by mean
    difference; F is scale-free, like the standardised L1 fit; None = all units).
    """

    def __init__(self, ks: Sequence[int] = DEFAULT_K_GRID, random_state: int = 0, prefilter: int | None = 512,
                 growth: float = 1.25, max_fits: int = 40, tol: float = 1e-4) -> None:
        super().__init__(ks, random_state)
        self.prefilter = prefilter
        self.growth = growth
        self.max_fits = max_fits
        self.tol = tol

    def check_params(self) -> None:
        if not float(self.growth) > 1.0:
            raise ConfigError(f"l1: growth must be > 1, got {self.growth!r}", field="growth", fix="use e.g. growth=1.25")

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        self.check_params()
        k_max = max(check_ks(self.ks))
        by_f = top_by_f(X, yb, None)
        cand = by_f if self.prefilter is None else by_f[: self.prefilter]
        mean, scale = column_scaling(X[:, cand])
        Z = (X[:, cand] - mean) / scale
        sw = balanced_sample_weight(yb)
        # At w = 0 the balanced intercept gives p = 1/2 for every row.
        pull = np.abs(Z.T @ (sw * (0.5 - yb)))
        target = min(k_max, cand.size)
        entry = np.full(cand.size, np.inf)  # step at which each unit first became active
        tiebreak = np.zeros(cand.size)  # |coef| at that step
        if pull.max() > 0:
            C = 1.0 / pull.max()
            for step in range(self.max_fits):
                C *= self.growth
                lr = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, class_weight="balanced",
                                        intercept_scaling=10.0, tol=self.tol, max_iter=1000,
                                        random_state=self.seed_ % (2**32))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    lr.fit(Z, yb)
                coef = np.abs(lr.coef_[0])
                new = (coef > 0) & ~np.isfinite(entry)
                entry[new] = step
                tiebreak[new] = coef[new]
                if np.isfinite(entry).sum() >= target:
                    break
        # lexsort: last key is primary -> entry step, then -|coef|, then -pull, then index.
        ordered = np.lexsort((np.arange(cand.size), -pull, -tiebreak, entry))
        top = cand[ordered]
        rest = by_f[np.isin(by_f, cand, invert=True)]
        return np.concatenate([top, rest]).astype(np.int64)


class Adaptive(Selector):
    """The paper's adaptive thresholding ("telescopic" sweep).

    Start from the top `start` units by mean difference (at least the largest k), fit an
    elastic-net logistic regression (saga, balanced, standardised columns) on the current
    support, keep the top k by |coef| for the largest k, refit on that support to pick the
    next smaller k, and so on down the grid. C and l1_ratio default to the paper's schedule
    for a fit on m units: C = m / 20 and l1_ratio = clip(exp(-m / 20), 0.1, 0.9); give
    numbers to fix them. Supports are not nested in general.
    """

    nested: ClassVar[bool] = False

    def __init__(self, ks: Sequence[int] = DEFAULT_K_GRID, random_state: int = 0, start: int = 256,
                 C: float | None = None, l1_ratio: float | None = None, max_iter: int = 1000,
                 tol: float = 1e-3) -> None:
        super().__init__(ks, random_state)
        self.start = start
        self.C = C
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol

    def _fit_abs_coef(self, Z: np.ndarray, yb: np.ndarray) -> np.ndarray:
        m = Z.shape[1]
        C = self.C if self.C is not None else m / 20.0
        l1 = self.l1_ratio if self.l1_ratio is not None else float(np.clip(np.exp(-m / 20.0), 0.1, 0.9))
        lr = LogisticRegression(C=C, l1_ratio=l1, solver="saga", class_weight="balanced",
                                max_iter=self.max_iter, tol=self.tol, random_state=self.seed_ % (2**32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit(Z, yb)
        return np.abs(lr.coef_[0])

    def _supports(self, X: np.ndarray, yb: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
        d = X.shape[1]
        capped = sorted({min(k, d) for k in ks}, reverse=True)
        start = min(d, max(self.start, capped[0]))
        cols = order_by_score(mean_diff_scores(X, yb))[:start]
        mean, scale = column_scaling(X[:, cols])
        Z = (X[:, cols] - mean) / scale
        pos = np.arange(start)  # the current support, as positions in cols
        coef = self._fit_abs_coef(Z, yb)
        out: dict[int, np.ndarray] = {}
        for i, k in enumerate(capped):
            # Stable sort on -|coef| keeps the previous order among zero coefficients.
            keep = np.argsort(-coef, kind="stable")[:k]
            pruned = k < pos.size
            pos, coef = pos[keep], coef[keep]
            out[k] = cols[pos]
            if pruned and i + 1 < len(capped):  # refit on the new support to rank the next k
                coef = self._fit_abs_coef(Z[:, pos], yb)
        return {k: out[min(k, d)].copy() for k in ks}


class RandomUnits(Selector):
    """Seeded random units: the control a real method must beat."""

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.random.default_rng(self.seed_).permutation(X.shape[1]).astype(np.int64)
