"""Shortcut baselines: how well does a trivial cue predict the label, on the probe's own split?

A feature that the target token's identity alone predicts (e.g. "is this token ' the'?") says
little about a model's representation; the same holds for position or length. These baselines
are used both by the dataset quality gates (`probebank validate`) and by the probe controls
recorded with each result.

- `categorical_shortcut_f1`: a lookup table value -> majority label learnt on the training rows
  (unseen values fall back to the training majority). For token identity, the value is the token id.
- `numeric_shortcut_f1`: a shallow decision tree on one number (position, length), which catches
  thresholds and bands.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

from probebank.metrics import f1_score


def _f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return f1_score(np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int))


def categorical_shortcut_predict(values_train: Sequence[Hashable], y_train: np.ndarray,
                                 values_test: Sequence[Hashable]) -> np.ndarray:
    """Predict each test row's binary label as the majority label of its value in training."""
    y_train = np.asarray(y_train, dtype=int)
    if len(values_train) != y_train.size:
        raise ValueError(f"{len(values_train)} values but {y_train.size} labels")
    fallback = int(y_train.mean() > 0.5) if y_train.size else 0
    votes: dict[Hashable, Counter] = defaultdict(Counter)
    for v, y in zip(values_train, y_train.tolist()):
        votes[v][y] += 1
    # Ties go to the positive class: a value seen equally often with both labels is a coin flip
    # either way, and predicting positive keeps the F1 of a useless cue from collapsing to 0.
    table = {v: int(c[1] >= c[0]) for v, c in votes.items()}
    return np.array([table.get(v, fallback) for v in values_test], dtype=int)


def categorical_shortcut_f1(values_train: Sequence[Hashable], y_train: np.ndarray,
                            values_test: Sequence[Hashable], y_test: np.ndarray) -> float:
    """F1 on the test rows of the value -> majority-label lookup learnt on the training rows."""
    return _f1(y_test, categorical_shortcut_predict(values_train, y_train, values_test))


def numeric_shortcut_f1(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        *, max_depth: int = 3, seed: int = 0) -> float:
    """F1 on the test rows of a depth-`max_depth` decision tree on one number (class-balanced)."""
    from sklearn.tree import DecisionTreeClassifier  # scikit-learn loads only when a gate needs it

    y_train = np.asarray(y_train, dtype=int)
    if np.unique(y_train).size < 2:
        return _f1(y_test, np.full(len(y_test), int(y_train[0]) if y_train.size else 0))
    tree = DecisionTreeClassifier(max_depth=max_depth, class_weight="balanced", random_state=seed)
    tree.fit(np.asarray(x_train, dtype=np.float64).reshape(-1, 1), y_train)
    return _f1(y_test, tree.predict(np.asarray(x_test, dtype=np.float64).reshape(-1, 1)))
