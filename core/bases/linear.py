"""Linear bases: the neurons themselves (identity), a random rotation, PCA and ICA.
"""
from __future__ import annotations

import warnings

import numpy as np

from probebank.bases.base import BasisEstimator


class IdentityBasis(BasisEstimator):
    """Units are the model's own neurons: transform is the identity."""

    name = "identity"
    trainable = False

    def __init__(self) -> None:
        pass

    def _fit(self, X: np.ndarray) -> None:
        pass

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return X

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return codes


class RandomRotationBasis(BasisEstimator):
    """A seeded random orthogonal matrix (QR of a Gaussian): the neurons' random-basis control.

    fit reads only the width of X; `rotation_` is Haar-distributed (signs fixed by diag(R)).
    """

    name = "random-rotation"
    trainable = False
    fitted_arrays = ("rotation_",)

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def _fit(self, X: np.ndarray) -> None:
        width = X.shape[1]
        rng = np.random.default_rng(self.random_state)
        q, r = np.linalg.qr(rng.standard_normal((width, width)))
        self.rotation_ = (q * np.sign(np.diag(r))).astype(np.float32)  # sign fix: Haar-distributed

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return X @ self.rotation_

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return codes @ self.rotation_.T


class _LinearFitBasis(BasisEstimator):
    """Shared transform for bases that learn codes = (X - mean) @ W and X ~ codes @ D + mean."""

    fitted_arrays = ("mean_", "W_", "D_")

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.W_

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return codes @ self.D_ + self.mean_


class PCABasis(_LinearFitBasis):
    """Principal components (all of them unless n_components is set); units sorted by variance.

    Fitted by an eigendecomposition of the covariance (one n x d^2 product, then a d x d eigh),
    several times faster than an SVD of the data when tokens far outnumber the width.
    `random_state` is accepted for a uniform interface; the fit is deterministic.
    """

    name = "pca"

    def __init__(self, n_components: int | None = None, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def check_params(self) -> None:
        super().check_params()
        self._positive_int("n_components", allow_none=True)

    def _fit(self, X: np.ndarray) -> None:
        mean = X.mean(0, dtype=np.float64)
        centred = X - mean.astype(np.float32)
        cov = (centred.T @ centred).astype(np.float64) / max(X.shape[0] - 1, 1)
        values, vectors = np.linalg.eigh(cov)
        n = min(self.n_components or X.shape[1], X.shape[1])
        order = np.argsort(values)[::-1][:n]
        components = vectors[:, order].T
        # Deterministic signs (as scikit-learn): the largest |loading| of each component is positive.
        signs = np.sign(components[np.arange(n), np.abs(components).argmax(1)])
        components *= np.where(signs == 0, 1.0, signs)[:, None]
        self.mean_ = mean.astype(np.float32)
        self.W_ = np.ascontiguousarray(components.T, dtype=np.float32)
        self.D_ = np.ascontiguousarray(components, dtype=np.float32)


class ICABasis(_LinearFitBasis):
    """FastICA (PCA-whitened, then rotated to maximise non-Gaussianity).

    Defaults are sized for a 2-core CPU: 128 components (FastICA's cost grows with the square of
    the component count; capped at the width and the row count) fitted on at most 10,000
    training rows (a seeded subsample).
    """

    name = "ica"

    def __init__(self, n_components: int = 128, max_iter: int = 200, tol: float = 1e-3, max_rows: int = 10_000,
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.max_rows = max_rows
        self.random_state = random_state

    def check_params(self) -> None:
        super().check_params()
        self._positive_int("n_components", "max_iter", "max_rows")
        self._positive_float("tol")

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning

        if X.shape[0] > self.max_rows:
            X = X[np.random.default_rng(self.random_state).choice(X.shape[0], self.max_rows, replace=False)]
        n = min(self.n_components, X.shape[1], X.shape[0])
        ica = FastICA(n_components=n, whiten="unit-variance", whiten_solver="eigh", max_iter=self.max_iter,
                      tol=self.tol, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a partial rotation is still a basis
            ica.fit(X.astype(np.float64))
        self.n_iter_ = int(ica.n_iter_)
        self.mean_ = ica.mean_.astype(np.float32)
        self.W_ = ica.components_.T.astype(np.float32).copy()   # unmixing: sources = (X - mean) @ W
        self.D_ = ica.mixing_.T.astype(np.float32).copy()       # X ~ sources @ mixing.T + mean
