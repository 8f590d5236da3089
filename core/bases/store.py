"""Fitted bases on disk, content-addressed: fit once, reuse whenever the inputs are the same.

A fitted basis lives in $PROBEBANK_CACHE/bases/<key>/ (arrays.safetensors + meta.json), where
the key hashes the model and revision, site, layer, basis name and settings, the training
corpus's content hash and the basis code. Same inputs, same key: the fit is reused.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probebank.bases.spec import BasisSpec
from probebank.errors import BasisError
from probebank.paths import cache_dir

BASIS_STORE_FORMAT = 1


def code_version(basis: Any) -> str:
    """sha256 of the source of the module defining the basis (a code change means a refit)."""
    module = sys.modules.get(type(basis).__module__)
    try:
        src = inspect.getsource(module) if module else repr(type(basis))
    except (OSError, TypeError):
        src = repr(type(basis))
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def basis_key(parts: Mapping[str, Any]) -> str:
    blob = json.dumps({**parts, "format": BASIS_STORE_FORMAT}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def basis_params(basis: Any) -> dict[str, Any]:
    return dict(basis.params()) if hasattr(basis, "params") else {}


@dataclass
class FittedBasis:
    """A basis ready to encode, with the key it is stored under and whether it was loaded."""

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
        return hasattr(self.basis, "decode")


class BasisStore:
    """Fitted bases on disk: <root>/<key>/arrays.safetensors + meta.json (never pickle)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("bases")

    def folder(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.folder(key) / "meta.json").is_file()

    def save(self, key: str, basis: Any, meta: dict[str, Any]) -> None:
        from safetensors.numpy import save_file

        final = self.folder(key)
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        arrays = {k: np.ascontiguousarray(v) for k, v in basis.state().items()}
        save_file(arrays, str(tmp / "arrays.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)

    def load(self, key: str, basis: Any) -> dict[str, Any]:
        from safetensors.numpy import load_file

        folder = self.folder(key)
        basis.load_state(load_file(str(folder / "arrays.safetensors")))
        return json.loads((folder / "meta.json").read_text())


def fit_or_load(spec: BasisSpec, basis: Any, key_parts: Mapping[str, Any],
                training: Callable[[], np.ndarray] | None, store: BasisStore | None = None) -> FittedBasis:
    """Fit `basis` on `training()` activations, or load the fit stored under the same key.

    `training` is called only when a fit is needed, so a reused basis costs no extraction.
    Bases that need no training (identity, random rotation) get no key and are not stored.
    """
    if not getattr(basis, "trainable", False):
        # e.g. SAE weights loaded from a folder: keyed by the weights file's own hash
        key = basis.content_key() if hasattr(basis, "content_key") else None
        return FittedBasis(spec, basis, key)
    store = store or BasisStore()
    parts = {**key_parts, "basis": spec.name, "params": basis_params(basis), "code": code_version(basis)}
    key = basis_key(parts)
    if store.has(key):
        meta = store.load(key, basis)
        return FittedBasis(spec, basis, key, reused=True, meta=meta)
    if training is None:
        raise BasisError(f"basis '{spec.label}' needs training activations and none were given", field="--bases")
    import time

    X = np.asarray(training(), dtype=np.float32)
    started = time.perf_counter()
    basis.fit(X)
    meta = {"key": key, "parts": parts, "n_train": int(X.shape[0]), "width": int(X.shape[1]),
            "fit_seconds": round(time.perf_counter() - started, 3)}
    store.save(key, basis, meta)
    return FittedBasis(spec, basis, key, reused=False, meta=meta)


