"""The numbers behind the report's index figures, taken from a Leaderboard, findings.json and causal.jsonl.

Each function returns plain rows for probebank.report.figures, or an empty list when the results hold
nothing to draw (the page then says why in one line instead of drawing an empty frame).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from probebank.causal.record import CausalRecord
from probebank.probing.stats import bounded_t_interval, mean_known
from probebank.report.figures import EffectRow, FindingPoint, HeatPanel, PairedRow
from probebank.results.findings_io import FindingsReport
from probebank.results.leaderboard import FeatureScore, Leaderboard
from probebank.results.summary import NON_PROBE_METHODS

MAX_COLUMNS = 40  # more features than this: the heatmap shows categories (mean over their features) instead
MAX_EFFECTS = 30  # causal rows drawn (the smallest p-values first)


def picked_methods(lb: Leaderboard) -> dict[str, tuple[str, str]]:
    """model -> (method, what picked it): per model, the probe method with the best mean k=1 validation F1
    over its identity-basis records (training F1 for records without one, test F1 as the last resort)."""
    scores: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in lb.results.records:
        if r.k != 1 or r.basis != "identity" or r.method in NON_PROBE_METHODS or r.regression:
            continue
        per = scores[r.provenance.model][r.method]
        for name, value in (("validation", r.val_f1), ("training", r.train_f1), ("test", r.f1)):
            if value is not None:
                per[name].append(value)
    out = {}
    for model, methods in scores.items():
        on = next(n for n in ("validation", "training", "test") if all(methods[m][n] for m in methods))
        best = max(sorted(methods), key=lambda m: sum(methods[m][on]) / len(methods[m][on]))
        out[model] = (best, on)
    return out


def _picked_features(lb: Leaderboard) -> dict[str, list[FeatureScore]]:
    picks = picked_methods(lb)
    out: dict[str, list[FeatureScore]] = defaultdict(list)
    for f in lb.features:
        if f.basis == "identity" and f.model in picks and f.method == picks[f.model][0]:
            out[f.model].append(f)
    return out


def heat_panels(lb: Leaderboard, max_columns: int = MAX_COLUMNS) -> tuple[list[HeatPanel], str]:
    """Layer x feature (or x category, when there are more than `max_columns` features) of k=1 F1, a panel per
    model; and the word for the columns ("feature" or "category")."""
    picks = picked_methods(lb)
    by_model = _picked_features(lb)
    many = any(len(fs) > max_columns for fs in by_model.values())
    panels = []
    for model, fs in sorted(by_model.items()):
        fs = sorted(fs, key=lambda f: (f.category, f.dataset, f.feature, f.site))
        layers = sorted({layer for f in fs for layer in f.layer_curves})
        if not layers:
            continue
        if many:
            cats = sorted({f.category for f in fs})
            values = [[mean_known(f.layer_curves.get(layer, {}).get(1) for f in fs if f.category == c) for c in cats]
                      for layer in layers]
            cols = cats
        else:
            several = len({f.dataset for f in fs}) > 1
            cols = [(f"{f.feature} ({f.dataset})" if several else f.feature) for f in fs]
            values = [[f.layer_curves.get(layer, {}).get(1) for f in fs] for layer in layers]
        method, on = picks[model]
        panels.append(HeatPanel(f"{model} ({method}, picked on {on} F1)", [str(x) for x in layers], cols, values))
    return panels, "category" if many else "feature"


def rotation_rows(lb: Leaderboard) -> list[tuple[str, list[PairedRow]]]:
    """Per model and category: k=1 F1 on the neurons against the same probe on a random rotation of the same
    layer (the records' rotation_f1 control), at each feature's best layer; mean over features, 95% interval."""
    best = {(f.model, f.dataset, f.feature, f.site): (f.best_layer, f.category) for fs in _picked_features(lb).values()
            for f in fs}
    picks = picked_methods(lb)
    pairs: dict[tuple[str, str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in lb.results.records:
        p = r.provenance
        key = (p.model, p.dataset, r.feature, r.site)
        c = r.f1_controls
        if (r.k == 1 and key in best and r.layer == best[key][0] and r.method == picks[p.model][0]
                and c is not None and c.rotation_f1 is not None):
            pairs[key].append((r.f1, c.rotation_f1))
    per: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for (model, _ds, _ft, _site), vals in pairs.items():
        cat = best[(model, _ds, _ft, _site)][1]
        per[model][cat].append((sum(v[0] for v in vals) / len(vals), sum(v[1] for v in vals) / len(vals)))
    out = []
    for model, cats in sorted(per.items()):
        rows = [PairedRow(cat, bounded_t_interval([a for a, _ in v], 0.0, 1.0),
                          bounded_t_interval([b for _, b in v], 0.0, 1.0), len(v)) for cat, v in sorted(cats.items())]
        out.append((f"{model} ({picks[model][0]})", rows))
    return out


def finding_points(files: Sequence[FindingsReport]
                   ) -> tuple[list[tuple[tuple[str, str | None, str], list[FindingPoint]]], list[str]]:
    """The findings with a number to draw, per (model, finding protocol or None, caption); and the names of those
    without one (listed only)."""
    drawn, listed = [], []
    for doc in files:
        groups: dict[str | None, list[FindingPoint]] = {}  # one panel per protocol when the file holds several
        for f in doc.findings:
            if f.estimate is None:
                listed.append(f"{doc.model}: {f.name}")
                continue
            groups.setdefault(f.finding_protocol, []).append(
                FindingPoint(f.name, f.claim, f.passed, f.estimate, f.low, f.high, f.threshold, f.unit))
        drawn += [((doc.model, protocol, doc.protocol if protocol is None else f"{protocol} protocol; {doc.protocol}"),
                   points) for protocol, points in groups.items()]
    return drawn, listed


def effect_rows(records: Sequence[CausalRecord], models: set[str], limit: int = MAX_EFFECTS) -> list[EffectRow]:
    """The loss effect of each causal check of these models against its matched-variance null.

    The same units checked under the same settings are one row (e.g. one neuron found by f_stat and by mean_diff:
    the ablation does not depend on which method found it); the label names every method that found them."""
    def ablated(r: CausalRecord) -> tuple:
        return (r.provenance.model, r.provenance.dataset, r.feature, r.site, r.layer, tuple(r.units),
                r.settings.model_dump_json())

    same: dict[tuple, list[CausalRecord]] = defaultdict(list)
    for r in records:
        if r.provenance.model in models:
            same[ablated(r)].append(r)
    firsts = sorted((group[0] for group in same.values()),
                    key=lambda r: (r.loss.p_value, -abs(r.loss.observed), r.key))[:limit]
    several = len({r.provenance.model for r in firsts}) > 1
    rows = []
    for r in firsts:
        methods = " + ".join(sorted({g.source_method for g in same[ablated(r)]}))
        units = f"#{r.units[0]}" if len(r.units) == 1 else f"{len(r.units)} units"
        rows.append(EffectRow((f"{r.provenance.model}: " if several else "")
                              + f"{r.feature} L{r.layer} {units} ({r.provenance.dataset}; {methods})",
                              r.loss.observed, r.loss.mean, r.loss.sd, r.loss.p_value))
    return rows
