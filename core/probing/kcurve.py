"""Summaries of one F1-against-k curve (a dict k -> F1, sparse k only) and its dense baseline.

- `auc_log2k`: the area under F1 against log2 k between the smallest and the largest k,
  divided by that log2 range: the mean F1 over the curve on a log scale, in [0, 1]
  (1 = perfect at every k). A single-point curve gives that point's F1.
- `k_reaching`: the smallest k whose F1 reaches `fraction` of the dense probe's F1 (None when
  no k does, or there is no dense baseline).
- `k1_gap`: dense F1 minus F1 at k=1 (how much a single unit misses).
- `gain`: F1(k_to) - F1(k_from), e.g. k=1 -> 8, the paper's sign of a distributed code.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DENSE_FRACTION = 0.95


def auc_log2k(curve: Mapping[int, float]) -> float | None:
    if not curve:
        return None
    ks = sorted(curve)
    if len(ks) == 1:
        return float(curve[ks[0]])
    x = np.log2(np.asarray(ks, dtype=np.float64))
    y = np.asarray([curve[k] for k in ks], dtype=np.float64)
    area = float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)))
    return area / float(x[-1] - x[0])


def k_reaching(curve: Mapping[int, float], dense_f1: float | None, fraction: float = DENSE_FRACTION) -> int | None:
    if dense_f1 is None:
        return None
    target = fraction * dense_f1
    for k in sorted(curve):
        if curve[k] >= target - 1e-12:
            return int(k)
    return None


def k1_gap(curve: Mapping[int, float], dense_f1: float | None) -> float | None:
    if dense_f1 is None or 1 not in curve:
        return None
    return float(dense_f1 - curve[1])


def gain(curve: Mapping[int, float], k_from: int = 1, k_to: int = 8) -> float | None:
    if k_from not in curve or k_to not in curve:
        return None
    return float(curve[k_to] - curve[k_from])

