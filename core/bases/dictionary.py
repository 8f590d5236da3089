"""Sparse dictionary learning (scikit-learn MiniBatchDictionaryLearning) with OMP codes.
"""
from __future__ import annotations

import numpy as np

from probebank.bases.base import BasisEstimator


class DictionaryBasis(BasisEstimator):
    """Sparse dictionary learning (scikit-learn MiniBatchDictionaryLearning), OMP codes.

    Inputs are centred and scaled to unit mean squared norm per row so that `alpha` means
    the same thing at every layer; the scale is saved with the dictionary (`scale_`).
    """

    name = "dictionary"
    fitted_arrays = ("mean_", "scale_", "D_")

    def __init__(self, n_components: int = 512, alpha: float = 0.1, nonzero: int = 16, max_iter: int = 10,
                 batch_size: int = 256, random_state: int = 0) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.nonzero = nonzero
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state

    def check_params(self) -> None:
        super().check_params()
        self._positive_int("n_components", "nonzero", "max_iter", "batch_size")
        self._positive_float("alpha", allow_zero=True)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) * self.scale_[0]

    def _fit(self, X: np.ndarray) -> None:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        self.mean_ = X.mean(0).astype(np.float32)
        centred = X - self.mean_
        self.scale_ = np.array([1.0 / np.sqrt(max(float((centred ** 2).sum(1).mean()), 1e-12))], np.float32)
        dl = MiniBatchDictionaryLearning(n_components=self.n_components, alpha=self.alpha,
                                         batch_size=self.batch_size, max_iter=self.max_iter,
                                         random_state=self.random_state, fit_algorithm="cd")
        # float64: coordinate descent on float32 stalls at its precision, just above the duality-gap
        # tolerance, and warns (ConvergenceWarning) on every sparse-coding step of every batch
        dl.fit(self._prep(X).astype(np.float64))
        self.n_iter_ = int(dl.n_iter_)
        self.D_ = dl.components_.astype(np.float32)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import sparse_encode

        return np.asarray(sparse_encode(self._prep(X), self.D_, algorithm="omp",
                                        n_nonzero_coefs=min(self.nonzero, self.D_.shape[0])), dtype=np.float32)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return codes @ self.D_ / self.scale_[0] + self.mean_
