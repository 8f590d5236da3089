"""Splits: grouped + stratified + seeded, and one-vs-rest balancing."""
from __future__ import annotations

import numpy as np
import pytest

from probebank.data.splits import balanced_one_vs_rest, grouped_stratified_split


def grouped_data(n_groups: int = 120, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Documents of 1-12 rows; each document mostly one class, some mixed."""
    rng = np.random.default_rng(seed)
    ys, gs = [], []
    for g in range(n_groups):
        size = int(rng.integers(1, 13))
        main = int(rng.integers(n_classes))
        labels = np.where(rng.random(size) < 0.8, main, rng.integers(n_classes, size=size))
        ys.append(labels)
        gs.append(np.full(size, g))
    return np.concatenate(ys), np.concatenate(gs)


def check_partition(train: np.ndarray, test: np.ndarray, n: int) -> None:
    assert train.dtype.kind == "i" and test.dtype.kind == "i"
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # sorted, unique
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(n))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("test_size", [0.2, 0.3, 0.5])
def test_grouped_split_properties(seed: int, test_size: float) -> None:
    y, groups = grouped_data(seed=seed)
    train, test = grouped_stratified_split(y, groups, test_size, seed)
    check_partition(train, test, y.size)
    # no document on both sides
    assert np.intersect1d(groups[train], groups[test]).size == 0
    # overall and per-class test share within a few points of the target
    assert abs(test.size / y.size - test_size) < 0.04
    for c in np.unique(y):
        share = np.sum(y[test] == c) / np.sum(y == c)
        assert abs(share - test_size) < 0.06, (c, share)


def test_grouped_split_deterministic_and_seeded() -> None:
    y, groups = grouped_data()
    a = grouped_stratified_split(y, groups, 0.3, seed=7)
    b = grouped_stratified_split(y, groups, 0.3, seed=7)
    c = grouped_stratified_split(y, groups, 0.3, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_ungrouped_split_is_exactly_stratified() -> None:
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = grouped_stratified_split(y, None, 0.3, seed=0)
    check_partition(train, test, y.size)
    assert [int(np.sum(y[test] == c)) for c in (0, 1, 2)] == [15, 9, 6]
    other = grouped_stratified_split(y, None, 0.3, seed=1)[1]
    assert not np.array_equal(test, other)


def test_unique_groups_fall_back_to_row_split() -> None:
    y = np.array([0] * 40 + [1] * 20)
    groups = np.array([f"doc{i}" for i in range(60)])
    a = grouped_stratified_split(y, groups, 0.25, seed=3)
    b = grouped_stratified_split(y, None, 0.25, seed=3)
    assert np.array_equal(a[1], b[1])
    assert int(np.sum(y[a[1]] == 1)) == 5


def test_rare_class_lands_on_both_sides_for_every_seed() -> None:
    # class 1 lives in only 2 small documents among 60 large single-class ones
    y = np.concatenate([np.zeros(600, dtype=int), [1, 1, 1]])
    groups = np.concatenate([np.repeat(np.arange(60), 10), [100, 100, 101]])
    for seed in range(25):
        train, test = grouped_stratified_split(y, groups, 0.3, seed)
        assert 1 in y[train] and 1 in y[test], seed
        assert np.intersect1d(groups[train], groups[test]).size == 0


def test_repair_when_greedy_leaves_a_class_on_one_side() -> None:
    # class 1 has one row in each of two huge class-0 documents: when both come after the
    # small documents filled the test share, the greedy pass keeps both in train (7 of 25
    # seeds), and the repair step must move one across.
    y = np.concatenate([np.zeros(200, dtype=int), np.zeros(200, dtype=int), [1], np.zeros(200, dtype=int), [1]])
    groups = np.concatenate([np.repeat(np.arange(20), 10), np.full(201, 100), np.full(201, 101)])
    for seed in range(25):
        train, test = grouped_stratified_split(y, groups, 0.3, seed)
        assert 1 in y[train] and 1 in y[test], seed
        assert np.intersect1d(groups[train], groups[test]).size == 0


def test_string_labels_and_groups() -> None:
    y, groups = grouped_data(seed=5)
    names = np.array(["noun", "verb", "adj"])[y]
    docs = np.array([f"d{g}" for g in groups])
    train, test = grouped_stratified_split(names, docs, 0.3, seed=0)
    assert set(names[test]) == {"noun", "verb", "adj"}
    assert np.intersect1d(docs[train], docs[test]).size == 0


@pytest.mark.parametrize("y, groups, msg", [
    (np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 3, 3]), "class 1 occurs in 1 group"),
    (np.array([0, 0, 0, 1]), None, "class 1 has 1 example"),
    (np.array([0, 1, 0, 1]), np.array([0, 0, 0]), "groups has shape"),
])
def test_impossible_splits_raise(y: np.ndarray, groups: np.ndarray | None, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        grouped_stratified_split(y, groups, 0.3, seed=0)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5])
def test_bad_test_size(test_size: float) -> None:
    with pytest.raises(ValueError, match="test_size"):
        grouped_stratified_split(np.array([0, 1, 0, 1]), None, test_size, seed=0)


# ---------------------------------------------------------------- one-vs-rest balancing

def test_balanced_one_vs_rest_even_negatives() -> None:
    y = np.repeat([0, 1, 2, 3], [30, 100, 100, 100])
    idx = np.arange(y.size)
    subset, yb = balanced_one_vs_rest(y, 0, idx, seed=0)
    assert np.array_equal(subset, np.sort(subset))
    assert yb.sum() == 30 and (yb == 0).sum() == 30
    assert np.array_equal(np.flatnonzero(y == 0), subset[yb == 1])  # every positive kept
    assert np.array_equal(yb, (y[subset] == 0).astype(int))
    counts = np.bincount(y[subset][yb == 0], minlength=4)[1:]
    assert list(counts) == [10, 10, 10]


def test_balanced_one_vs_rest_water_fills_small_classes() -> None:
    y = np.repeat([0, 1, 2, 3], [40, 3, 100, 100])
    subset, yb = balanced_one_vs_rest(y, 0, np.arange(y.size), seed=1)
    neg = np.bincount(y[subset][yb == 0], minlength=4)
    assert neg[1] == 3  # the small class gives all it has
    assert sorted(neg[2:]) == [18, 19]  # the other 37 are shared as evenly as possible
    assert (yb == 0).sum() == 40


def test_balanced_one_vs_rest_keeps_all_when_negatives_are_few() -> None:
    y = np.repeat([0, 1, 2], [50, 10, 5])
    subset, yb = balanced_one_vs_rest(y, 0, np.arange(y.size), seed=0)
    assert subset.size == y.size and yb.sum() == 50


def test_balanced_one_vs_rest_respects_idx_and_seed() -> None:
    y = np.repeat([0, 1, 2], [20, 200, 200])
    idx = np.arange(0, y.size, 2)  # e.g. a train split
    a, _ = balanced_one_vs_rest(y, 0, idx, seed=0)
    b, _ = balanced_one_vs_rest(y, 0, idx, seed=0)
    c, _ = balanced_one_vs_rest(y, 0, idx, seed=1)
    assert np.isin(a, idx).all()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_balanced_one_vs_rest_missing_positive_raises() -> None:
    y = np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match="no rows"):
        balanced_one_vs_rest(y, 5, np.arange(4), seed=0)


def test_unstratified_split_aims_at_the_overall_share_only() -> None:
    """split.stratified: false (bug 4: the field was read nowhere). Classes 9:1, ungrouped."""
    y = np.array([0] * 900 + [1] * 100)
    share_pos = []
    for seed in range(20):
        train, test = grouped_stratified_split(y, None, 0.3, seed, stratified=False)
        check_partition(train, test, y.size)
        assert test.size == 300                              # the overall share is still exact
        assert set(y[train]) == set(y[test]) == {0, 1}        # every class on both sides
        share_pos.append(float((y[test] == 1).sum()) / 100)
        strat = grouped_stratified_split(y, None, 0.3, seed)[1]
        assert (y[strat] == 1).sum() == 30                    # stratified: exactly 30% of each class
    assert len(set(share_pos)) > 3                            # unstratified: the class share varies by seed
    assert abs(np.mean(share_pos) - 0.3) < 0.05


def test_unstratified_grouped_split_keeps_groups_whole() -> None:
    y, groups = grouped_data(seed=5)
    train, test = grouped_stratified_split(y, groups, 0.3, 1, stratified=False)
    check_partition(train, test, y.size)
    assert np.intersect1d(groups[train], groups[test]).size == 0
    assert abs(test.size / y.size - 0.3) < 0.05


def test_feature_splits_honour_the_cards_stratified_field() -> None:
    from types import SimpleNamespace

    from probebank.data.registry import load_catalog
    from probebank.data.splits import feature_splits

    card = load_catalog([]).get("language-udhr").card
    n = 600
    rng = np.random.default_rng(0)
    labels = rng.integers(len(card.labels.classes), size=n)
    rows = {"label": labels, "example": np.arange(n)}
    ungrouped = card.split.model_copy(update={"grouped": False})
    splits = {}
    for strat in (True, False):
        c = card.model_copy(update={"split": ungrouped.model_copy(update={"stratified": strat})})
        built = SimpleNamespace(card=c, dataset={"group": list(range(n))})
        splits[strat] = feature_splits(built, rows, balance=False)  # type: ignore[arg-type]
    assert [s.feature for s in splits[True]] == [s.feature for s in splits[False]]
    assert any(not np.array_equal(a.test, b.test) for a, b in zip(splits[True], splits[False], strict=True))
