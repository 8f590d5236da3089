"""The leaderboard's rows for regression cards: R2 and Spearman per (entry, dataset, feature, site).

probebank.results.leaderboard ranks classification datasets by F1 within each category; a
regression card's records have R2 instead, which must not be averaged with F1, so they are scored
here, shown in a table of their own and left out of the category rankings.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probebank.probing.schema import RegressionControls, RegressionMetrics, ResultRecord
from probebank.probing.stats import mean_known

VALUE_COLUMNS = ("dataset", "category", "entry", "feature", "best layer", "R2 k=1", "R2 k=16", "R2 dense",
                 "Spearman k=1", "Spearman dense", "selectivity")


@dataclass
class ValueScore:
    entry: str
    dataset: str
    category: str
    feature: str
    site: str
    best_layer: int
    r2_k1: float | None
    r2_k16: float | None
    r2_dense: float | None
    spearman_k1: float | None
    spearman_dense: float | None
    selectivity: float | None  # R2 - shuffled-value R2 at k=1


def value_scores(records: Sequence[ResultRecord], entry_of: Callable[[ResultRecord], str], *,
                 categories: dict[str, str] | None = None, layer_by: str = "test") -> list[ValueScore]:
    """Best-layer scores of the regression records (others are ignored): the layer with the best mean
    k=1 test R2 (layer_by="train", or "validation", which regression records lack: training R2), means over
    seeds there."""
    categories = categories or {}
    # key -> layer -> k -> [metrics over seeds]; dense per (model, dataset, feature, site, basis) and layer
    sparse: dict[tuple, dict[int, dict[int, list[ResultRecord]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    dense: dict[tuple, dict[int, list[RegressionMetrics]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if not isinstance(r.metrics, RegressionMetrics):
            continue
        p = r.provenance
        base = (p.model, p.model_revision, p.dataset, r.feature, r.site, r.basis)
        if r.method == "dense":
            dense[base][r.layer].append(r.metrics)
        else:
            sparse[(entry_of(r), p.dataset, r.feature, r.site) + base][r.layer][r.k].append(r)
    out = []
    for key, by_layer in sorted(sparse.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        entry, dataset, feature, site = key[:4]
        # regression records have no validation score: the validation pick falls back to training R2
        k1 = {layer: _mean_metric(ks.get(1, []), "train_r2" if layer_by in ("train", "validation") else "r2")
              for layer, ks in by_layer.items()}
        best = max(by_layer, key=lambda layer: (-math.inf if k1[layer] is None else k1[layer], -layer))
        at = by_layer[best]
        d = dense[key[4:]].get(best, [])
        controls = [r.controls for r in at.get(1, []) if isinstance(r.controls, RegressionControls)]
        out.append(ValueScore(entry, dataset, categories.get(dataset, "-"), feature, site, best,
                              _mean_metric(at.get(1, []), "r2"), _mean_metric(at.get(16, []), "r2"),
                              mean_known([m.r2 for m in d]), _mean_metric(at.get(1, []), "spearman"),
                              mean_known([m.spearman for m in d]), mean_known([c.selectivity for c in controls])))
    return out


def _mean_metric(records: Sequence[ResultRecord], name: str) -> float | None:
    """Mean of one RegressionMetrics field over the records (seeds) that have it."""
    return mean_known([getattr(r.metrics, name) for r in records if isinstance(r.metrics, RegressionMetrics)])


def value_cells(scores: Sequence[ValueScore]) -> list[list[str]]:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    return [[s.dataset, s.category, s.entry, s.feature, f"{s.site} {s.best_layer}", f(s.r2_k1), f(s.r2_k16),
             f(s.r2_dense), f(s.spearman_k1), f(s.spearman_dense), f(s.selectivity)]
            for s in sorted(scores, key=lambda s: (s.category, s.dataset, s.entry, s.feature))]
