"""Sparse autoencoders as bases: a TopK SAE trained here, and SAE weights loaded from a folder.
"""
from __future__ import annotations

import numpy as np

from probebank.bases.sae import SAEWeights, TopKTrainConfig, train_topk_sae
from probebank.bases.sae_io import load_sae_folder
from probebank.errors import BasisError


class TopKSAEBasis:
    """A TopK sparse autoencoder trained in torch (probebank.sae); expansion x width latents.

    Defaults are sized for a 2-core CPU (bench/bases.py measures the cost): 2x latents, k=32,
    2 epochs over the training corpus. Wider SAEs: sae-topk:expansion=8:epochs=4.
    """

    name = "sae-topk"
    trainable = True

    def __init__(self, width: int, seed: int = 0, expansion: int = 2, k: int = 32, epochs: int = 2,
                 batch_size: int = 512, lr: float = 1e-3) -> None:
        self.width, self.seed = width, seed
        self.expansion, self.k, self.epochs, self.batch_size, self.lr = expansion, k, epochs, batch_size, lr
        self.weights = None
        self.report = None

    def params(self) -> dict:
        return {"expansion": self.expansion, "k": self.k, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed}

    def fit(self, X: np.ndarray, progress: bool = True) -> TopKSAEBasis:

        cfg = TopKTrainConfig(d_sae=self.expansion * self.width, k=self.k, epochs=self.epochs,
                              batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                              dead_after_tokens=min(20_000, max(X.shape[0] // 2, self.batch_size)))
        self.weights, self.report = train_topk_sae(X, cfg, progress=progress)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self.weights.encode(X)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.weights.decode(codes)

    def state(self) -> dict[str, np.ndarray]:
        return self.weights.arrays()

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:

        self.weights = SAEWeights(arrays["W_enc"], arrays["b_enc"], arrays["W_dec"], arrays["b_dec"],
                                  activation="topk", k=self.k)


class SAEFolderBasis:
    """SAE weights from a local folder in the common safetensors layout: `sae:/path/to/folder`."""

    name = "sae"
    trainable = False

    def __init__(self, width: int, seed: int = 0, path: str | None = None) -> None:

        if not path:
            raise BasisError("the sae basis needs a folder", field="--bases", fix="write sae:/path/to/folder")
        self.path = path
        self.weights, self.sha256 = load_sae_folder(path, width)

    def content_key(self) -> str:
        return self.sha256[:24]

    def params(self) -> dict:
        return {"path": self.path}

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self.weights.encode(X)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.weights.decode(codes)
