"""Train/test splits: stratified by label, grouped by document, seeded; one-vs-rest balancing.

Why not sklearn's StratifiedGroupKFold: it can only make test folds of size 1/n_splits
(test_size=0.3 becomes 1/3). `grouped_stratified_split` assigns whole groups greedily, in
a seeded random order, to whichever side brings every class closer to its target test
share, so it honours test_size exactly up to group granularity; then it repairs the rare
case where a class ended up on one side only. With no groups (or one row per group) it is
an exact per-class shuffle split.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from probebank.data.examples import BuiltDataset

MIN_ROWS_PER_CLASS = 4  # a one-vs-rest feature needs this many positive rows on each side of the split


def _check_test_size(test_size: float) -> float:
    t = float(test_size)
    if not 0.0 < t < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    return t


def _stratified_rows(codes: np.ndarray, names: np.ndarray, t: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Boolean test mask: per class, round(t * n_c) rows (at least one row on each side)."""
    test = np.zeros(codes.size, dtype=bool)
    for c in range(names.size):
        rows = np.flatnonzero(codes == c)
        if rows.size < 2:
            raise ValueError(f"class {names[c].tolist()!r} has {rows.size} example(s); a split needs at least 2 "
                             "(one on each side)")
        n_test = min(max(int(round(t * rows.size)), 1), rows.size - 1)
        test[rng.permutation(rows)[:n_test]] = True
    return test


def _repair(counts: np.ndarray, in_test: np.ndarray, names: np.ndarray) -> None:
    """Move single groups so every class appears on both sides (in place), or raise."""
    for _ in range(2 * names.size + 2):
        test_c = counts[in_test].sum(axis=0)
        train_c = counts[~in_test].sum(axis=0)
        missing_test = np.flatnonzero(test_c == 0)
        missing_train = np.flatnonzero(train_c == 0)
        if missing_test.size == 0 and missing_train.size == 0:
            return
        # Move the smallest group holding the missing class across, if the side it
        # leaves keeps at least one other group of every class that group carries.
        c, to_test = (missing_test[0], True) if missing_test.size else (missing_train[0], False)
        side = ~in_test if to_test else in_test
        side_c = train_c if to_test else test_c
        cands = np.flatnonzero(side & (counts[:, c] > 0))
        sizes = counts[cands].sum(axis=1)
        moved = False
        for g in cands[np.argsort(sizes, kind="stable")]:
            if np.all((side_c - counts[g])[counts[g] > 0] > 0):
                in_test[g] = to_test
                moved = True
                break
        if not moved:
            break
    raise ValueError("cannot put every class on both sides of the split with these groups; "
                     "each class needs examples in at least 2 groups that do not share all its rows")


