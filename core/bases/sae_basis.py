"""Sparse autoencoders as bases: a TopK SAE trained here, and SAE weights loaded from a folder.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.metaestimators import available_if
from typing_extensions import Self

from probebank.bases.base import BasisEstimator
from probebank.bases.sae import ROW_NORMS, SAEWeights, TopKTrainConfig, train_topk_sae
from probebank.bases.sae_io import find_files, load_sae_folder
from probebank.errors import BasisError
from probebank.specs import parse_value

ACTIVATIONS = ("topk", "jumprelu", "relu", "gated")  # stored by index in an SAE basis's state (append only)


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
        out["apply_b_dec_to_input"] = np.array([int(self.weights_.apply_b_dec_to_input)], dtype=np.int64)
        out["normalize"] = np.array([ROW_NORMS.index(self.weights_.normalize)], dtype=np.int64)
        return out

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> Self:
        missing = [n for n in ("W_enc", "b_enc", "W_dec", "b_dec", "activation", "k") if n not in arrays]
        if missing:
            raise BasisError(f"stored state of basis '{self.name}' lacks {missing} (has {sorted(arrays)})",
                             field="state", fix="delete the stored basis folder so the basis is fitted again")
        super().set_state(arrays)
        k = int(np.asarray(arrays["k"]).reshape(-1)[0])
        W_enc, b_enc, W_dec, b_dec = (np.asarray(arrays[n], np.float32) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
        opt = {n: np.asarray(arrays[n], np.float32) for n in ("threshold", "b_mag", "r_mag") if n in arrays}

        def flag(name: str, default: int) -> int:  # states stored before these flags existed have the defaults
            return int(np.asarray(arrays[name]).reshape(-1)[0]) if name in arrays else default
        self.weights_ = SAEWeights(W_enc, b_enc, W_dec, b_dec, activation=ACTIVATIONS[flag("activation", 0)],
                                   k=k or None, apply_b_dec_to_input=bool(flag("apply_b_dec_to_input", 1)),
                                   normalize=ROW_NORMS[flag("normalize", 0)], **opt)
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


FOLDER_SETTINGS = ("check_hook",)  # settings that may follow the folder: sae:PATH:check_hook=false


def split_folder_settings(path: str) -> tuple[str, dict[str, Any]]:
    """'/a/sae:check_hook=false' -> ('/a/sae', {'check_hook': False}); a path that is a folder stays whole."""
    folder, settings = path, {}
    while not Path(folder).expanduser().is_dir() and ":" in folder:
        head, _, tail = folder.rpartition(":")
        key, eq, value = tail.partition("=")
        if not eq or key not in FOLDER_SETTINGS:
            break
        if key in settings:
            raise BasisError(f"'{path}' sets {key} twice", field="--bases", fix="give each setting once")
        folder, settings[key] = head, parse_value(value)
    return folder, settings


def _decodes(basis: SAEFolderBasis) -> bool:
    weights = getattr(basis, "weights_", None)
    return weights is None or weights.decodes


class SAEFolderBasis(_SAEBasis):
    """SAE weights from a local folder, SAELens's format included: `sae:/path/to/folder`.

    Needs no training: fit reads the folder (probebank.bases.sae_io) and checks its d_in against
    the width of X. When the run has said which site and layer it probes (`set_site`), the hook
    the SAE's config records must be that site and layer, unless `check_hook` is false
    (`sae:PATH:check_hook=false`). An SAE that normalises each input row (layer_norm,
    constant_norm_rescale) has no inverse_transform: its reconstruction needs the row's statistics.
    """

    name = "sae"
    trainable = False

    def __init__(self, path: str | None = None, check_hook: bool = True) -> None:
        self.path = path
        self.check_hook = check_hook

    def _folder(self) -> tuple[str, bool]:
        """The folder and the effective check_hook (settings written after the path override the keyword)."""
        folder, settings = split_folder_settings(str(self.path))
        check = settings.get("check_hook", self.check_hook)
        if not isinstance(check, bool):
            self._bad("check_hook", check, "true or false")
        return folder, bool(check)

    def check_params(self) -> None:
        if not self.path:
            raise BasisError("the sae basis needs a folder", field="--bases", fix="write sae:/path/to/folder")
        if not isinstance(self.check_hook, bool):
            self._bad("check_hook", self.check_hook, "true or false")
        find_files(self._folder()[0])  # the folder and its weights file exist (shapes are checked at fit)

    def set_site(self, site: str, layer: int) -> Self:
        """The site and layer (non-negative) a run probes with this basis; fit checks the SAE's hook against them."""
        self.site_ = (site, int(layer))
        return self

    def _fit(self, X: np.ndarray) -> None:
        folder, check = self._folder()
        site, layer = getattr(self, "site_", (None, None))
        self.weights_, self.sha256_ = load_sae_folder(folder, X.shape[1], site=site, layer=layer, check_hook=check)

    @available_if(_decodes)
    def inverse_transform(self, X: Any) -> np.ndarray:
        """Reconstruction of activations from codes (not for an SAE that normalises each input row)."""
        return super().inverse_transform(X)

    def content_key(self) -> str:
        """The weights file's sha256 (24 hex digits): the key records carry for this basis."""
        return self.sha256_[:24]
