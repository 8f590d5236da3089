"""A regression card's values: one per probe row, and train/test splits of them.

A built regression dataset keeps each target's number in its `value` columns
(probebank.data.examples); the activation store keeps (example, target) per row, so the value of
every row is looked up here. Splits are grouped as for classification (no `group` on both sides).
With `split.stratified` the rows are stratified on value-quantile bins (VALUE_BINS of them, fewer
when ties or the groups cannot carry that many), so train and test cover the same range of values.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from probebank.data.examples import BuiltDataset, row_values
from probebank.data.splits import MIN_ROWS_PER_CLASS, grouped_stratified_split

VALUE_BINS = 5


@dataclass
class ValueSplit:
    """One seed's train/test rows of a regression feature, with their values."""

    feature: str
    seed: int
    train: np.ndarray    # row indices
    test: np.ndarray
    y_train: np.ndarray  # float64 values
    y_test: np.ndarray
    bins: int            # value-quantile bins the split is stratified on (1 = not stratified)


def store_values(built: BuiltDataset, rows: dict[str, np.ndarray]) -> np.ndarray:
    """The value of every store row (float64), from its (example, target) indices."""
    per_example = [row_values(ex) for ex in built.dataset]
    return np.asarray([per_example[e][t] for e, t in zip(rows["example"].tolist(), rows["target"].tolist())],
                      dtype=np.float64)


def value_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantile bin (0..n_bins-1) of each value; equal values share a bin, so ties may leave fewer bins."""
    values = np.asarray(values, dtype=np.float64)
    if n_bins <= 1:
        return np.zeros(values.size, dtype=np.int64)
    edges = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def value_split(values: np.ndarray, groups: np.ndarray | None, test_size: float, seed: int, *,
                stratified: bool = True, n_bins: int = VALUE_BINS) -> tuple[np.ndarray, np.ndarray, int]:
    """(train_idx, test_idx, bins): grouped and seeded; stratified on value-quantile bins when asked.

    Tries n_bins bins, then fewer, until the grouped split can put every bin on both sides; with one
    bin it is a plain grouped split (a ValueError then means no split exists, e.g. a single group).
    """
    for bins in range(n_bins if stratified else 1, 0, -1):
        codes = value_bins(values, bins)
        try:
            train, test = grouped_stratified_split(codes, groups, test_size, seed)
        except ValueError:
            if bins == 1:
                raise
            continue
        return train, test, int(np.unique(codes).size)
    raise AssertionError("unreachable")  # the loop returns or raises at bins == 1


def value_splits(built: BuiltDataset, rows: dict[str, np.ndarray], *, seeds: Sequence[int] = (0,),
                 min_rows: int = MIN_ROWS_PER_CLASS) -> list[ValueSplit]:
    """One regression task per seed (seed s splits with the card's split seed + s), as feature_splits does
    for classes. A seed whose split leaves fewer than `min_rows` rows, or a single value, on a side is left out."""
    card = built.card
    values = store_values(built, rows)
    groups = np.asarray(built.dataset["group"])[rows["example"]] if card.split.grouped else None
    out = []
    for seed in seeds:
        train, test, bins = value_split(values, groups, card.split.test_size, card.split.seed + seed,
                                        stratified=card.split.stratified)
        y_tr, y_te = values[train], values[test]
        if min(train.size, test.size) < min_rows or np.ptp(y_tr) == 0 or np.ptp(y_te) == 0:
            continue
        out.append(ValueSplit(card.labels.value_name, seed, train, test, y_tr, y_te, bins))
    return out


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 - residual / total sum of squares (sklearn's r2_score; 0 when y_true is constant and matched)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    ss_res = float(np.sum((y_true - np.asarray(y_pred, dtype=np.float64)) ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if ss_tot == 0:
        return 0.0 if ss_res == 0 else -np.inf
    return 1.0 - ss_res / ss_tot


def categorical_shortcut_r2(values_train: Sequence[Hashable], y_train: np.ndarray,
                            values_test: Sequence[Hashable], y_test: np.ndarray) -> float:
    """R2 on the test rows of value -> mean training value (unseen values: the training mean)."""
    sums: dict[Hashable, list[float]] = {}
    for v, y in zip(values_train, np.asarray(y_train, dtype=np.float64).tolist()):
        sums.setdefault(v, []).append(y)
    table = {v: sum(ys) / len(ys) for v, ys in sums.items()}
    fallback = float(np.mean(y_train))
    return r2_score(y_test, np.array([table.get(v, fallback) for v in values_test]))


def numeric_shortcut_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        *, max_depth: int = 3, seed: int = 0) -> float:
    """R2 on the test rows of a depth-`max_depth` regression tree on one number."""
    from sklearn.tree import DecisionTreeRegressor  # scikit-learn loads only when a gate needs it

    tree = DecisionTreeRegressor(max_depth=max_depth, random_state=seed)
    tree.fit(np.asarray(x_train, dtype=np.float64).reshape(-1, 1), np.asarray(y_train, dtype=np.float64))
    return r2_score(y_test, tree.predict(np.asarray(x_test, dtype=np.float64).reshape(-1, 1)))


def value_shortcuts(built: BuiltDataset, rows: dict[str, np.ndarray]) -> dict[str, float]:
    """R2 of each shortcut (token_identity, position, length) on the probes' seed-0 split of a regression card."""
    splits = value_splits(built, rows)
    if not splits:
        return {}
    sp = splits[0]
    out = {"token_identity": categorical_shortcut_r2(rows["token"][sp.train].tolist(), sp.y_train,
                                                     rows["token"][sp.test].tolist(), sp.y_test)}
    for name in ("position", "length"):
        out[name] = numeric_shortcut_r2(rows[name][sp.train], sp.y_train, rows[name][sp.test], sp.y_test)
    return {k: round(float(v), 4) for k, v in out.items()}
