"""The summary rows of regression records (probebank.probing.regression_eval): R2 and Spearman, not F1.

One row per (model, dataset, feature, site, basis, method), like probebank.results.summary's
rows for classes, with `metric: "r2"` and R2 in place of F1: the best layer is the one with the
best mean k=1 test R2, `layer_by_train` the one with the best mean k=1 *training* R2 (and
`r2_k1_by_train` the test R2 there), each metric a mean over seeds with a t interval cut to
the figure's range (`<metric>_ci`; None with one seed). k-curve summaries (probebank.probing.kcurve) run on the R2
curve. summary.py renders these rows in a table of their own (VALUE_COLUMNS).
"""
from __future__ import annotations

import math
from collections import defaultdict

from probebank.probing import kcurve, stats
from probebank.probing.schema import RegressionControls, RegressionMetrics, ResultRecord

VALUE_METRICS = ("r2_k1", "r2_k16", "r2_dense", "spearman_k1", "spearman_k16", "spearman_dense",
                 "selectivity_k1", "shuffled_k1", "rotation_k1", "token_identity_r2", "random_init_k1",
                 "auc_log2k", "k95", "gap_k1", "gain_1_8")

# (column title, row key, kind) as summary.COLUMNS; kind "f" = value with interval, "k" = integer k
VALUE_COLUMNS = (("R2 k=1", "r2_k1", "f"), ("95% width k=1", "r2_k1_ci_width", "f"), ("R2 k=1 layer by train", "r2_k1_by_train", "f"),
                 ("R2 k=16", "r2_k16", "f"), ("R2 dense", "r2_dense", "f"),
                 ("Spearman k=1", "spearman_k1", "f"), ("Spearman dense", "spearman_dense", "f"),
                 ("select. k=1", "selectivity_k1", "f"), ("rotation k=1", "rotation_k1", "f"),
                 ("token id R2", "token_identity_r2", "f"), ("rand-init k=1", "random_init_k1", "f"),
                 ("AUC log2k", "auc_log2k", "f"), ("k@95% dense", "k95", "k"), ("gain 1->8", "gain_1_8", "f"))

VALUE_NOTE = ("\nRegression rows: R2 = 1 - residual / total sum of squares on the test rows (ridge on the top k "
              "units, or on every unit for dense); Spearman = rank correlation of prediction and value. "
              "best layer = best mean test k=1 R2; select. = R2 - shuffled-value R2; token id R2 = the value "
              "predicted from the target token alone. See docs/controls.md.\n")


def _m(r: ResultRecord | None) -> RegressionMetrics | None:
    return r.metrics if r is not None and isinstance(r.metrics, RegressionMetrics) else None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _seed_metrics(curve: dict[int, ResultRecord], dense: ResultRecord | None) -> dict[str, float | None]:
    r2 = {k: m.r2 for k, r in curve.items() if (m := _m(r)) is not None}
    d, d1, d16 = _m(dense), _m(curve.get(1)), _m(curve.get(16))
    c1 = curve[1].controls if 1 in curve and isinstance(curve[1].controls, RegressionControls) else None
    token = next((r.controls.token_identity_r2 for r in curve.values() if isinstance(r.controls, RegressionControls)),
                 None)
    dr2 = d.r2 if d else None
    return {"r2_k1": r2.get(1), "r2_k16": r2.get(16), "r2_dense": dr2,
            "spearman_k1": d1.spearman if d1 else None, "spearman_k16": d16.spearman if d16 else None,
            "spearman_dense": d.spearman if d else None,
            "selectivity_k1": c1.selectivity if c1 else None, "shuffled_k1": c1.shuffled_r2 if c1 else None,
            "rotation_k1": c1.rotation_r2 if c1 else None, "token_identity_r2": token,
            "random_init_k1": c1.random_init_r2 if c1 else None,
            "auc_log2k": kcurve.auc_log2k(r2), "k95": kcurve.k_reaching(r2, dr2) if dr2 and dr2 > 0 else None,
            "gap_k1": kcurve.k1_gap(r2, dr2), "gain_1_8": kcurve.gain(r2, 1, 8)}


