"""Regression probes: rank units against a real-valued target, then ridge regression on the top k.

For a regression card (labels.type: regression) the probe of every k is
    Pipeline([StandardScaler(), Ridge(alpha)])
on the selected units, and the dense baseline is the same ridge on every unit with alpha chosen
by leave-one-out error on the training rows (exact for ridge, from one SVD). Metrics are R2
(1 - residual / total sum of squares on the test rows, as sklearn's r2_score) and Spearman's
rank correlation (scipy.stats.spearmanr), with Pearson's r and the RMSE.

Selection methods: the regression twin of each ranking method (REGRESSION_TWINS) keeps its name
and settings: `mean_diff` ranks by |cov(unit, value)| on the raw activations (for a 0/1 label that
is the mean difference times a constant), `f_stat` by the F-statistic of a one-unit linear fit
(sklearn f_regression, computed with centred float64 sums), `mutual_info` by
sklearn mutual_info_regression, `random` stays random. Methods that only exist for classes
(l1, adaptive, milp: a logistic objective) have no twin; `regression_selector` says why. A plugin
selector that sets the class attribute `regression = True` is used as it is.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from probebank.data.values import r2_score
from probebank.probing.methods import get_selector
from probebank.probing.problem import column_scaling, order_by_score
from probebank.probing.selection import FStat, MeanDiff, MutualInfo, RandomUnits, ScoreSelector, Selector

DENSE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))  # the dense baseline's alpha grid (LOO)


def check_xy_values(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """A regression problem: 2-D finite float X, 1-D finite float y (one per row) that is not constant."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"X must be 2-D (rows, units) with at least one unit, got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf; clean the activations before probing")
    yv = np.asarray(y, dtype=np.float64)
    if yv.ndim != 1 or yv.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one value per row of X ({X.shape[0]}), got shape {yv.shape}")
    if not np.isfinite(yv).all():
        raise ValueError("y contains NaN or inf")
    if np.ptp(yv) == 0:
        raise ValueError("y is constant: a regression probe needs values that vary")
    return X, yv


# --------------------------------------------------------------------------- selection


