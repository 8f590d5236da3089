"""Binary classification metrics for probes (positive class = 1): the one F1 of probebank.

`f1_from_counts` is the single definition of F1, vectorised over confusion-matrix counts;
`f1_score`, `binary_metrics`, the controls, the shortcut baselines, the basis metrics and the
bootstrap intervals all compute F1 through it. The definitions are scikit-learn's (f1_score / precision_score / recall_score with
zero_division=0, accuracy_score, matthews_corrcoef, roc_auc_score), computed from one
confusion matrix and one ranking instead of six sklearn calls: the sklearn functions cost
~11 ms per probe in input validation alone, more than fitting a small-k probe, and a k sweep
scores ~15 probes per (feature, layer). tests/test_probe.py checks the values against
sklearn.metrics on random and degenerate inputs.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

METRIC_NAMES = ("f1", "accuracy", "precision", "recall", "mcc", "roc_auc")


def f1_from_counts(tp: Any, fp: Any, fn: Any) -> Any:
    """F1 = 2 tp / (2 tp + fp + fn), 0 where there is no true and no predicted positive (sklearn's
    zero_division=0). Works elementwise on arrays of counts; a float for scalar counts."""
    tp, fp, fn = np.asarray(tp), np.asarray(fp), np.asarray(fn)
    denom = 2 * tp + fp + fn
    out = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    return float(out) if out.ndim == 0 else out


def f1_score(y_true: Any, y_pred: Any) -> float:
    """Binary F1 of the positive class (1 / True)."""
    yt = _as_binary("y_true", y_true)
    yp = _as_binary("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_pred has {yp.size} values for {yt.size} labels")
    tp = int(np.count_nonzero(yt & yp))
    return f1_from_counts(tp, int(np.count_nonzero(~yt & yp)), int(np.count_nonzero(yt & ~yp)))


def _as_binary(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold binary labels 0/1 (positive class = 1)")
    return arr.astype(bool)


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half, as sklearn); None with one class only."""
    y = _as_binary("y_true", y_true)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores has {s.size} values for {y.size} labels")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    from scipy.stats import rankdata  # scipy.stats costs ~0.7 s to import: only when an AUC is scored

    # Mann-Whitney U with average ranks for ties == trapezoidal ROC AUC.
    ranks = rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray | None) -> dict[str, float | None]:
    """f1 / precision / recall of the positive class, accuracy, MCC and ROC-AUC.

    Degenerate cases follow sklearn with zero_division=0: precision is 0 when nothing is
    predicted positive, recall is 0 when there is no positive, MCC is 0 when any marginal
    is empty. roc_auc is None when y_true holds a single class (or when scores is None).
    """
    yt = _as_binary("y_true", y_true)
    yp = _as_binary("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_pred has {yp.size} values for {yt.size} labels")
    n = yt.size
    if n == 0:
        raise ValueError("cannot score an empty test set")
    tp = int(np.count_nonzero(yt & yp))
    fp = int(np.count_nonzero(~yt & yp))
    fn = int(np.count_nonzero(yt & ~yp))
    tn = n - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = f1_from_counts(tp, fp, fn)
    denom = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    # Integer products are exact; the float division matches sklearn to rounding.
    mcc = (tp * tn - fp * fn) / math.sqrt(denom) if denom else 0.0
    return {
        "f1": float(f1),
        "accuracy": float((tp + tn) / n),
        "precision": float(precision),
        "recall": float(recall),
        "mcc": float(mcc),
        "roc_auc": None if scores is None else roc_auc(yt, scores),
    }
