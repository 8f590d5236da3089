"""The figures the report's pages open with, each with its caption or the one line saying why it is not drawn:
the index's (k=1 F1 by layer, neurons against a random rotation, replicate findings, causal effects) and a
dataset page's (F1 against k, k=1 F1 by layer, k=1 F1 and selectivity per feature)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from probebank.causal.record import CausalRecord
from probebank.report import figure_data, figures
from probebank.report.markup import figure as _figure
from probebank.report.markup import omitted as _omitted
from probebank.report.markup import table as _table
from probebank.results.findings_io import FindingsReport
from probebank.results.leaderboard import FeatureScore, Leaderboard


def heatmap_html(lb: Leaderboard) -> str:
    panels, word = figure_data.heat_panels(lb)
    if not panels:
        return _omitted("these results have no identity-basis probe records with a k=1 F1")
    return _figure(figures.heatmap(panels, title=f"k=1 F1 by layer and {word}"),
                   "Test k=1 F1 of every layer; per model, the probe method with the best mean k=1 validation F1 "
                   "(training F1, then test F1, for records without one)."
                   + (f" More than {figure_data.MAX_COLUMNS} features: each column is the mean over a category's "
                      "features." if word == "category" else ""))


def rotation_html(lb: Leaderboard) -> str:
    panels = figure_data.rotation_rows(lb)
    if not panels:
        return _omitted("no record carries the random-rotation control (run with controls on the identity basis; "
                        "docs/controls.md)")
    return _figure(figures.paired_dots(panels, title="neurons against a random rotation, per category"),
                   "The same k=1 probe on the neurons and on a random rotation of the same layer (the rotation_f1 "
                   "control), at each feature's best layer; the count after a category is its number of features. "
                   "Neurons to the right of the rotation: the neuron basis is privileged there.")


def findings_html(found: Sequence[tuple[Path, FindingsReport]]) -> str:
    if not found:
        return _omitted("no results folder has a findings.json (written by `probebank replicate --out DIR`)")
    drawn, listed = figure_data.finding_points([doc for _, doc in found])
    out = []
    for label, points in drawn:
        model, protocol, caption = label
        out.append(_figure(figures.findings(points, title=f"replicate findings: {model}"
                                            + (f", {protocol} protocol" if protocol else "")),
                           f"{caption}. Each finding's estimate with its 95% interval; dashed: the pass line."))
    if listed:
        out.append(_omitted(f"no estimate to draw for {', '.join(listed)} (their figures are in the table)"))
    rows = [f"<tr><td>{escape(doc.model)}</td><td>{escape(f.name)}</td><td>{escape(f.claim)}</td>"
            f"<td class=\"{'pass' if f.passed else 'fail'}\">{'pass' if f.passed else 'FAIL'}</td>"
            f"<td>{escape(f.figures)}</td></tr>" for _, doc in found for f in doc.findings]
    out.append("<details><summary>The findings as a table</summary>"
               + _table(["model", "finding", "check", "result", "figures"], rows) + "</details>")
    return "".join(out)


def effects_html(lb: Leaderboard, causal: Sequence[CausalRecord]) -> str:
    models = {r.provenance.model for r in lb.results.records}
    rows = figure_data.effect_rows(causal, models)
    if not rows:
        return _omitted("no causal check of these models in the results folders' causal.jsonl or the cache "
                        "(`probebank inspect MODEL LAYER UNIT --ablate`, docs/causal.md)")
    n = len([r for r in causal if r.provenance.model in models])
    return _figure(figures.effects(rows, title="causal effects of ablating found units",
                                   xlabel="loss effect (nats/token): feature's texts minus controls"),
                   f"Observed effect against random matched-variance units (the null); "
                   f"{len(rows)} rows for {n} checks (the same units checked under the same settings are one row), "
                   f"smallest p first. See docs/causal.md.")


MAX_K_PANELS = 24  # F1-vs-k panels drawn per dataset page (features beyond: in the table and the folded curves)


def dataset_plots(feats: Sequence[FeatureScore], colours: Mapping[str, str], entries: Sequence[str]) -> list[str]:
    """The figures a dataset page opens with: F1 against k, k=1 F1 by layer, k=1 F1 and selectivity per feature."""
    by_feature: dict[tuple[str, str], list[FeatureScore]] = defaultdict(list)
    for f in feats:
        by_feature[(f.feature, f.site)].append(f)
    sites = {site for _, site in by_feature}
    panels = [(feature if len(sites) == 1 else f"{feature} ({site})",
               [(f.entry, f.curve, colours[f.entry]) for f in fs],
               [(f.entry, f.f1_dense, colours[f.entry]) for f in fs if f.f1_dense is not None])
              for (feature, site), fs in sorted(by_feature.items())]
    out = ["<h2>F1 against k</h2>"]
    if panels:
        out.append(_figure(figures.k_curves(panels[:MAX_K_PANELS], title="F1 against k at each feature's best layer"),
                           "Test F1 of the k-sparse probe at the feature's best layer; dashed: the dense probe."
                           + (f" First {MAX_K_PANELS} of {len(panels)} features." if len(panels) > MAX_K_PANELS
                              else "")))
    else:
        out.append(_omitted("no probe records for this dataset"))
    heat = []
    for entry in entries:
        fs = sorted((f for f in feats if f.entry == entry), key=lambda f: (f.feature, f.site))
        layers = sorted({layer for f in fs for layer in f.layer_curves})
        if fs and layers:
            heat.append(figures.HeatPanel(entry, [str(x) for x in layers], [f.feature for f in fs],
                                          [[f.layer_curves.get(layer, {}).get(1) for f in fs] for layer in layers]))
    out.append("<h2>k=1 F1 by layer and feature</h2>")
    out.append(_figure(figures.heatmap(heat, title="k=1 F1 by layer and feature"), "Test k=1 F1 at every layer.")
               if heat else _omitted("no layer has a k=1 result"))
    features = sorted({f.feature for f in feats})
    lookup = {(f.entry, f.feature): f for f in feats}
    cmp_series = [(e, [getattr(lookup.get((e, ft)), "f1_k1", None) for ft in features], colours[e]) for e in entries]
    sel_series = [(e, [getattr(lookup.get((e, ft)), "selectivity", None) for ft in features], colours[e])
                  for e in entries]
    bars = []
    if any(v is not None for _, vs, _ in cmp_series for v in vs):
        bars.append(figures.grouped_bars(features, cmp_series, title="k=1 F1 per feature", xlabel="F1 k=1 (best layer)"))
    if any(v is not None for _, vs, _ in sel_series for v in vs):
        bars.append(figures.grouped_bars(features, sel_series, title="selectivity (F1 - shuffled-label F1), k=1",
                                         xlabel="selectivity at k=1", lo=None, hi=None))
    out.append("<h2>k=1 F1 and selectivity per feature</h2>")
    out.append(f"<div class=\"plots\">{''.join(bars)}</div>" if bars else _omitted("no k=1 F1 to compare"))
    if not bars[1:]:
        out.append(_omitted("these records carry no control results (selectivity is shown when they do)"))
    return out