class OnValues(Selector):
    """Mixin: a selector whose `fit(X, y)` takes a real-valued y (its methods get y as floats)."""

    regression: ClassVar[bool] = True

    def _check_xy(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return check_xy_values(X, y)


class ValueSelector(OnValues, ScoreSelector):
    """A ranking method for a real-valued y: `fit(X, y)` sets `supports_` (and `ranking_`, `scores_`)."""


def _centred(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cross products sum((x - mean x)(y - mean y)), column sums of squares of x, and of y), in float64."""
    Xc = np.asarray(X, dtype=np.float64) - X.mean(axis=0, dtype=np.float64)
    yc = y - y.mean()
    return yc @ Xc, np.einsum("ij,ij->j", Xc, Xc), np.asarray(yc @ yc)


def f_regression_scores(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """F of a one-unit linear fit per unit (sklearn f_regression, two-pass float64 sums); constant units 0."""
    xy, xx, yy = _centred(X, y)
    floor = X.shape[0] * (10.0 * np.finfo(np.float64).eps * np.maximum(np.abs(X.mean(axis=0)), 1.0)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.clip(xy**2 / (xx * yy), 0.0, 1.0)
        f = r2 / (1.0 - r2) * (X.shape[0] - 2)
    f = np.where(xx <= floor, 0.0, f)
    return np.nan_to_num(f, nan=0.0, posinf=np.finfo(np.float64).max)


class Covariance(ValueSelector):
    """|cov(unit, value)| on the raw activations: the regression twin of mean_diff (favours high-variance units)."""

    def _scores(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.abs(_centred(X, yb)[0]) / X.shape[0]


class FRegression(ValueSelector):
    """F-statistic of a one-unit linear fit (as sklearn f_regression; the ranking of |Pearson r|)."""

    def _scores(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return f_regression_scores(X, yb)


class MutualInfoRegression(OnValues, MutualInfo):
    """Mutual information with the value (sklearn mutual_info_regression, kNN, seeded) on the top
    `prefilter` units by F (the rest follow in F order), on at most `max_rows` rows (seeded)."""

    def _f_order(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return order_by_score(f_regression_scores(X, yb))

    def _sample_rows(self, yb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(yb.size)[: self.max_rows]

    def _mutual_info(self, Xs: np.ndarray, yb: np.ndarray) -> np.ndarray:
        from sklearn.feature_selection import mutual_info_regression

        return np.asarray(mutual_info_regression(Xs, yb, discrete_features=False, n_neighbors=self.n_neighbors,
                                                 random_state=self.seed_ % (2**32)))


class RandomValueUnits(ValueSelector):
    """Seeded random units (the same draw as `random` on a classification card)."""

    def _rank(self, X: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.random.default_rng(self.seed_).permutation(X.shape[1]).astype(np.int64)


REGRESSION_TWINS: dict[type[Selector], type[OnValues]] = {
    MeanDiff: Covariance, FStat: FRegression, MutualInfo: MutualInfoRegression, RandomUnits: RandomValueUnits}


def regression_selector(selector: Selector) -> Selector | str:
    """The selector to use on a regression card (same settings), or a one-line reason why there is none."""
    if getattr(type(selector), "regression", False):
        return clone(selector)
    twin = REGRESSION_TWINS.get(type(selector))
    if twin is None:
        return (f"{type(selector).__name__} selects for a class label only; on a regression card use "
                "mean_diff, f_stat, mutual_info or random (or a method with `regression = True`)")
    return twin(**selector.get_params(deep=False))


# --------------------------------------------------------------------------- ridge and metrics


def fit_ridge(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, float, float]:
    """Ridge on standardised (train-centred) columns: (coef, intercept, alpha).

    With several alphas, the one with the smallest exact leave-one-out error wins (one thin SVD:
    hat diagonal h = sum_j U_ij^2 s_j^2 / (s_j^2 + alpha)).
    """
    b = float(y.mean())
    yc = y - b
    U, s, Vt = np.linalg.svd(np.asarray(Z, dtype=np.float64), full_matrices=False)
    Uy = U.T @ yc
    best, best_err = float(alphas[0]), np.inf
    if len(alphas) > 1:
        for alpha in alphas:
            shrink = s**2 / (s**2 + alpha)
            fitted = U @ (shrink * Uy)
            h = (U**2) @ shrink + 1.0 / y.size  # + the intercept's share
            err = float(np.mean(((yc - fitted) / np.maximum(1.0 - h, 1e-12)) ** 2))
            if err < best_err - 1e-15:
                best, best_err = float(alpha), err
    w = Vt.T @ (s / (s**2 + best) * Uy)
    return w, b, best


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """R2, Spearman and Pearson correlation (None when the prediction is constant) and RMSE."""
    from scipy.stats import spearmanr

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    r2 = r2_score(y_true, y_pred)
    varies = np.ptp(y_pred) > 0 and np.ptp(y_true) > 0
    spearman = float(spearmanr(y_true, y_pred).statistic) if varies else None
    pearson = float(np.corrcoef(y_true, y_pred)[0, 1]) if varies else None
    return {"r2": r2, "spearman": spearman, "pearson": pearson, "rmse": (ss_res / y_true.size) ** 0.5}


# --------------------------------------------------------------------------- estimators


class _RidgeProbe(RegressorMixin, BaseEstimator):
    """Shared predict side: standardise the selected columns, then a linear prediction (score() is R2)."""

    def _fit_units(self, X: np.ndarray, y: np.ndarray, units: np.ndarray, alphas: Sequence[float]) -> None:
        if not all(float(a) > 0 for a in alphas):
            raise ValueError(f"alpha must be > 0, got {alphas}")
        self.selected_units_ = np.asarray(units, dtype=np.int64)
        Xs = X[:, self.selected_units_]
        self.scaler_mean_, self.scaler_scale_ = column_scaling(Xs)
        w, b, alpha = fit_ridge((Xs - self.scaler_mean_) / self.scaler_scale_, y, alphas)
        self.coef_, self.intercept_, self.alpha_ = w, b, alpha

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return ((X[:, self.selected_units_] - self.scaler_mean_) / self.scaler_scale_) @ self.coef_ + self.intercept_


class SparseRidgeProbe(_RidgeProbe):
    """Select k units with `method` (its regression twin, see the module), then ridge on them.

    Parameters: k (capped at the number of units), method (registry name or a Selector), alpha
    (L2 strength on standardised units), random_state (seed of the selection; None means 0),
    method_params. After fit: selected_units_ (best first), coef_ (k,) per standardised unit,
    intercept_, alpha_, scaler_mean_, scaler_scale_. predict(X) takes all units of X.
    """

    def __init__(self, k: int = 1, method: str | Selector = "f_stat", alpha: float = 1.0,
                 random_state: int | None = 0, method_params: dict[str, Any] | None = None) -> None:
        self.k = k
        self.method = method
        self.alpha = alpha
        self.random_state = random_state
        self.method_params = method_params

    def fit(self, X: Any, y: Any) -> SparseRidgeProbe:
        X, yv = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, y_numeric=True)
        X, yv = check_xy_values(X, yv)
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        k = min(int(self.k), X.shape[1])
        selector = regression_selector(get_selector(self.method, **(self.method_params or {})))
        if isinstance(selector, str):
            raise ValueError(selector)
        seed = 0 if self.random_state is None else int(self.random_state)
        units = selector.set_params(ks=[k], random_state=seed).fit(X, yv).supports_[k]
        self._fit_units(X, yv, units, [float(self.alpha)])
        return self


class DenseRidgeProbe(_RidgeProbe):
    """The dense baseline: ridge on every standardised unit, alpha chosen by leave-one-out among `alphas`."""

    def __init__(self, alphas: Sequence[float] = DENSE_ALPHAS) -> None:
        self.alphas = alphas

    def fit(self, X: Any, y: Any) -> DenseRidgeProbe:
        X, yv = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2, y_numeric=True)
        X, yv = check_xy_values(X, yv)
        self._fit_units(X, yv, np.arange(X.shape[1]), list(self.alphas))
        return self
