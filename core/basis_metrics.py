"""How well a basis's units line up with supervised features: pure functions on codes.

- best single unit: per feature, every unit gets its best threshold and sign on the train
  split; the unit with the best train F1 is scored on the test split (chosen on train, so a
  wider basis gains no multiple-comparison advantage on test).
- coverage: share of features whose best single unit reaches F1 >= 0.8 / >= 0.9.
- dead / always-on units: never active / active on more than 99% of rows (|code| > 1e-6).
  Dense bases (neurons, PCA, rotations) have nearly every unit always on; that is their nature.
- FVU: fraction of variance unexplained by decode(encode(X)), where the basis decodes.
"""
from __future__ import annotations

import numpy as np

ACTIVE_EPS = 1e-6
ALWAYS_ON = 0.99


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def best_single_unit(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray,
                     n_thresholds: int = 15) -> tuple[int, float, float]:
    """(unit, train F1, test F1) of the best threshold classifier on one unit, chosen on train."""
    Xtr = np.asarray(Xtr, np.float32)
    pos = np.asarray(ytr) == 1
    qs = np.quantile(Xtr, np.linspace(0.0, 1.0, n_thresholds + 2)[1:-1], axis=0)  # [Q, U]
    n_pos = int(pos.sum())
    best_f1 = np.full(Xtr.shape[1], -1.0)
    best_thr = np.zeros(Xtr.shape[1], np.float32)
    best_sign = np.ones(Xtr.shape[1], np.float32)
    for sign in (1.0, -1.0):
        A = sign * Xtr
        for thr in sign * qs:
            pred = A > thr
            tp = pred[pos].sum(0)
            fp = pred.sum(0) - tp
            f1 = _f1(tp, fp, n_pos - tp)
            better = f1 > best_f1
            best_f1 = np.where(better, f1, best_f1)
            best_thr = np.where(better, thr, best_thr)
            best_sign = np.where(better, sign, best_sign)
    unit = int(np.argmax(best_f1))
    pred = best_sign[unit] * np.asarray(Xte[:, unit], np.float32) > best_thr[unit]
    yt = np.asarray(yte) == 1
    tp = int((pred & yt).sum())
    test_f1 = float(_f1(np.array(tp), np.array(int(pred.sum()) - tp), np.array(int(yt.sum()) - tp)))
    return unit, float(best_f1[unit]), test_f1


def unit_activity(codes: np.ndarray) -> tuple[float, float]:
    """(dead fraction, always-on fraction) of the units over the rows."""
    rate = (np.abs(codes) > ACTIVE_EPS).mean(axis=0)
    return float((rate == 0).mean()), float((rate > ALWAYS_ON).mean())


def coverage(best_f1: list[float], threshold: float) -> float:
    return float(np.mean([f >= threshold for f in best_f1])) if best_f1 else 0.0
