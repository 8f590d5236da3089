"""Probes as scikit-learn estimators: a k-sparse logistic regression on selected units, and the dense baseline.

Both fit the same model as
    Pipeline([StandardScaler(), LogisticRegression(C=C, class_weight="balanced")])
on the selected columns (coefficients per standard deviation of each unit, comparable across
units), solved by probebank.probing.newton.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from probebank.probing.methods import get_selector
from probebank.probing.newton import BLAS_THREADS, blas_limit, fit_standardised
from probebank.probing.problem import balanced_sample_weight, column_scaling
from probebank.probing.selection import Selector


class _LinearProbe(ClassifierMixin, BaseEstimator):
    """Shared predict side: standardise the selected columns, then a linear score."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # one-vs-rest is the caller's job
        return tags

    def _prepare_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(f"Only binary classification is supported: {type(self).__name__} got "
                             f"{self.classes_.size} class(es) (use one-vs-rest labels for multiclass features)")
        return X, y == self.classes_[1]

    def _fit_units(self, X: np.ndarray, yb: np.ndarray, units: np.ndarray) -> None:
        if not float(self.C) > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        self.selected_units_ = np.asarray(units, dtype=np.int64)
        Xs = X[:, self.selected_units_]
        self.scaler_mean_, self.scaler_scale_ = column_scaling(Xs)
        Z = (Xs - self.scaler_mean_) / self.scaler_scale_
        with blas_limit(BLAS_THREADS):
            w, b, n_iter = fit_standardised(Z, yb, balanced_sample_weight(yb), float(self.C), int(self.max_iter))
        self.coef_ = w[None, :]
        self.intercept_ = np.array([b])
        self.n_iter_ = np.array([n_iter], dtype=np.int32)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the positive class (classes_[1])."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Z = (X[:, self.selected_units_] - self.scaler_mean_) / self.scaler_scale_
        return Z @ self.coef_[0] + self.intercept_[0]

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]

    def predict_proba(self, X: Any) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))


class SparseProbe(_LinearProbe):
    """Select k units with `method`, then a balanced L2 logistic regression on them.

    Parameters: k (capped at the number of units), method (registry name or a Selector),
    C, max_iter (Newton iterations), random_state (seed of the selection; None means 0,
    probebank runs are always seeded), method_params (keyword arguments for the selector). After fit: selected_units_ (best first), coef_
    (1, k) per standardised unit, intercept_ (1,), classes_, n_iter_, scaler_mean_ and
    scaler_scale_ (of the selected units). decision_function(X) takes all units of X.
    """

    def __init__(self, k: int = 1, method: str | Selector = "mean_diff", C: float = 1.0, max_iter: int = 1000,
                 random_state: int | None = 0, method_params: dict[str, Any] | None = None) -> None:
        self.k = k
        self.method = method
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.method_params = method_params

    def fit(self, X: Any, y: Any) -> SparseProbe:
        X, yb = self._prepare_fit(X, y)
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        k = min(int(self.k), X.shape[1])
        seed = 0 if self.random_state is None else int(self.random_state)
        selector = get_selector(self.method, **(self.method_params or {})).set_params(ks=[k], random_state=seed)
        units = selector.fit(X, yb).supports_[k]
        self._fit_units(X, yb, units)
        return self


class DenseProbe(_LinearProbe):
    """The L2 baseline: balanced logistic regression on every (standardised) unit."""

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> DenseProbe:
        X, yb = self._prepare_fit(X, y)
        self._fit_units(X, yb, np.arange(X.shape[1]))
        return self
