"""Statistics over seeds: means with 95% intervals that respect each metric's range, and the stability of
selected units.

Intervals (each seed is a different grouped split, so spreading over seeds covers split-to-split
variation, the larger source of noise in small probing datasets):
- F1 of a probe: a two-level percentile bootstrap, over the seeds and, within each drawn seed, over its
  test rows. Resampling n test rows with replacement is exactly a multinomial draw of the four
  confusion-matrix cells, which the record's counts, precision and recall determine, so no per-row
  predictions need to be stored. Every draw is an F1, so the interval lies inside [0, 1]; with one
  seed it is the bootstrap over that seed's test rows.
- Other metrics (selectivity, control F1s, k-curve figures, unit counts): a Student t interval over
  the per-seed values, cut to the metric's range (`bounded_t_interval`): a t interval over three
  seeds can reach far outside what the metric can take (0.43 +- 0.94 for an F1). One seed: none.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from probebank.metrics import f1_from_counts

CONFIDENCE = 0.95
N_BOOTSTRAP = 2000


def mean_known(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are known (not None); None when none is."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of the Student t interval for the mean; (mean, None, None) for one value."""
    from scipy.stats import t

    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values to average")
    mean = float(v.mean())
    if v.size < 2:
        return mean, None, None
    half = float(t.ppf(0.5 + confidence / 2.0, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def bounded_t_interval(values: Sequence[float], low: float = -math.inf, high: float = math.inf,
                       confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """`t_interval` cut to the range [low, high] the metric can take."""
    mean, lo, hi = t_interval(values, confidence)
    if lo is None or hi is None:
        return mean, None, None
    return mean, max(lo, low), min(hi, high)


def confusion_from_metrics(n_test: int, n_pos: int, precision: float, recall: float) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of a binary probe from its test counts, precision and recall."""
    tp = int(round(recall * n_pos))
    predicted_pos = int(round(tp / precision)) if precision > 0 else 0
    fp = max(predicted_pos - tp, 0)
    fn = n_pos - tp
    return tp, fp, fn, n_test - tp - fp - fn


def _f1_draws(cells: tuple[int, int, int, int], size: int, rng: np.random.Generator) -> np.ndarray:
    """F1 of `size` resamples of one probe's test rows (multinomial draws of its confusion cells)."""
    n = sum(cells)
    if n <= 0:
        raise ValueError("an empty confusion matrix has no F1")
    draws = rng.multinomial(n, np.array(cells, dtype=np.float64) / n, size=size)
    return f1_from_counts(draws[:, 0], draws[:, 1], draws[:, 2])


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_f1_interval(tp: int, fp: int, fn: int, tn: int, confidence: float = CONFIDENCE,
                          n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of F1 over test rows (multinomial resampling of the cells)."""
    return _percentiles(_f1_draws((tp, fp, fn, tn), n_boot, np.random.default_rng(seed)), confidence)


def seeds_f1_interval(cells: Sequence[tuple[int, int, int, int]], confidence: float = CONFIDENCE,
                      n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean F1 over seeds: each draw picks as many seeds as there are, with
    replacement, and resamples each picked seed's test rows (its confusion cells). Inside [0, 1]."""
    if len(cells) == 1:
        return bootstrap_f1_interval(*cells[0], confidence=confidence, n_boot=n_boot, seed=seed)
    rng = np.random.default_rng(seed)
    n_seeds = len(cells)
    # per seed, one test-row resample for every (draw, pick): a seed picked twice in a draw gets two resamples
    per_seed = np.stack([_f1_draws(c, n_boot * n_seeds, rng) for c in cells])
    picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    columns = np.arange(n_boot * n_seeds).reshape(n_boot, n_seeds)
    return _percentiles(per_seed[picks, columns].mean(axis=1), confidence)


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    sa, sb = set(a), set(b)
    return 1.0 if not sa and not sb else len(sa & sb) / len(sa | sb)


def mean_pairwise_jaccard(supports: Sequence[Iterable[int]]) -> float | None:
    """Mean Jaccard similarity over all pairs of supports (None with fewer than two)."""
    sets = [set(s) for s in supports]
    if len(sets) < 2:
        return None
    pairs = list(itertools.combinations(sets, 2))
    return float(sum(jaccard(a, b) for a, b in pairs) / len(pairs))


def k1_unit_changes(k1_units: Sequence[Sequence[int]]) -> bool:
    """True when the k=1 unit is not the same for every seed."""
    return len({tuple(u) for u in k1_units}) > 1


def support_stability(curves: Sequence[Mapping[int, Any]], k_max: int = 16) -> dict[str, Any]:
    """How stable the selected units are across seeds, from each seed's {k: record with .units}:
    the first seed's k=1 units, whether the k=1 unit changes across seeds, and the mean pairwise
    Jaccard of the supports at the largest k <= k_max (`jaccard_k`)."""
    k1_units = [c[1].units for c in curves if 1 in c]
    k_stab = max((k for k in curves[0] if k <= k_max), default=None) if curves else None
    return {"units_k1": k1_units[0] if k1_units else [],
            "k1_unit_changes": k1_unit_changes(k1_units) if len(k1_units) > 1 else False,
            "jaccard_k": k_stab,
            "jaccard": mean_pairwise_jaccard([c[k_stab].units for c in curves if k_stab is not None and k_stab in c])}
