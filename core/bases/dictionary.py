"""Sparse dictionary learning (scikit-learn MiniBatchDictionaryLearning) with OMP codes.
"""
from __future__ import annotations

import numpy as np


class DictionaryBasis:
    """Sparse dictionary learning (scikit-learn MiniBatchDictionaryLearning), OMP codes.

    Inputs are centred and scaled to unit mean squared norm per row so that `alpha` means
    the same thing at every layer; the scale is saved with the dictionary.
    """

    name = "dictionary"
    trainable = True

    def __init__(self, width: int, seed: int = 0, n_components: int = 512, alpha: float = 0.1,
                 nonzero: int = 16, max_iter: int = 10, batch_size: int = 256) -> None:
        self.width, self.seed = width, seed
        self.n_components, self.alpha, self.nonzero = n_components, alpha, nonzero
        self.max_iter, self.batch_size = max_iter, batch_size

    def params(self) -> dict:
        return {"n_components": self.n_components, "alpha": self.alpha, "nonzero": self.nonzero,
                "max_iter": self.max_iter, "batch_size": self.batch_size, "seed": self.seed}

    def _prep(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float32) - self.mean_) * self.scale_[0]

    def fit(self, X: np.ndarray) -> DictionaryBasis:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        self.mean_ = X.mean(0).astype(np.float32)
        centred = X - self.mean_
        self.scale_ = np.array([1.0 / np.sqrt(max(float((centred ** 2).sum(1).mean()), 1e-12))], np.float32)
        dl = MiniBatchDictionaryLearning(n_components=self.n_components, alpha=self.alpha,
                                         batch_size=self.batch_size, max_iter=self.max_iter,
                                         random_state=self.seed, fit_algorithm="cd")
        dl.fit(self._prep(X))
        self.D_ = dl.components_.astype(np.float32)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import sparse_encode

        return sparse_encode(self._prep(X), self.D_, algorithm="omp",
                             n_nonzero_coefs=min(self.nonzero, self.D_.shape[0])).astype(np.float32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.asarray(codes, np.float32) @ self.D_ / self.scale_[0] + self.mean_

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": self.scale_, "D": self.D_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean_, self.scale_, self.D_ = arrays["mean"], arrays["scale"], arrays["D"]
