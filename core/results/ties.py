"""Ties on a leaderboard: is an entry's difference from the entry ranked above it more than noise?

Within a category the entries are ordered by their mean score. Each entry is compared with the one
directly above it by a paired test over the features both have there (the same (dataset, feature,
site), each scored at its own best layer): a two-sided sign-flip permutation test of the mean
per-feature difference (scipy.stats.permutation_test with paired samples; exact while 2^n is at most
N_RESAMPLES, else that many random sign flips, seeded). When p >= ALPHA the two are *tied*: the
lower one shares the upper one's rank, written "=1". With fewer than 6 features no sign-flip test can
reach p < 0.05 (the smallest two-sided p is 2 / 2^n), so such entries always tie: a handful of
features cannot rank two entries apart.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from probebank.results.leaderboard import FeatureScore
    from probebank.results.ranking import CategoryRanking

ALPHA = 0.05
N_RESAMPLES = 9999


def paired_p_value(upper: Sequence[float], lower: Sequence[float], seed: int = 0) -> float:
    """Two-sided p of a sign-flip permutation test that the mean paired difference is zero (1.0 when every
    difference is zero)."""
    from scipy.stats import permutation_test

    a, b = np.asarray(upper, dtype=np.float64), np.asarray(lower, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("a paired test needs two equal-length, non-empty lists of scores")
    if np.all(a == b) or a.size == 1:  # one pair: both signs of its difference are as extreme
        return 1.0

    def mean_difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x - y, axis=axis)

    result = permutation_test((a, b), mean_difference, permutation_type="samples", vectorized=True,
                              n_resamples=N_RESAMPLES, alternative="two-sided", rng=np.random.default_rng(seed))
    return float(min(1.0, result.pvalue))


def _per_feature(features: Sequence[FeatureScore], metric: str, category: str) -> dict[str, dict[tuple, float]]:
    """entry -> (dataset, feature, site) -> the metric at the feature's best layer, for one category."""
    out: dict[str, dict[tuple, float]] = {}
    for f in features:
        value = getattr(f, metric)
        if f.category == category and value is not None:
            out.setdefault(f.entry, {})[(f.dataset, f.feature, f.site)] = float(value)
    return out


def mark_ties(rankings: Sequence[CategoryRanking], features: Sequence[FeatureScore], metric: str) -> None:
    """Set each ranked row's paired test against the row above (`p_above`, `n_paired`), whether it is tied
    with it (`tied_above`) and its `shared_rank` (the rank of the first entry of its run of ties), in place."""
    for cr in rankings:
        scores = _per_feature(features, metric, cr.category)
        for i, row in enumerate(cr.rows):
            row.shared_rank = row.mean_rank
            if i == 0:
                continue
            above = cr.rows[i - 1]
            mine, theirs = scores.get(row.entry, {}), scores.get(above.entry, {})
            common = sorted(set(mine) & set(theirs))
            row.n_paired = len(common)
            if common:
                row.p_above = paired_p_value([theirs[k] for k in common], [mine[k] for k in common])
            # equal means share a rank anyway; otherwise a tie needs a test that could not tell them apart
            row.tied_above = row.mean_rank == above.mean_rank or (row.p_above is not None and row.p_above >= ALPHA)
            if row.tied_above:
                row.shared_rank = above.shared_rank


def rank_text(shared_rank: int | None, tied_above: bool) -> str:
    """'3', or '=1' for an entry tied with the one above it (its rank is that run's first rank)."""
    return "-" if shared_rank is None else f"={shared_rank}" if tied_above else str(shared_rank)


def p_text(p: float | None, n: int) -> str:
    """'p 0.031 (42)': the paired test against the entry above over n features; '-' for the first."""
    return "-" if p is None else f"p {p:.3f} ({n})"
