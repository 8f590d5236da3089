"""Judge the pre-registered findings (probebank.results.preregistered) from result records alone.

Each finding gets a figure, a 95% bootstrap interval that resamples features (every layer and seed of
a feature moves together, so the interval does not pretend that 11 layers of one language are 11
independent draws) and a pass or fail against the file's thresholds. Nothing here runs a model, so
every finding can be checked, and made to fail, on hand-made records.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probebank.causal.record import CausalRecord
from probebank.probing.schema import ResultRecord
from probebank.results.preregistered import FindingsFile, Protocol
from probebank.results.summary import summarise

DRAWS = 2000
CONFIDENCE = 0.95


@dataclass
class Finding:
    name: str
    claim: str
    protocol: str
    passed: bool
    figure: float | None
    interval: tuple[float, float] | None
    figures: str
    check: str = ""
    details: dict = field(default_factory=dict)
    threshold: float | None = None   # the pass line `figure` is held to (see LINES), for the report's plot
    unit: str = ""

    # the names findings_io.write_findings reads
    @property
    def estimate(self) -> float | None:
        return self.figure

    @property
    def low(self) -> float | None:
        return None if self.interval is None else self.interval[0]

    @property
    def high(self) -> float | None:
        return None if self.interval is None else self.interval[1]

    @property
    def finding_protocol(self) -> str:
        return self.protocol


# What each finding's figure measures, and the threshold of the file that is its pass line (None: 0).
LINES: dict[str, tuple[str, str | None]] = {
    "single_neurons": ("mean k=1 F1", "at_least"),
    "neuron_basis": ("k=1 F1, neurons - rotation", "mean_above"),
    "neuron_basis_by_category": ("share of categories", "share_of_categories_at_least"),
    "grows_with_k": ("F1 gain, smallest to largest k", None),
    "early_distributed": ("k=1->8 gain, early - middle layers", "lower_bound_above"),
    "selectivity": ("k=1 selectivity", "real_at_least"),
    "causal": ("languages with p below the line", "languages_at_least"),
}


def with_line(spec: FindingsFile, finding: Finding) -> Finding:
    """The finding with its unit and pass line filled in from the file."""
    unit, key = LINES[finding.name]
    finding.unit, finding.threshold = unit, 0.0 if key is None else spec.threshold(finding.name, key)
    return finding


def cluster_mean_interval(clusters: Mapping[Any, Sequence[float]], seed: int = 0) -> tuple[float, float] | None:
    """Percentile interval of the mean of all values when whole clusters (features) are resampled."""
    groups = [np.asarray(v, dtype=float) for v in clusters.values() if len(v)]
    if len(groups) < 2:
        return None
    sums = np.array([g.sum() for g in groups])
    sizes = np.array([len(g) for g in groups], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(DRAWS, len(groups)))
    means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    lo, hi = np.quantile(means, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(lo), float(hi)


def _ci(interval: tuple[float, float] | None) -> str:
    return "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"


def _feature(r: ResultRecord) -> tuple[str, str]:
    return r.provenance.dataset, r.feature


def _k1_rotation(records: Iterable[ResultRecord], method: str) -> list[ResultRecord]:
    return [r for r in records if r.method == method and r.basis == "identity" and r.k == 1
            and r.f1_controls is not None and r.f1_controls.rotation_f1 is not None]


def _rotation_gaps(records: Iterable[ResultRecord], method: str) -> dict[tuple[str, str], list[float]]:
    gaps: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in _k1_rotation(records, method):
        assert r.f1_controls is not None and r.f1_controls.rotation_f1 is not None
        gaps[_feature(r)].append(r.f1 - r.f1_controls.rotation_f1)
    return gaps


def single_neurons(spec: FindingsFile, name: str, protocol: Protocol, language: list[ResultRecord]) -> Finding:
    rows = [r for r in summarise(language, method=protocol.method, pick=protocol.layer_pick) if r["basis"] == "identity"]
    need = spec.threshold("single_neurons", "at_least")
    f1 = {r["feature"]: [float(r["f1_k1"])] for r in rows if r["f1_k1"] is not None}
    if not f1:
        return Finding("single_neurons", spec.findings["single_neurons"].claim, name, False, None, None,
                       "no k=1 records of the language dataset", f"mean >= {need}")
    values = np.array([v[0] for v in f1.values()])
    mean = float(values.mean())
    ci = cluster_mean_interval(f1)
    picked = {r["layer_picked_on"] for r in rows}
    return Finding("single_neurons", spec.findings["single_neurons"].claim, name, mean >= need, mean, ci,
                   f"mean k=1 F1 {mean:.3f}{_ci(ci)} over {len(values)} languages, min {values.min():.3f}; "
                   f"{int((values >= 0.9).sum())} >= 0.9 (layer picked on {'/'.join(sorted(picked))} F1)",
                   f"mean >= {need}", {"per_feature": {k: v[0] for k, v in sorted(f1.items())}})


def neuron_basis(spec: FindingsFile, name: str, protocol: Protocol, language: list[ResultRecord]) -> Finding:
    from scipy.stats import wilcoxon

    claim = spec.findings["neuron_basis"].claim
    above, p_max = spec.threshold("neuron_basis", "mean_above"), spec.threshold("neuron_basis", "p_below")
    check = f"mean > {above:g}, Wilcoxon p < {p_max:g}"
    gaps = _rotation_gaps(language, protocol.method)
    diff = np.array([g for v in gaps.values() for g in v])
    if not len(diff):
        return Finding("neuron_basis", claim, name, False, None, None, "no rotation control in the records", check)
    p = float(wilcoxon(diff, alternative="greater", zero_method="wilcox").pvalue) if np.any(diff != 0) else 1.0
    mean = float(diff.mean())
    ci = cluster_mean_interval(gaps)
    recs = _k1_rotation(language, protocol.method)
    neuron = float(np.mean([r.f1 for r in recs]))
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    return Finding("neuron_basis", claim, name, bool(mean > above and p < p_max), mean, ci,
                   f"neuron {neuron:.3f} - rotation {neuron - mean:.3f} = {mean:+.3f}{_ci(ci)}; wins {wins}, "
                   f"losses {losses}, ties {len(diff) - wins - losses}; p = {p:.1e}", check, {"p_value": p})


def neuron_basis_by_category(spec: FindingsFile, name: str, protocol: Protocol, categories: list[ResultRecord],
                             category_of: Mapping[str, str]) -> Finding:
    claim = spec.findings["neuron_basis_by_category"].claim
    share_needed = spec.threshold("neuron_basis_by_category", "share_of_categories_at_least")
    check = f"share of categories whose interval lies above 0 >= {share_needed:g}"
    by_cat: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    for feat, gaps in _rotation_gaps(categories, protocol.method).items():
        by_cat[category_of.get(feat[0], feat[0])][feat] = gaps
    if not by_cat:
        return Finding("neuron_basis_by_category", claim, name, False, None, None,
                       "no rotation control in the category records", check)
    per: dict[str, dict] = {}
    for cat, feats in sorted(by_cat.items()):
        values = [g for v in feats.values() for g in v]
        # one-feature categories: resample (layer, seed) pairs, the only replication they have
        clusters: Mapping[Any, Sequence[float]] = feats if len(feats) > 1 else {i: [v] for i, v in enumerate(values)}
        ci = cluster_mean_interval(clusters)
        per[cat] = {"mean": float(np.mean(values)), "interval": None if ci is None else list(ci),
                    "wins": ci is not None and ci[0] > 0, "features": len(feats)}
    share = sum(v["wins"] for v in per.values()) / len(per)
    text = "; ".join(f"{c} {v['mean']:+.3f}{_ci(tuple(v['interval']) if v['interval'] else None)}"
                     for c, v in per.items())
    return Finding("neuron_basis_by_category", claim, name, share >= share_needed, share, None,
                   f"{sum(v['wins'] for v in per.values())}/{len(per)} categories: {text}", check,
                   {"per_category": per})


def grows_with_k(spec: FindingsFile, name: str, protocol: Protocol, language: list[ResultRecord]) -> Finding:
    claim = spec.findings["grows_with_k"].claim
    tol = spec.threshold("grows_with_k", "largest_drop_at_most")
    by_k: dict[int, list[float]] = defaultdict(list)
    by_feature: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in language:
        if r.method == protocol.method and r.basis == "identity":
            by_k[r.k].append(r.f1)
            by_feature[_feature(r)][r.k].append(r.f1)
    ks = sorted(by_k)
    check = f"rises from the smallest to the largest k, no drop > {tol:g}"
    if len(ks) < 2:
        return Finding("grows_with_k", claim, name, False, None, None, "fewer than two k in the records", check)
    curve = [float(np.mean(by_k[k])) for k in ks]
    drops = [a - b for a, b in zip(curve, curve[1:])]
    gain = curve[-1] - curve[0]
    per_feature = {f: [float(np.mean(v[ks[-1]]) - np.mean(v[ks[0]]))] for f, v in by_feature.items()
                   if v.get(ks[-1]) and v.get(ks[0])}
    ci = cluster_mean_interval(per_feature)
    passed = gain > 0 and max(drops, default=0.0) <= tol
    return Finding("grows_with_k", claim, name, bool(passed), gain, ci,
                   f"k={ks[0]} -> {ks[-1]}: {gain:+.3f}{_ci(ci)}; " + ", ".join(f"k={k}: {v:.3f}" for k, v in zip(ks, curve)),
                   check, {"curve": dict(zip(ks, curve))})


def _depth_thirds(layers: Sequence[int], n_layers: int) -> tuple[list[int], list[int]]:
    early = [layer for layer in layers if layer < n_layers / 3]
    middle = [layer for layer in layers if n_layers / 3 <= layer < 2 * n_layers / 3]
    return early, middle


def early_distributed(spec: FindingsFile, name: str, protocol: Protocol, categories: list[ResultRecord],
                      n_layers: int) -> Finding:
    claim = spec.findings["early_distributed"].claim
    check = "interval of (early - middle) k=1 -> 8 gain lies above 0"
    rows = [r for r in summarise(categories, method=protocol.method, pick=protocol.layer_pick) if r["basis"] == "identity"]
    per_feature: dict[tuple[str, str], list[float]] = {}
    early_all: list[float] = []
    middle_all: list[float] = []
    for row in rows:
        gains = {int(layer): g for layer, g in row["gain_1_8_by_layer"].items() if g is not None}
        early, middle = _depth_thirds(sorted(gains), n_layers)
        if early and middle:
            e, m = float(np.mean([gains[x] for x in early])), float(np.mean([gains[x] for x in middle]))
            per_feature[(row["dataset"], row["feature"])] = [e - m]
            early_all.append(e)
            middle_all.append(m)
    if len(per_feature) < 2:
        return Finding("early_distributed", claim, name, False, None, None,
                       "needs k=1 and k=8 records at early and middle layers of two features or more", check)
    diff = float(np.mean([v[0] for v in per_feature.values()]))
    ci = cluster_mean_interval(per_feature)
    return Finding("early_distributed", claim, name, ci is not None and ci[0] > spec.threshold("early_distributed",
                                                                                             "lower_bound_above"),
                   diff, ci, f"gain k=1->8: early {np.mean(early_all):.3f}, middle {np.mean(middle_all):.3f}; "
                             f"difference {diff:+.3f}{_ci(ci)} over {len(per_feature)} features", check)


def selectivity(spec: FindingsFile, name: str, protocol: Protocol, language: list[ResultRecord],
                shuffled: list[ResultRecord]) -> Finding:
    claim = spec.findings["selectivity"].claim
    real_min = spec.threshold("selectivity", "real_at_least")
    sh_max = spec.threshold("selectivity", "shuffled_abs_at_most")
    check = f"real >= {real_min:g}, |shuffled| <= {sh_max:g}"
    rows = [r for r in summarise(language, method=protocol.method, pick=protocol.layer_pick) if r["basis"] == "identity"]
    sel = {r["feature"]: [float(r["selectivity_k1"])] for r in rows if r["selectivity_k1"] is not None}
    sh = [rec.controls.selectivity for rec in shuffled
          if rec.method == protocol.method and rec.k == 1 and rec.controls and rec.controls.selectivity is not None]
    if not sel or not sh:
        return Finding("selectivity", claim, name, False, None, None, "no selectivity in the records", check)
    real = float(np.mean([v[0] for v in sel.values()]))
    ci = cluster_mean_interval(sel)
    sh_mean = float(np.mean(sh))
    return Finding("selectivity", claim, name, real >= real_min and abs(sh_mean) <= sh_max, real, ci,
                   f"real {real:.3f}{_ci(ci)} (k=1, picked layer); shuffled {sh_mean:+.3f} ({len(sh)} probes)",
                   check, {"shuffled": sh_mean})


def causal(spec: FindingsFile, name: str, checks: Sequence[CausalRecord], note: str | None = None) -> Finding:
    claim = spec.findings["causal"].claim
    p_max = spec.threshold("causal", "p_below")
    need = int(spec.threshold("causal", "languages_at_least"))
    check = f"p < {p_max:g} for >= {need} of {spec.causal.languages} languages"
    if not checks:
        return Finding("causal", claim, name, False, None, None, note or "no causal check ran", check)
    hits = sum(c.loss.p_value < p_max for c in checks)
    text = "; ".join(f"{c.feature} unit {c.units[0]} @L{c.layer}: {c.loss.observed:+.4f} nats/token "
                     f"(null {c.loss.mean:+.4f} ± {c.loss.sd:.4f}, p = {c.loss.p_value:.3g})" for c in checks)
    return Finding("causal", claim, name, hits >= need, float(hits), None, f"{hits}/{len(checks)} with p < {p_max:g}: "
                   + text, check, {"checks": [c.key for c in checks]})
