"""Fitted bases on disk, content-addressed: fit once, reuse whenever the inputs are the same.

A fitted basis lives in $PROBEBANK_CACHE/bases/<key>/ (arrays.safetensors + meta.json), where
the key hashes the model and revision, site, layer, basis name and settings (`get_params`), the
training corpus's content hash, the store format and the code fingerprint of the basis class
(probebank.hashing.fingerprint: its methods and the project code they reach). Same inputs, same
key: the fit is reused. The arrays are the basis's `get_state()`, read back with `set_state()`
(never pickle); a stored folder of another format is fitted again. Each folder is sealed with
checksums (probebank.cache) and checked before it is loaded; concurrent fits of one key wait on
its lock, so the basis is fitted once.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probebank.bases.spec import BasisSpec
from probebank.cache.atomic import staging_folder
from probebank.cache.checksums import seal
from probebank.cache.entry import intact
from probebank.cache.locks import entry_lock
from probebank.errors import BasisError
from probebank.hashing import RuntimeCache, fingerprint, json_digest
from probebank.paths import cache_dir

# 2: bases are scikit-learn transformers; state from get_state() (adds n_features_in; SAE activation and k)
# 3: sealed with checksums
BASIS_STORE_FORMAT = 3


_FINGERPRINTS: RuntimeCache[type, str] = RuntimeCache()  # one walk of the source per class and process


def _class_fingerprint(cls: type) -> str:
    if cls not in _FINGERPRINTS:
        _FINGERPRINTS[cls] = fingerprint(cls)[:16]
    return _FINGERPRINTS[cls]


def code_version(basis: Any) -> str:
    """The code fingerprint of the basis's class (a change to its code, or to code it uses, means a refit)."""
    return _class_fingerprint(type(basis))


def basis_key(parts: Mapping[str, Any]) -> str:
    return json_digest({**parts, "format": BASIS_STORE_FORMAT})


def basis_params(basis: Any) -> dict[str, Any]:
    """The basis's settings (scikit-learn get_params), as they enter its key."""
    return dict(basis.get_params(deep=False)) if hasattr(basis, "get_params") else {}


@dataclass
class FittedBasis:
    """A basis ready to transform, with the key it is stored under and whether it was loaded."""

    spec: BasisSpec
    basis: Any
    key: str | None
    reused: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def can_decode(self) -> bool:
        return hasattr(self.basis, "inverse_transform")


class BasisStore:
    """Fitted bases on disk: <root>/<key>/arrays.safetensors + meta.json (never pickle)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("bases")

    def folder(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        """A complete fit of this store format is stored under key."""
        meta = self.folder(key) / "meta.json"
        if not intact(self.folder(key)):
            return False
        try:
            return bool(json.loads(meta.read_text()).get("format") == BASIS_STORE_FORMAT)
        except (OSError, ValueError):
            return False

    def save(self, key: str, basis: Any, meta: dict[str, Any]) -> None:
        from safetensors.numpy import save_file

        with staging_folder(self.folder(key)) as tmp:
            arrays = {k: np.ascontiguousarray(v) for k, v in basis.get_state().items()}
            save_file(arrays, str(tmp / "arrays.safetensors"))
            meta = {**meta, "format": BASIS_STORE_FORMAT}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
            seal(tmp)

    def load(self, key: str, basis: Any) -> dict[str, Any]:
        from safetensors.numpy import load_file

        folder = self.folder(key)
        basis.set_state(load_file(str(folder / "arrays.safetensors")))
        meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        return meta


def fit_or_load(spec: BasisSpec, basis: Any, key_parts: Mapping[str, Any],
                training: Callable[[], np.ndarray] | None, store: BasisStore | None = None, *,
                width: int | None = None) -> FittedBasis:
    """Fit `basis` on `training()` activations, or load the fit stored under the same key.

    `training` is called only when a fit is needed, so a reused basis costs no extraction.
    Bases that need no training (identity, random rotation, SAE weights from a folder) are fitted
    on an empty array of the layer's `width`, get no key (a folder SAE: its weights file's hash)
    and are not stored.
    """
    if not getattr(basis, "trainable", False):
        if width is None:
            raise BasisError(f"basis '{spec.label}' needs the layer width to be prepared", field="--bases")
        basis.fit(np.empty((0, width), dtype=np.float32))
        key = basis.content_key() if hasattr(basis, "content_key") else None
        return FittedBasis(spec, basis, key)
    store = store or BasisStore()
    parts = {**key_parts, "basis": spec.name, "params": basis_params(basis), "code": code_version(basis)}
    key = basis_key(parts)
    if store.has(key):
        return FittedBasis(spec, basis, key, reused=True, meta=store.load(key, basis))
    if training is None:
        raise BasisError(f"basis '{spec.label}' needs training activations and none were given", field="--bases")
    with entry_lock(store.folder(key), f"the {spec.label} basis"):
        if store.has(key):  # another process fitted it while we waited
            return FittedBasis(spec, basis, key, reused=True, meta=store.load(key, basis))
        X = np.asarray(training(), dtype=np.float32)
        started = time.perf_counter()
        basis.fit(X)
        meta = {"key": key, "parts": parts, "n_train": int(X.shape[0]), "width": int(X.shape[1]),
                "fit_seconds": round(time.perf_counter() - started, 3)}
        store.save(key, basis, meta)
    return FittedBasis(spec, basis, key, reused=False, meta=meta)
