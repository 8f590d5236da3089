"""Selection methods: which k units (neurons, or latents of any basis) to probe.

A `Selector` maps (X, y, k grid, seed) to one support per k, best unit first. Ranking
methods implement `rank` (every unit, best first) and get nested supports for free;
`adaptive` overrides `supports`, because its support for k depends on the fit at the larger
k before it. Selectors follow the scikit-learn estimator contract (constructor stores its
parameters unchanged, `get_params` / `set_params` / `clone` work), so a probe can hold one
as a parameter. Registry names (see probebank_plugins.methods): mean_diff, f_stat,
mutual_info, l1, adaptive, random.

X is (n_rows, n_units) float (float32 from an fp16 store is fine: sums run in float64);
y is binary 0/1 with both classes present. Ties are broken by the lower unit index, NaN
scores rank last, and every method returns valid, distinct unit indices.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression

__all__ = [
    "Selector", "ScoreSelector", "MeanDiff", "FStat", "MutualInfo", "L1Path", "Adaptive",
    "RandomUnits", "BUILTIN_SELECTORS", "get_selector", "check_xy", "column_scaling",
    "balanced_sample_weight",
]


# ---------------------------------------------------------------- shared helpers

def check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a probing problem: 2-D finite float X, binary 0/1 y with both classes.

    Returns X as a float array (float32 kept, no copy when possible) and y as bool.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, units), got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    if X.shape[1] == 0:
        raise ValueError("X has no units (0 columns)")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf; clean the activations before probing "
                         "(an fp16 overflow shows up as inf)")
    yb = np.asarray(y)
    if yb.ndim != 1 or yb.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}), got shape {yb.shape}")
    if yb.dtype != bool:
        if not np.isin(yb, (0, 1)).all():
            raise ValueError("y must be binary 0/1 (1 = the feature is present)")
        yb = yb.astype(bool)
    n_pos = int(yb.sum())
    if n_pos == 0 or n_pos == yb.size:
        raise ValueError("y must contain both classes (0 and 1)")
    return X, yb


def column_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale (population std, 1 for constant columns), in float64.

    Same convention as sklearn's StandardScaler, so (X - mean) / scale matches it.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    var = X.var(axis=0, dtype=np.float64)
    scale = np.sqrt(var)
    # A column is constant when its std is at rounding level relative to its magnitude.
    tiny = scale <= 10.0 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[tiny] = 1.0
    return mean, scale


def balanced_sample_weight(y: np.ndarray) -> np.ndarray:
    """sklearn's class_weight='balanced' as per-row weights: n / (2 * n_class)."""
    yb = np.asarray(y, dtype=bool)
    n_pos = yb.sum()
    n = yb.size
    return np.where(yb, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))


