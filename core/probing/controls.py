"""Controls: the evidence that a probe result reflects the model, not the probe or the data.

Each control is measured on the probe's own split (same rows, same method, same k grid):

- `grouped_shuffle`: the control task (after Hewitt & Liang 2019). Binary labels are permuted
  at the level of the examples' groups: when every group carries one label (document-level
  data such as language-udhr, whose group is a UDHR article), whole groups swap labels, so all
  rows of a group still share one label; when labels vary inside groups (per-token data) the
  rows are permuted. Train and test rows are shuffled separately, each keeping its class
  balance. The control probe is trained on shuffled train labels and scored on shuffled test
  labels: the control task is a task in its own right that carries no signal (train and test
  groups are disjoint, so a random group label cannot generalise), and its F1 is the level a
  probe of this method and k reaches by chance on this split. Scoring it on the real test labels
  instead would couple the control to the real feature (the high-variance units a shuffled-label
  probe picks can correlate with the label by accident, in either sign).
  selectivity = F1 - shuffled F1.
- `random_rotation`: a seeded random orthogonal matrix Q (QR of a Gaussian, signs fixed so Q is
  Haar-distributed), one per (layer width, site, layer); the probe runs on X @ Q. If single units
  beat the rotated basis at small k, the neuron basis is privileged (Gurnee et al. 2023).
- token identity: the label predicted from the target token id alone
  (probebank.data.shortcuts.categorical_shortcut_f1). For mean- or max-pooled rows the stored token
  is only the last token of a multi-token span, so the baseline is not defined: None.
- `single_unit_f1`: every unit alone as a threshold classifier (best threshold on train, both
  directions), scored on test, vectorised over all units: how many neurons alone reach F1 >= 0.9.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from probebank.data.shortcuts import categorical_shortcut_f1
from probebank.metrics import f1_from_counts
from probebank.probing.newton import BLAS_THREADS, blas_limit

MONO_F1 = 0.9  # a unit "alone reaches the feature" at this test F1 (Gurnee et al.'s threshold)
TOKEN_AGGREGATIONS = ("each", "first", "last")  # rows whose `token` is the row's own token


def _shuffle_side(y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if groups is None:
        return rng.permutation(y)
    names, inverse = np.unique(groups, return_inverse=True)
    first = np.zeros(names.size, dtype=np.int64)
    first[inverse[::-1]] = np.arange(y.size)[::-1]  # the first row of each group
    group_label = y[first]
    if names.size < 2 or not np.array_equal(group_label[inverse], y):
        return rng.permutation(y)  # labels vary inside groups (per-token data): permute rows
    # Whole groups swap labels; retry until both classes are present (groups differ in size).
    for _ in range(20):
        out = rng.permutation(group_label)[inverse]
        if np.unique(out).size == np.unique(y).size:
            return out
    return rng.permutation(y)


def grouped_shuffle(y_train: np.ndarray, y_test: np.ndarray, groups_train: np.ndarray | None,
                    groups_test: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Control-task labels for one split: (shuffled y_train, shuffled y_test), seeded."""
    rng = np.random.default_rng([seed, 7919])  # a stream of its own, apart from the split's
    return (_shuffle_side(np.asarray(y_train), groups_train, rng),
            _shuffle_side(np.asarray(y_test), groups_test, rng))


@lru_cache(maxsize=8)
def _rotation(width: int, seed: int) -> np.ndarray:

    rng = np.random.default_rng([seed, width, 104729])
    with blas_limit(BLAS_THREADS):  # idle BLAS threads spinning on a busy 2-core machine cost ~10x here
        q, r = np.linalg.qr(rng.standard_normal((width, width)))
    q *= np.sign(np.diag(r))  # Haar measure: fix the signs of QR's arbitrary column scaling
    q.setflags(write=False)
    return q.astype(np.float32)


ROTATION_SEED = 0  # one random rotation per layer width, the same for every feature, layer and seed


def random_rotation(X: np.ndarray, seed: int) -> np.ndarray:
    """X @ Q for a seeded random orthogonal Q of X's width (the same Q for every feature)."""
    X = np.asarray(X, dtype=np.float32)
    return X @ _rotation(int(X.shape[1]), int(seed))


