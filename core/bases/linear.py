"""Linear bases: the neurons themselves (identity), a random rotation, PCA and ICA.
"""
from __future__ import annotations

import numpy as np


class IdentityBasis:
    """Units are the model's own neurons: encode is the identity."""

    name = "identity"
    trainable = False

    def __init__(self, width: int | None = None, seed: int = 0) -> None:
        self.width = width

    def fit(self, activations: np.ndarray) -> IdentityBasis:
        return self

    def encode(self, activations: np.ndarray) -> np.ndarray:
        return activations

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes

    def params(self) -> dict:
        return {}


class RandomRotationBasis:
    """A seeded random orthogonal matrix (QR of a Gaussian): the neurons' random-basis control."""

    name = "random-rotation"
    trainable = False

    def __init__(self, width: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        q, r = np.linalg.qr(rng.standard_normal((width, width)))
        self.Q = (q * np.sign(np.diag(r))).astype(np.float32)  # sign fix: Haar-distributed
        self.seed = seed

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float32) @ self.Q

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, np.float32) @ self.Q.T

    def params(self) -> dict:
        return {"seed": self.seed}


class _LinearFitBasis:
    """Shared encode/decode for bases that learn codes = (X - mean) @ W and X ~ codes @ D + mean."""

    trainable = True

    def encode(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float32) - self.mean_) @ self.W_

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, np.float32) @ self.D_ + self.mean_

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "W": self.W_, "D": self.D_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean_, self.W_, self.D_ = arrays["mean"], arrays["W"], arrays["D"]


class PCABasis(_LinearFitBasis):
    """Principal components (all of them unless n_components is set); units sorted by variance.

    Fitted by an eigendecomposition of the covariance (one n x d^2 product, then a d x d eigh),
    several times faster than an SVD of the data when tokens far outnumber the width.
    """

    name = "pca"

    def __init__(self, width: int, seed: int = 0, n_components: int | None = None) -> None:
        self.width, self.seed, self.n_components = width, seed, n_components

    def params(self) -> dict:
        return {"n_components": self.n_components, "seed": self.seed}

    def fit(self, X: np.ndarray) -> PCABasis:
        X = np.asarray(X, np.float32)
        mean = X.mean(0, dtype=np.float64)
        centred = X - mean.astype(np.float32)
        cov = (centred.T @ centred).astype(np.float64) / max(X.shape[0] - 1, 1)
        values, vectors = np.linalg.eigh(cov)
        n = min(self.n_components or self.width, X.shape[1])
        order = np.argsort(values)[::-1][:n]
        components = vectors[:, order].T
        # Deterministic signs (as scikit-learn): the largest |loading| of each component is positive.
        signs = np.sign(components[np.arange(n), np.abs(components).argmax(1)])
        components *= np.where(signs == 0, 1.0, signs)[:, None]
        self.mean_ = mean.astype(np.float32)
        self.W_ = np.ascontiguousarray(components.T, dtype=np.float32)
        self.D_ = np.ascontiguousarray(components, dtype=np.float32)
        return self


class ICABasis(_LinearFitBasis):
    """FastICA (PCA-whitened, then rotated to maximise non-Gaussianity).

    Defaults are sized for a 2-core CPU: 128 components (FastICA's cost grows with the square of
    the component count) fitted on at most 10,000 training rows (a seeded subsample).
    """

    name = "ica"

    def __init__(self, width: int, seed: int = 0, n_components: int = 128, max_iter: int = 200,
                 tol: float = 1e-3, max_rows: int = 10_000) -> None:
        self.width, self.seed = width, seed
        self.n_components, self.max_iter, self.tol = min(n_components, width), max_iter, tol
        self.max_rows = max_rows

    def params(self) -> dict:
        return {"n_components": self.n_components, "max_iter": self.max_iter, "tol": self.tol,
                "max_rows": self.max_rows, "seed": self.seed}

    def fit(self, X: np.ndarray) -> ICABasis:
        import warnings

        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning

        if X.shape[0] > self.max_rows:
            X = X[np.random.default_rng(self.seed).choice(X.shape[0], self.max_rows, replace=False)]
        ica = FastICA(n_components=min(self.n_components, X.shape[0]), whiten="unit-variance",
                      whiten_solver="eigh", max_iter=self.max_iter, tol=self.tol, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a partial rotation is still a basis
            ica.fit(X.astype(np.float64))
        self.mean_ = ica.mean_.astype(np.float32)
        self.W_ = ica.components_.T.astype(np.float32).copy()   # unmixing: sources = (X - mean) @ W
        self.D_ = ica.mixing_.T.astype(np.float32).copy()       # X ~ sources @ mixing.T + mean
        return self
