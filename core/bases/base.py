"""The base class of every built-in basis: a scikit-learn transformer with array state for the basis store.

A basis follows scikit-learn's conventions, so it composes in a Pipeline and `clone` works:
settings are constructor parameters stored unchanged (`random_state` where the basis is random),
`fit(X)` learns from activations [n_rows, width] and returns self, setting fitted attributes with
a trailing underscore (`n_features_in_` always); `transform(X)` gives the codes and
`inverse_transform(codes)` the reconstruction. Bases that need no data (`trainable = False`:
identity, random rotation, SAE weights from a folder) still have a `fit`, which reads only the
width of X, so `fit(np.empty((0, width)))` prepares them.

`check_params()` rejects settings that can never work (a run calls it before the model loads);
`get_state()` / `set_state()` move the fitted arrays in and out (probebank.bases.store saves them as
safetensors: never pickle).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted
from typing_extensions import Self

from probebank.errors import BasisError


def _can_decode(basis: BasisEstimator) -> bool:
    return type(basis).can_decode


class BasisEstimator(TransformerMixin, BaseEstimator):
    """Base class of the bases. Subclasses set `name`, `trainable`, `fitted_arrays` and implement
    `_fit`, `_encode` and (where `can_decode`) `_decode`; `check_params` adds their own checks."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    can_decode: ClassVar[bool] = True
    # The fitted array attributes that get_state / set_state carry (plus n_features_in_).
    fitted_arrays: ClassVar[tuple[str, ...]] = ()

    # ---- scikit-learn API --------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> Self:
        """Learn the basis from activations X [n_rows, width] (y is ignored); returns self."""
        self.check_params()
        X = self._check_input(X, fitted=False, allow_empty=not self.trainable)
        self._fit(X)
        self.n_features_in_ = int(X.shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Codes of X [n_rows, width]: [n_rows, n_units] float32."""
        check_is_fitted(self)
        return self._encode(self._check_input(X, fitted=True))

    @available_if(_can_decode)
    def inverse_transform(self, X: Any) -> np.ndarray:
        """Reconstruction of activations from codes [n_rows, n_units]: [n_rows, width] float32."""
        check_is_fitted(self)
        return self._decode(np.asarray(X, dtype=np.float32))

    # ---- to implement ------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _encode(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_params(self) -> None:
        """Raise BasisError for settings that can never work (called before a run loads anything)."""
        if "random_state" in self.get_params(deep=False):
            rs = getattr(self, "random_state", None)
            if rs is not None and not (_is_int(rs) and rs >= 0):
                self._bad("random_state", rs, "a non-negative integer")

    # ---- state for the basis store ------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted arrays by name (the attribute without its trailing underscore)."""
        check_is_fitted(self)
        out = {a.rstrip("_"): np.ascontiguousarray(getattr(self, a)) for a in self.fitted_arrays}
        out["n_features_in"] = np.array([self.n_features_in_], dtype=np.int64)
        return out

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> Self:
        """Restore the fitted arrays of get_state (the settings come from the constructor)."""
        names = [a.rstrip("_") for a in self.fitted_arrays] + ["n_features_in"]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise BasisError(f"stored state of basis '{self.name}' lacks {missing} (has {sorted(arrays)})",
                             field="state", fix="delete the stored basis folder so the basis is fitted again")
        for attr in self.fitted_arrays:
            setattr(self, attr, np.asarray(arrays[attr.rstrip("_")]))
        self.n_features_in_ = int(np.asarray(arrays["n_features_in"]).reshape(-1)[0])
        return self

    # ---- helpers --------------------------------------------------------------------------------
    def _check_input(self, X: Any, *, fitted: bool, allow_empty: bool = False) -> np.ndarray:
        """X as a finite 2-D float32 array (no copy when it already is one), of the fitted width."""
        X = check_array(X, dtype=np.float32, ensure_min_samples=0 if allow_empty else 1)
        if fitted and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return X

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]  # codes are float32 whatever the input
        return tags

    def _bad(self, setting: str, value: Any, expected: str) -> None:
        raise BasisError(f"basis '{self.name}': {setting} must be {expected}, got {value!r}", field="--bases",
                         fix=f"write e.g. {self.name}:{setting}=... with {expected} (`probebank bases` lists the "
                             "settings)")

    def _positive_int(self, *settings: str, allow_none: bool = False) -> None:
        for s in settings:
            v = getattr(self, s)
            if not (v is None and allow_none) and not (_is_int(v) and v >= 1):
                self._bad(s, v, "a positive integer" + (" or none" if allow_none else ""))

    def _positive_float(self, *settings: str, allow_zero: bool = False) -> None:
        for s in settings:
            v = getattr(self, s)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (v >= 0 if allow_zero else v > 0)
            if not ok:
                self._bad(s, v, "a non-negative number" if allow_zero else "a positive number")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