# What each figure can take: R2 is at most 1 (and unbounded below), a rank correlation in [-1, 1]; the t
# interval over seeds is cut to it (probebank.probing.stats.bounded_t_interval).
_RANGES: dict[str, tuple[float, float]] = {
    "r2_k1": (-math.inf, 1.0), "r2_k16": (-math.inf, 1.0), "r2_dense": (-math.inf, 1.0),
    "shuffled_k1": (-math.inf, 1.0), "rotation_k1": (-math.inf, 1.0), "token_identity_r2": (-math.inf, 1.0),
    "random_init_k1": (-math.inf, 1.0), "spearman_k1": (-1.0, 1.0), "spearman_k16": (-1.0, 1.0),
    "spearman_dense": (-1.0, 1.0), "k95": (1.0, math.inf)}


def _interval(values: list[float | None], name: str = "r2_k1") -> tuple[float | None, list[float] | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean, lo, hi = stats.bounded_t_interval(vals, *_RANGES.get(name, (-math.inf, math.inf)))
    return mean, None if lo is None or hi is None else [lo, hi]


def _k1_r2(seeds: dict[int, dict[int, ResultRecord]], train: bool = False) -> float | None:
    raw = [m.train_r2 if train else m.r2 for c in seeds.values() if (m := _m(c.get(1))) is not None]
    vals = [v for v in raw if v is not None]
    return _mean(vals) if vals else None


def summarise_values(records: list[ResultRecord], method: str | None = None) -> list[dict]:
    """Per (model, dataset, feature, site, basis, method) of regression records: the best layer and its figures."""
    curves: dict[tuple, dict[int, dict[int, dict[int, ResultRecord]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))          # key -> layer -> seed -> k -> record
    dense: dict[tuple, ResultRecord] = {}
    for r in records:
        base = (r.provenance.model, r.provenance.dataset, r.feature, r.site, r.basis)
        if r.method == "dense":
            dense[base + (r.layer, r.seed)] = r
        elif not method or r.method == method:
            curves[base + (r.method,)][r.layer][r.seed][r.k] = r
    rows = []
    for key, by_layer in sorted(curves.items()):
        base = key[:5]
        test_scores = {layer: -math.inf if (v := _k1_r2(seeds)) is None else v for layer, seeds in by_layer.items()}
        best = max(by_layer, key=lambda layer: (test_scores[layer], -layer))  # ties: the earlier layer
        train_scores = {layer: s for layer, seeds in by_layer.items() if (s := _k1_r2(seeds, train=True)) is not None}
        by_train = max(train_scores, key=lambda layer: (train_scores[layer], -layer)) if train_scores else None
        seeds = sorted(by_layer[best])
        per_seed = {s: _seed_metrics(by_layer[best][s], dense.get(base + (best, s))) for s in seeds}
        row: dict = {"model": key[0], "dataset": key[1], "feature": key[2], "site": key[3], "basis": key[4],
                     "method": key[5], "metric": "r2", "best_layer": best, "seeds": len(seeds)}
        for name in VALUE_METRICS:
            row[name], row[name + "_ci"] = _interval([per_seed[s][name] for s in seeds], name)
        row["layer_by_train"] = by_train
        row["r2_k1_by_train"], row["r2_k1_by_train_ci"] = _interval(
            [m.r2 if (m := _m(c.get(1))) else None for c in by_layer[by_train].values()] if by_train is not None
            else [])
        row["layer_optimism"] = (row["r2_k1"] - row["r2_k1_by_train"]
                                 if row["r2_k1"] is not None and row["r2_k1_by_train"] is not None else None)
        row.update(stats.support_stability([by_layer[best][s] for s in seeds]))
        row["layers"] = len(by_layer)
        rows.append(row)
    return rows
