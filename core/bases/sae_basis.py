"""Sparse autoencoders as bases: a TopK SAE trained here, and SAE weights loaded from a folder.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from typing_extensions import Self

from probebank.bases.base import BasisEstimator
from probebank.bases.sae import SAEWeights, TopKTrainConfig, train_topk_sae
from probebank.bases.sae_io import find_files, load_sae_folder
from probebank.errors import BasisError

ACTIVATIONS = ("topk", "jumprelu", "relu")  # stored by index in an SAE basis's state


class _SAEBasis(BasisEstimator):
    """Shared transform and state of the SAE bases: `weights_` (SAEWeights) does the work."""

    weights_: SAEWeights

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return self.weights_.encode(X)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return self.weights_.decode(codes)

    def get_state(self) -> dict[str, np.ndarray]:
        out = {**super().get_state(), **self.weights_.arrays()}
        out["activation"] = np.array([ACTIVATIONS.index(self.weights_.activation)], dtype=np.int64)
        out["k"] = np.array([self.weights_.k or 0], dtype=np.int64)
        return out

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> Self:
        missing = [n for n in ("W_enc", "b_enc", "W_dec", "b_dec", "activation", "k") if n not in arrays]
        if missing:
            raise BasisError(f"stored state of basis '{self.name}' lacks {missing} (has {sorted(arrays)})",
                             field="state", fix="delete the stored basis folder so the basis is fitted again")
        super().set_state(arrays)
        k = int(np.asarray(arrays["k"]).reshape(-1)[0])
        threshold = arrays.get("threshold")
        W_enc, b_enc, W_dec, b_dec = (np.asarray(arrays[n], np.float32) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
        self.weights_ = SAEWeights(W_enc, b_enc, W_dec, b_dec,
                                   activation=ACTIVATIONS[int(np.asarray(arrays["activation"]).reshape(-1)[0])],
                                   k=k or None, threshold=None if threshold is None else np.asarray(threshold, np.float32))
        return self


class TopKSAEBasis(_SAEBasis):
    """A TopK sparse autoencoder trained in torch (probebank.bases.sae); expansion x width latents.

    Defaults are sized for a 2-core CPU (bench/bases.py measures the cost): 2x latents, k=32,
    2 epochs over the training corpus. Wider SAEs: sae-topk:expansion=8:epochs=4. After fit,
    `weights_` holds the SAE and `report_` the training report (not stored).
    """

    name = "sae-topk"
    trainable = True

    def __init__(self, expansion: int = 2, k: int = 32, epochs: int = 2, batch_size: int = 512, lr: float = 1e-3,
                 random_state: int = 0) -> None:
        self.expansion = expansion
        self.k = k
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    def check_params(self) -> None:
        super().check_params()
        self._positive_int("expansion", "k", "epochs", "batch_size")
        self._positive_float("lr")

    def _fit(self, X: np.ndarray) -> None:
        cfg = TopKTrainConfig(d_sae=self.expansion * X.shape[1], k=self.k, epochs=self.epochs,
                              batch_size=self.batch_size, lr=self.lr, seed=self.random_state,
                              dead_after_tokens=min(20_000, max(X.shape[0] // 2, self.batch_size)))
        self.weights_, self.report_ = train_topk_sae(X, cfg)


class SAEFolderBasis(_SAEBasis):
    """SAE weights from a local folder in the common safetensors layout: `sae:/path/to/folder`.

    Needs no training: fit reads the folder and checks its d_in against the width of X.
    """

    name = "sae"
    trainable = False

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def check_params(self) -> None:
        if not self.path:
            raise BasisError("the sae basis needs a folder", field="--bases", fix="write sae:/path/to/folder")
        find_files(self.path)  # the folder and its weights file exist (shapes are checked at fit)

    def _fit(self, X: np.ndarray) -> None:
        self.weights_, self.sha256_ = load_sae_folder(str(self.path), X.shape[1])

    def content_key(self) -> str:
        """The weights file's sha256 (24 hex digits): the key records carry for this basis."""
        return self.sha256_[:24]