def grouped_stratified_split(y: np.ndarray, groups: np.ndarray | None, test_size: float,
                             seed: int, *, stratified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_idx, test_idx), sorted: stratified by y, no group on both sides, seeded.

    `stratified=False` (a card's `split.stratified: false`) aims only at the overall test share:
    class shares then vary with the seed as in a plain random split, but every class still
    lands on both sides (the same repair step). Raises ValueError when a split is impossible:
    a class with fewer than 2 groups (or 2 rows when ungrouped), fewer than 2 groups overall,
    or mismatched lengths.
    """
    t = _check_test_size(test_size)
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("y must be a non-empty one-dimensional array of labels")
    names, codes = np.unique(y, return_inverse=True)
    rng = np.random.default_rng(seed)

    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"groups has shape {groups.shape}, y has {y.shape}")
        g_names, g_codes = np.unique(groups, return_inverse=True)
    if stratified and (groups is None or g_names.size == y.size):  # every row its own group
        test = _stratified_rows(codes, names, t, rng)
    else:
        if groups is None or g_names.size == y.size:
            g_codes = np.arange(y.size)
        n_groups = int(g_codes.max()) + 1
        counts = np.zeros((n_groups, names.size), dtype=np.int64)
        np.add.at(counts, (g_codes, codes), 1)
        groups_per_class = (counts > 0).sum(axis=0)
        if groups_per_class.min() < 2:
            bad = names[np.argmin(groups_per_class)].tolist()
            raise ValueError(f"class {bad!r} occurs in {groups_per_class.min()} group(s); a grouped split "
                             "needs every class in at least 2 groups")
        # What the greedy balances: each class's rows (stratified) or all rows as one pool.
        aims = counts if stratified else counts.sum(axis=1, keepdims=True)
        total = aims.sum(axis=0).astype(np.float64)
        target = t * total
        inv_tot2 = 1.0 / total**2
        test_c = np.zeros(aims.shape[1], dtype=np.float64)
        in_test = np.zeros(n_groups, dtype=bool)
        # Greedy: put a group in test iff that lowers sum_c ((test_c - target_c) / total_c)^2.
        for g in rng.permutation(n_groups):
            a = aims[g]
            delta = float(np.dot(a * (2.0 * (test_c - target) + a), inv_tot2))
            if delta < 0.0:
                in_test[g] = True
                test_c += a
        _repair(counts, in_test, names)
        test = in_test[g_codes]

    test_idx = np.flatnonzero(test)
    train_idx = np.flatnonzero(~test)
    if test_idx.size == 0 or train_idx.size == 0:
        raise ValueError("the split left one side empty; use more groups or a different test_size")
    return train_idx, test_idx


def balanced_one_vs_rest(y_multiclass: np.ndarray, positive: int, idx: np.ndarray,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep every row of `idx` whose label is `positive`, plus as many negatives (seeded).

    Negatives are spread as evenly as possible across the other classes (water-filling:
    equal quotas, classes with too few rows give all they have and the rest is shared out).
    If there are fewer negatives than positives, all of them are kept. Returns
    (idx_subset sorted ascending, y_binary with 1 = positive).
    """
    y = np.asarray(y_multiclass)
    idx = np.asarray(idx, dtype=np.int64)
    labels = y[idx]
    pos_mask = labels == positive
    n_pos = int(pos_mask.sum())
    if n_pos == 0:
        raise ValueError(f"class {np.asarray(positive).tolist()!r} has no rows among the {idx.size} given")
    neg_idx = idx[~pos_mask]
    rng = np.random.default_rng(seed)
    if neg_idx.size <= n_pos:
        keep_neg = neg_idx
    else:
        neg_labels = labels[~pos_mask]
        classes, inv = np.unique(neg_labels, return_inverse=True)
        avail = np.bincount(inv, minlength=classes.size)
        quota = np.zeros(classes.size, dtype=np.int64)
        remaining = n_pos
        open_ = avail > 0
        while remaining > 0 and open_.any():
            share, extra = divmod(remaining, int(open_.sum()))
            give = np.where(open_, share, 0)
            if extra:  # a seeded choice of which classes get one more
                lucky = rng.permutation(np.flatnonzero(open_))[:extra]
                give[lucky] += 1
            give = np.minimum(give, avail - quota)
            quota += give
            remaining -= int(give.sum())
            open_ = quota < avail
        parts = [rng.permutation(neg_idx[inv == c])[:quota[c]] for c in range(classes.size)]
        keep_neg = np.concatenate(parts) if parts else neg_idx[:0]
    subset = np.sort(np.concatenate([idx[pos_mask], keep_neg]))
    y_binary = (y[subset] == positive).astype(np.int64)
    return subset, y_binary


@dataclass
class FeatureSplit:
    feature: str
    seed: int
    train: np.ndarray   # row indices
    test: np.ndarray
    y_train: np.ndarray  # binary 0/1
    y_test: np.ndarray


def feature_splits(built: BuiltDataset, rows: dict[str, np.ndarray], *, seeds: Sequence[int] = (0,),
                   balance: bool = True, min_rows: int = MIN_ROWS_PER_CLASS, groups: np.ndarray | None = None,
                   scored: np.ndarray | None = None) -> list[FeatureSplit]:
    """One-vs-rest binary tasks for each class (binary datasets: the positive class only), per seed.

    Seed s splits with the card's split seed + s. A class with fewer than `min_rows` rows on either
    side is left out (too rare to probe honestly); `balance` subsamples the negatives to the
    positives' count (probebank.data.splits.balanced_one_vs_rest). `groups` gives each row's group
    (default: its example's); `scored` (a held-out test set's rows, `--test-on`) are the test side of
    every split, which is then made on the other rows and keeps only its training side.
    """
    card = built.card
    labels = rows["label"]
    if groups is None:
        groups = np.asarray(built.dataset["group"])[rows["example"]]
    fit = np.arange(labels.size) if scored is None else np.setdiff1d(np.arange(labels.size), scored)
    classes = card.labels.classes
    positives = [1] if card.labels.type == "binary" else list(range(len(classes)))
    out: list[FeatureSplit] = []
    for seed in seeds:
        split_seed = card.split.seed + seed
        train, test = grouped_stratified_split(labels[fit], groups[fit] if card.split.grouped else None,
                                               card.split.test_size, split_seed, stratified=card.split.stratified)
        train, test = fit[train], (fit[test] if scored is None else np.asarray(scored))
        for pos in positives:
            n_tr, n_te = int((labels[train] == pos).sum()), int((labels[test] == pos).sum())
            if min(n_tr, n_te) < min_rows:
                continue  # too rare to probe honestly; reported by the caller via missing features
            if balance:
                tr, y_tr = balanced_one_vs_rest(labels, pos, train, split_seed)
                te, y_te = balanced_one_vs_rest(labels, pos, test, split_seed)
            else:
                tr, te = train, test
                y_tr, y_te = (labels[tr] == pos).astype(int), (labels[te] == pos).astype(int)
            out.append(FeatureSplit(classes[pos], seed, tr, te, y_tr, y_te))
    return out
