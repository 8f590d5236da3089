"""How well a basis's units line up with supervised features: pure functions on codes.

- best single unit: per feature, every unit gets its best threshold and sign on the train
  split; the unit with the best train F1 is scored on the test split (chosen on train, so a
  wider basis gains no multiple-comparison advantage on test). The rule is the one of the
  single_unit records (probebank.probing.controls.best_single_unit: every cut tried).
- coverage: share of features whose best single unit reaches F1 >= 0.8 / >= 0.9.
- dead / always-on units: never active / active on more than 99% of rows (|code| > 1e-6).
  Dense bases (neurons, PCA, rotations) have nearly every unit always on; that is their nature.
- FVU: fraction of variance unexplained by decode(encode(X)), where the basis decodes.
"""
from __future__ import annotations

import numpy as np

ACTIVE_EPS = 1e-6
ALWAYS_ON = 0.99


def unit_activity(codes: np.ndarray) -> tuple[float, float]:
    """(dead fraction, always-on fraction) of the units over the rows."""
    rate = (np.abs(codes) > ACTIVE_EPS).mean(axis=0)
    return float((rate == 0).mean()), float((rate > ALWAYS_ON).mean())


def coverage(best_f1: list[float], threshold: float) -> float:
    return float(np.mean([f >= threshold for f in best_f1])) if best_f1 else 0.0


def fvu(X: np.ndarray, recon: np.ndarray) -> float:
    """Fraction of variance unexplained: sum |x - x_hat|^2 / sum |x - mean|^2."""
    X = np.asarray(X, dtype=np.float64)
    total = float(((X - X.mean(axis=0)) ** 2).sum())
    return float(((X - recon) ** 2).sum()) / max(total, 1e-12)
