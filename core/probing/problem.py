"""A probing problem's inputs: checks of (X, y), column standardisation, balanced class weights, orders.

Shared by the selection methods, the Newton solver and the exact probes, so every one of them
standardises, weights and breaks ties the same way.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

UnitsLike = npt.ArrayLike  # unit indices: a list, a tuple or an integer array


def check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a probing problem: 2-D finite float X, binary 0/1 y with both classes.

    Returns X as a float array (float32 kept, no copy when possible) and y as bool.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, units), got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
    if X.shape[1] == 0:
        raise ValueError("X has no units (0 columns)")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf; clean the activations before probing "
                         "(an fp16 overflow shows up as inf)")
    yb = np.asarray(y)
    if yb.ndim != 1 or yb.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}), got shape {yb.shape}")
    if yb.dtype != bool:
        if not np.isin(yb, (0, 1)).all():
            raise ValueError("y must be binary 0/1 (1 = the feature is present)")
        yb = yb.astype(bool)
    n_pos = int(yb.sum())
    if n_pos == 0 or n_pos == yb.size:
        raise ValueError("y must contain both classes (0 and 1)")
    return X, yb


def column_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale (population std, 1 for constant columns), in float64.

    Same convention as sklearn's StandardScaler, so (X - mean) / scale matches it.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    var = X.var(axis=0, dtype=np.float64)
    scale = np.sqrt(var)
    # A column is constant when its std is at rounding level relative to its magnitude.
    tiny = scale <= 10.0 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[tiny] = 1.0
    return mean, scale


def balanced_sample_weight(y: np.ndarray) -> np.ndarray:
    """sklearn's class_weight='balanced' as per-row weights: n / (2 * n_class)."""
    yb = np.asarray(y, dtype=bool)
    n_pos = yb.sum()
    n = yb.size
    return np.where(yb, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))


def order_by_score(scores: np.ndarray) -> np.ndarray:
    """Unit indices by descending score; NaN last; ties by ascending index."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    return np.argsort(-s, kind="stable").astype(np.int64)


def check_ks(ks: Sequence[int]) -> list[int]:
    out = []
    for k in ks:
        if int(k) != k or int(k) < 1:
            raise ValueError(f"every k must be a positive integer, got {k!r}")
        out.append(int(k))
    if not out:
        raise ValueError("the k grid is empty")
    return out


class StoredRows(Protocol):
    """What probing reads from an activation store."""

    key: str

    def rows(self) -> dict[str, np.ndarray]: ...

    def layer(self, site: str, layer: int) -> np.ndarray: ...


Encoder = Callable[[str, int, np.ndarray], np.ndarray]  # (site, layer, activations) -> codes (a basis)