def token_identity_f1(tokens: np.ndarray | None, train: np.ndarray, y_train: np.ndarray, test: np.ndarray,
                      y_test: np.ndarray) -> float | None:
    """F1 of the token id -> majority label lookup; None when rows have no single token."""
    if tokens is None:
        return None
    return categorical_shortcut_f1(tokens[train].tolist(), y_train, tokens[test].tolist(), y_test)


@dataclass
class UnitThresholds:
    """Every unit as a one-threshold classifier fitted on train: the one "best single unit" rule of probebank.

    Per unit, `threshold` and `upward` (True: above the threshold is positive) maximise train F1
    (`train_f1`); `test_f1` scores that rule on the test rows. A constant unit predicts nothing
    positive (F1 0). The single_unit records of a run and the basis metrics both read it.
    """

    train_f1: np.ndarray
    test_f1: np.ndarray
    threshold: np.ndarray
    upward: np.ndarray

    def scores(self, X: np.ndarray, unit: int) -> np.ndarray:
        """Signed distance of each row of X from `unit`'s threshold (> 0 means predicted positive)."""
        return (np.asarray(X[:, unit], dtype=np.float64) - float(self.threshold[unit])) * (1.0 if self.upward[unit] else -1.0)

    def best_on_train(self) -> int:
        """The unit with the best train F1 (ties: the lower index), so a wider basis gains nothing on test."""
        return int(np.argmax(self.train_f1))


def single_unit_f1(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> UnitThresholds:
    """Every unit as a one-threshold classifier fitted on train, scored on test (vectorised over units).

    Per unit, the threshold and direction (x > t or x < t means positive) maximise train F1; cuts
    are taken midway between consecutive distinct train values, so every possible cut is tried.
    """
    Xtr = np.asarray(X_train, dtype=np.float32)
    ytr = np.asarray(y_train).astype(bool)
    Xte = np.asarray(X_test, dtype=np.float32)
    yte = np.asarray(y_test).astype(bool)
    n, d = Xtr.shape
    order = np.argsort(Xtr, axis=0, kind="stable")
    xs = np.take_along_axis(Xtr, order, axis=0)
    ys = ytr[order]                                  # labels in ascending order of each unit
    n_pos = int(ytr.sum())
    below_pos = np.cumsum(ys, axis=0)[:-1]          # positives among the i+1 smallest rows (cut after i)
    below = np.arange(1, n)[:, None]
    above_pos = n_pos - below_pos
    above = n - below
    # "above the cut is positive": tp = above_pos, fp = above - above_pos, fn = below_pos
    f1_up = f1_from_counts(above_pos, above - above_pos, below_pos)
    f1_down = f1_from_counts(below_pos, below - below_pos, above_pos)
    valid = xs[1:] > xs[:-1]                         # a cut only between distinct values
    f1_up = np.where(valid, f1_up, -1.0)
    f1_down = np.where(valid, f1_down, -1.0)
    best_up, best_down = f1_up.argmax(axis=0), f1_down.argmax(axis=0)
    cols = np.arange(d)
    up = f1_up[best_up, cols] >= f1_down[best_down, cols]
    cut = np.where(up, best_up, best_down)
    thr = (xs[cut, cols] + xs[cut + 1, cols]) / 2.0
    train_f1 = np.where(up, f1_up[best_up, cols], f1_down[best_down, cols])
    pred = np.where(up[None, :], Xte > thr[None, :], Xte < thr[None, :])
    constant = ~valid.any(axis=0)                    # a constant unit predicts nothing positive
    pred[:, constant] = False
    tp = (pred & yte[:, None]).sum(axis=0)
    fp = (pred & ~yte[:, None]).sum(axis=0)
    test_f1 = f1_from_counts(tp, fp, int(yte.sum()) - tp)
    return UnitThresholds(train_f1=np.where(constant, 0.0, train_f1), test_f1=np.asarray(test_f1, dtype=np.float64),
                          threshold=np.where(constant, xs[0], thr),  # score 0: never positive
                          upward=np.where(constant, True, up))


def best_single_unit(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                     y_test: np.ndarray) -> tuple[int, float, float]:
    """(unit, train F1, test F1) of the best threshold classifier on one unit, chosen on train."""
    rule = single_unit_f1(X_train, y_train, X_test, y_test)
    unit = rule.best_on_train()
    return unit, float(rule.train_f1[unit]), float(rule.test_f1[unit])
