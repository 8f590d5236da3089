"""A regression card's values: one per probe row, and train/test splits of them.

A built regression dataset keeps each target's number in its `value` columns
(probebank.data.examples); the activation store keeps (example, target) per row, so the value of
every row is looked up here. Splits are grouped as for classification (no `group` on both sides).
With `split.stratified` the rows are stratified on value-quantile bins (VALUE_BINS of them, fewer
when ties or the groups cannot carry that many), so train and test cover the same range of values.
"""
from __future__ import annotations

from collections.abc import Sequence
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
