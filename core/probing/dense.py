"""The dense baseline: an L2 logistic probe on every unit, its C chosen on an inner split of the training rows.

With more units than training rows (1536 units, a few hundred rows) the probe at C=1 separates its
training rows whatever the labels, and its test F1 can fall far below a single unit's. So C is
chosen from a small log grid (ProbeConfig.dense_C_grid): each C is fitted on the inner-train rows
and scored by F1 on the inner validation rows, both cut from the *training* rows (the test rows
never choose it), and the best C (among ties the one nearest 1, the C it had before) is refitted
on all training rows. The inner fits share the training rows' Gram matrix (a submatrix of it), are
warm-started along the path of ascending C, and are solved to a looser tolerance (only the signs
of the validation scores matter), so the whole choice costs about one more dense fit.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probebank.data.splits import grouped_stratified_split
from probebank.metrics import f1_score
from probebank.probing.newton import fit_logistic, fit_logistic_dual, gram_matrix
from probebank.probing.problem import balanced_sample_weight
from probebank.probing.schema import DenseFit

VAL_SHARE = 0.25  # share of the training rows held out as inner validation rows (also the val_f1 layer pick's)
INNER_TOL = 1e-3  # the inner fits' stopping tolerance (fit_logistic's tol): F1 needs only the scores' signs

InnerSplit = tuple[np.ndarray, np.ndarray]  # (inner-train, validation) positions into the training rows


def check_C_grid(grid: Sequence[float]) -> list[float]:
    """The grid as ascending floats; ValueError unless it is non-empty and every C is finite and > 0."""
    values = [float(c) for c in grid]
    if not values or not all(np.isfinite(c) and c > 0 for c in values):
        raise ValueError(f"the dense C grid must hold finite values > 0, got {list(grid)}")
    return sorted(set(values))


def row_split(y: np.ndarray, seed: int) -> InnerSplit | None:
    """A stratified VAL_SHARE split of the training rows, ungrouped (None when a class has < 2 rows)."""
    try:
        return grouped_stratified_split(np.asarray(y, dtype=bool), None, VAL_SHARE, seed)
    except ValueError:
        return None


def validation_f1s(Z: np.ndarray, y: np.ndarray, grid: Sequence[float], split: InnerSplit, *, max_iter: int,
                   gram: np.ndarray | None = None) -> list[float]:
    """F1 on the validation rows of the probe fitted on the inner-train rows, for each C of the ascending grid.

    Z: the standardised training rows; gram: their Z Z' (float32) when already formed, so the inner
    fits take its submatrix. Each fit starts from the previous C's solution.
    """
    tr, va = split
    ytr, yva = y[tr], y[va]
    if np.unique(ytr).size < 2 or not yva.size:
        raise ValueError("the inner split needs both classes among its inner-train rows and some validation rows")
    sw = balanced_sample_weight(ytr)
    out = []
    if Z.shape[1] > tr.size:  # wide: solved in the span of the inner-train rows, on the Gram matrix alone
        K = gram if gram is not None else gram_matrix(Z[np.concatenate([tr, va])])
        if gram is None:  # K is over (tr, va) in that order
            K_in, K_va = K[:tr.size, :tr.size], K[tr.size:, :tr.size]
        else:
            K_in, K_va = K[np.ix_(tr, tr)], K[np.ix_(va, tr)]
        a: np.ndarray | None = None
        b = 0.0
        for C in grid:
            a, b, _, _ = fit_logistic_dual(K_in, ytr, sw, C, dual_init=a, intercept_init=b, max_iter=max_iter,
                                           tol=INNER_TOL)
            out.append(f1_score(yva, K_va @ a + b > 0))
        return out
    w: np.ndarray | None = None
    b = 0.0
    for C in grid:
        w, b, _, _ = fit_logistic(Z[tr], ytr, sw, C, coef_init=w, intercept_init=b, max_iter=max_iter, tol=INNER_TOL)
        out.append(f1_score(yva, Z[va] @ w + b > 0))
    return out


def _nearest_one(Cs: Sequence[float]) -> float:
    """The C nearest 1 in log (the smaller of two as near): among Cs that tie on the validation rows, the
    one the probe had before C was chosen, so the choice moves it only where those rows show a gain."""
    return min(Cs, key=lambda c: (abs(np.log(c)), c))


def fit_dense(Z: np.ndarray, y: np.ndarray, grid: Sequence[float], split: InnerSplit | None, chosen_on: str, *,
              max_iter: int, gram: np.ndarray | None = None) -> tuple[np.ndarray, float, bool, DenseFit]:
    """The dense probe on standardised training rows Z: (coef, intercept, converged, how C was chosen).

    grid: ascending Cs (check_C_grid); the best validation F1 wins, ties going to the C nearest 1 (in log).
    With one C, or no split (None), the probe is fitted at grid's C nearest 1 and `chosen_on` is 'fixed'. The final fit starts from zero like DenseProbe's, so it
    equals DenseProbe(C=the chosen C) on the same rows.
    """
    grid = list(grid)
    f1s: list[float] = []
    if len(grid) > 1 and split is not None:
        f1s = validation_f1s(Z, y, grid, split, max_iter=max_iter, gram=gram)
        C = _nearest_one([c for c, f in zip(grid, f1s) if f == max(f1s)])
    else:
        C = _nearest_one(grid)
        chosen_on = "fixed"
    w, b, _, ok = fit_logistic(Z, y, balanced_sample_weight(y), C, max_iter=max_iter, gram=gram)
    info = DenseFit(C=C, C_grid=grid, chosen_on=chosen_on, val_f1=[float(f) for f in f1s],
                    n_val=0 if chosen_on == "fixed" or split is None else int(split[1].size),
                    n_units=int(Z.shape[1]), n_train=int(Z.shape[0]))
    return w, b, ok, info
