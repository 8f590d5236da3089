"""The null distribution of a causal check: random units of the same layer with matched activation variance.

A unit's effect when ablated grows with how much it varies: mean-ablating a unit that barely moves
changes nothing, whatever it encodes. So the found units are compared with random units of about
the same variance (over the dataset's stored rows): for each found unit, its `pool` nearest units
in log-variance (the found units left out), and each draw takes one unit from each pool, with no
unit twice in a draw. The p-value is the add-one permutation p, (1 + #{null at least as extreme})
/ (1 + draws), which is never 0 and exactly 1 when no draw is below the observed effect.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probebank.errors import ConfigError

POOL_MIN = 16        # candidates per found unit, at least
POOL_SHARE = 0.02    # ... or this share of the layer's width, whichever is larger
ALTERNATIVES = ("greater", "less")


def unit_variances(acts: np.ndarray) -> np.ndarray:
    """Variance of every unit over the stored rows [rows, width], in float64."""
    return np.asarray(acts, dtype=np.float64).var(axis=0)


def pool_size(width: int, k: int) -> int:
    """How many nearest-variance candidates each found unit gets: at least POOL_MIN, POOL_SHARE of the width."""
    size = max(POOL_MIN, int(round(POOL_SHARE * width)))
    if width - k < k:
        raise ConfigError(f"a layer of width {width} has too few other units for a null of {k} unit(s)",
                          field="units", fix="check fewer units at once")
    return min(size, width - k)


def matched_pools(variances: np.ndarray, units: Sequence[int], size: int | None = None) -> list[np.ndarray]:
    """For each found unit, the `size` other units nearest to it in log-variance (found units excluded)."""
    width, k = variances.size, len(units)
    size = pool_size(width, k) if size is None else size
    logv = np.log(np.maximum(variances, np.finfo(np.float64).tiny))
    candidates = np.setdiff1d(np.arange(width), np.asarray(units, dtype=np.int64))
    pools = []
    for u in units:
        distance = np.abs(logv[candidates] - logv[u])
        pools.append(candidates[np.argsort(distance, kind="stable")[:size]])
    return pools


def draw_matched(variances: np.ndarray, units: Sequence[int], n_draws: int, rng: np.random.Generator,
                 size: int | None = None) -> np.ndarray:
    """[n_draws, k] random unit sets, each unit drawn from the matched pool of the found unit in its place."""
    if n_draws < 1:
        raise ConfigError(f"{n_draws} null draws", field="--draws", fix="use at least 1 draw (100 is the default)")
    pools = matched_pools(variances, units, size)
    union = [int(u) for u in np.unique(np.concatenate(pools))]
    others = [int(u) for u in np.setdiff1d(np.arange(variances.size), np.asarray(units, dtype=np.int64))]
    out = np.empty((n_draws, len(units)), dtype=np.int64)
    for d in range(n_draws):
        taken: set[int] = set()
        for j, pool in enumerate(pools):
            free = [int(u) for u in pool if int(u) not in taken]
            if not free:  # pools of close units overlap: any unit of the union not yet taken, else any other unit
                free = [u for u in union if u not in taken] or [u for u in others if u not in taken]
            out[d, j] = free[int(rng.integers(0, len(free)))]
            taken.add(int(out[d, j]))
    return out


def permutation_p(observed: float, null: Sequence[float], alternative: str = "greater") -> float:
    """Add-one permutation p-value of `observed` against the `null` draws: in (0, 1]."""
    values = np.asarray(null, dtype=np.float64)
    if values.size == 0:
        raise ValueError("a permutation p-value needs at least one null draw")
    if alternative == "greater":
        extreme = int(np.sum(values >= observed))
    elif alternative == "less":
        extreme = int(np.sum(values <= observed))
    else:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return (1 + extreme) / (1 + values.size)


def variance_ratios(variances: np.ndarray, units: Sequence[int], draws: np.ndarray) -> np.ndarray:
    """var(drawn unit) / var(the found unit it stands for), for every draw and position: how well matched."""
    target = np.maximum(variances[np.asarray(units, dtype=np.int64)], np.finfo(np.float64).tiny)
    return variances[draws] / target[None, :]