def _order(scores: np.ndarray) -> np.ndarray:
    """Unit indices by descending score; NaN last; ties by ascending index."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    return np.argsort(-s, kind="stable").astype(np.int64)


def _check_ks(ks: Sequence[int]) -> list[int]:
    out = []
    for k in ks:
        if int(k) != k or int(k) < 1:
            raise ValueError(f"every k must be a positive integer, got {k!r}")
        out.append(int(k))
    if not out:
        raise ValueError("the k grid is empty")
    return out


# ---------------------------------------------------------------- base classes

class Selector(BaseEstimator):
    """Base class: `supports(X, y, ks, seed)` -> {k: unit indices, best first}.

    k above the number of units is capped (the support is then every unit). Subclasses
    either implement `rank` (nested supports) or override `supports`.
    """

    nested: ClassVar[bool] = True  # supports are prefixes of one ranking

    def supports(self, X: np.ndarray, y: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, np.ndarray]:
        X, yb = check_xy(X, y)
        ks = _check_ks(ks)
        order = np.asarray(self.rank(X, yb, seed), dtype=np.int64)
        d = X.shape[1]
        return {k: order[:min(k, d)].copy() for k in ks}

    def rank(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        """All unit indices, best first."""
        raise NotImplementedError(f"{type(self).__name__} does not rank units; call supports()")


class ScoreSelector(Selector):
    """A ranking method defined by one score per unit (higher is better)."""

    def scores(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    def rank(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X, yb = check_xy(X, y)
        return _order(self.scores(X, yb, seed))


# ---------------------------------------------------------------- methods

def _mean_diff(X: np.ndarray, yb: np.ndarray) -> np.ndarray:
    return np.abs(X[yb].mean(axis=0, dtype=np.float64) - X[~yb].mean(axis=0, dtype=np.float64))


def _f_scores(X: np.ndarray, yb: np.ndarray) -> np.ndarray:
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


def _prefilter(X: np.ndarray, yb: np.ndarray, size: int | None) -> np.ndarray:
    """The top `size` units by F-statistic (all units, best first, when size is None)."""
    order = _order(_f_scores(X, yb))
    return order if size is None else order[:size]


class MeanDiff(ScoreSelector):
    """|mean(pos) - mean(neg)| per unit: the paper's default ranking.

    Computed on the raw activations, as in Gurnee et al. (their default run does not
    normalise): it therefore favours high-variance units. That is the paper's behaviour on
    purpose; `f_stat` is the scale-free alternative.
    """

    def scores(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X, yb = check_xy(X, y)
        return _mean_diff(X, yb)


class FStat(ScoreSelector):
    """ANOVA F-statistic per unit (as sklearn f_classif, computed stably); constant units score 0."""

    def scores(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X, yb = check_xy(X, y)
        return _f_scores(X, yb)


class MutualInfo(ScoreSelector):
    """Mutual information with the label (sklearn mutual_info_classif, kNN estimator, seeded).

    sklearn's kNN estimator costs ~3 ms per unit at 600 rows (~5 s for a 1536-unit layer),
    so only the top `prefilter` units by F-statistic are scored (the rest follow in F
    order), on at most `max_rows` rows drawn per class in proportion (seeded).
    prefilter=None / max_rows=None disable either cut.
    """

    def __init__(self, prefilter: int | None = 256, max_rows: int | None = 3000, n_neighbors: int = 3) -> None:
        self.prefilter = prefilter
        self.max_rows = max_rows
        self.n_neighbors = n_neighbors

    def rank(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X, yb = check_xy(X, y)
        by_f = _prefilter(X, yb, None)
        cand = by_f if self.prefilter is None else by_f[: self.prefilter]
        rows = np.arange(X.shape[0])
        rng = np.random.default_rng(seed)
        if self.max_rows is not None and X.shape[0] > self.max_rows:
            frac = self.max_rows / X.shape[0]
            parts = [rng.permutation(np.flatnonzero(yb == c))[: max(2, int(round(frac * (yb == c).sum())))]
                     for c in (False, True)]
            rows = np.sort(np.concatenate(parts))
        Xs = np.asarray(X[np.ix_(rows, cand)], dtype=np.float64)
        mi = mutual_info_classif(Xs, yb[rows].astype(np.int64), discrete_features=False,
                                 n_neighbors=self.n_neighbors, random_state=int(seed) % (2**32))
        # sklearn jitters constant units with tiny noise, which can score above zero.
        mi[np.ptp(Xs, axis=0) == 0] = -np.inf
        top = cand[_order(mi)]
        rest = by_f[np.isin(by_f, cand, invert=True)]
        return np.concatenate([top, rest])

    def scores(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        raise NotImplementedError("MutualInfo scores only the prefiltered units; use rank()")


class L1Path(Selector):
    """Rank units by when they enter an L1-regularised logistic regression path.

    On standardised columns with balanced class weights, C grows geometrically (x `growth`)
    from the smallest C with a non-zero coefficient, C_min = 1 / max_j |grad_j(0)|, until
    as many units as the largest requested k are active (or `max_fits` fits). A unit's
    rank is the first C at which it is active; units entering at the same C are ordered by
    |coef|, and units that never enter follow by |grad_j(0)| (their pull at the origin).
    Fits use liblinear (~10-100 ms each). `prefilter` keeps the top units by F-statistic
    (512 by default, as the paper filters to 512 before its rankings, there by mean
    difference; F is scale-free, like the standardised L1 fit; None = all units).
    """

    def __init__(self, prefilter: int | None = 512, growth: float = 1.25, max_fits: int = 40,
                 tol: float = 1e-4) -> None:
        self.prefilter = prefilter
        self.growth = growth
        self.max_fits = max_fits
        self.tol = tol

    def supports(self, X: np.ndarray, y: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, np.ndarray]:
        X, yb = check_xy(X, y)
        ks = _check_ks(ks)
        order = self._rank(X, yb, max(ks), seed)
        d = X.shape[1]
        return {k: order[:min(k, d)].copy() for k in ks}

    def rank(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X, yb = check_xy(X, y)
        return self._rank(X, yb, X.shape[1], seed)

    def _rank(self, X: np.ndarray, yb: np.ndarray, k_max: int, seed: int) -> np.ndarray:
        if self.growth <= 1.0:
            raise ValueError("growth must be > 1")
        by_f = _prefilter(X, yb, None)
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
                                        random_state=int(seed) % (2**32))
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

    def __init__(self, start: int = 256, C: float | None = None, l1_ratio: float | None = None,
                 max_iter: int = 1000, tol: float = 1e-3) -> None:
        self.start = start
        self.C = C
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol

    def _fit_abs_coef(self, Z: np.ndarray, yb: np.ndarray, seed: int) -> np.ndarray:
        m = Z.shape[1]
        C = self.C if self.C is not None else m / 20.0
        l1 = self.l1_ratio if self.l1_ratio is not None else float(np.clip(np.exp(-m / 20.0), 0.1, 0.9))
        lr = LogisticRegression(C=C, l1_ratio=l1, solver="saga", class_weight="balanced",
                                max_iter=self.max_iter, tol=self.tol, random_state=int(seed) % (2**32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit(Z, yb)
        return np.abs(lr.coef_[0])

    def supports(self, X: np.ndarray, y: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, np.ndarray]:
        X, yb = check_xy(X, y)
        d = X.shape[1]
        wanted = _check_ks(ks)
        capped = sorted({min(k, d) for k in wanted}, reverse=True)
        start = min(d, max(self.start, capped[0]))
        cols = _order(_mean_diff(X, yb))[:start]
        mean, scale = column_scaling(X[:, cols])
        Z = (X[:, cols] - mean) / scale
        pos = np.arange(start)  # the current support, as positions in cols
        coef = self._fit_abs_coef(Z, yb, seed)
        out: dict[int, np.ndarray] = {}
        for i, k in enumerate(capped):
            # Stable sort on -|coef| keeps the previous order among zero coefficients.
            keep = np.argsort(-coef, kind="stable")[:k]
            pruned = k < pos.size
            pos, coef = pos[keep], coef[keep]
            out[k] = cols[pos]
            if pruned and i + 1 < len(capped):  # refit on the new support to rank the next k
                coef = self._fit_abs_coef(Z[:, pos], yb, seed)
        return {k: out[min(k, d)].copy() for k in wanted}


class RandomUnits(Selector):
    """Seeded random units: the control a real method must beat."""

    def rank(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
        X = np.asarray(X)
        return np.random.default_rng(seed).permutation(X.shape[1]).astype(np.int64)


BUILTIN_SELECTORS: dict[str, type[Selector]] = {
    "mean_diff": MeanDiff,
    "f_stat": FStat,
    "mutual_info": MutualInfo,
    "l1": L1Path,
    "adaptive": Adaptive,
    "random": RandomUnits,
}


# ---------------------------------------------------------------- lookup

_warned_fallback = False


def _method_table() -> dict[str, Callable[..., Any]]:
    """Methods registered through the plugin hooks (third-party ones and overrides included).

    If the plugin system itself cannot be imported (e.g. a built-in plugin's optional
    dependency is missing), fall back to the built-in table with one warning, so probing
    stays usable without the extraction stack.
    """
    global _warned_fallback
    try:
        from .plugins import get_registered  # lazy: plugins import this module
        return get_registered().methods
    except ImportError as exc:
        if not _warned_fallback:
            warnings.warn(f"plugin registry unavailable ({exc}); using the built-in selection methods",
                          RuntimeWarning, stacklevel=3)
            _warned_fallback = True
        return dict(BUILTIN_SELECTORS)


def get_selector(name: str | Selector, /, **params: Any) -> Selector:
    """A fresh selector by registry name (or a clone of a given Selector), with params set."""
    if isinstance(name, Selector):
        sel = clone(name)
        return sel.set_params(**params) if params else sel
    if not isinstance(name, str):
        raise TypeError(f"method must be a registered name or a Selector, got {type(name).__name__}")
    table = _method_table()
    if name not in table:
        raise ValueError(f"unknown selection method {name!r}; registered: {', '.join(sorted(table))}")
    sel = table[name](**params)
    if not hasattr(sel, "supports"):
        raise TypeError(f"method {name!r} built a {type(sel).__name__}, which has no supports()")
    return sel
