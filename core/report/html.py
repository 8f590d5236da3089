"""Pages of the static report: index (leaderboard + comparisons), one per dataset, one per k=1 neuron."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from html import escape
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any

from probebank.causal.record import CausalRecord, cached_records, folder_records
from probebank.data.registry import load_catalog
from probebank.errors import ProbebankError
from probebank.report import figures, sections, svg
from probebank.report.markup import num_cell as _num
from probebank.report.markup import table as _table
from probebank.results.findings_io import folder_findings
from probebank.results.leaderboard import LAYER_WORD, METRICS, DatasetScore, FeatureScore, Leaderboard
from probebank.results.leaderboard_format import TIES_NOTE
from probebank.results.neurons import neuron_card
from probebank.results.ties import p_text, rank_text
from probebank.results.value_board import VALUE_COLUMNS, value_cells

GatesArg = Mapping[str, Mapping[str, Any]] | None  # dataset -> gate name -> result (see render_gates)


def _asset(name: str) -> str:
    return resources.files("probebank.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-") or "x"


def neuron_page(model: str, site: str, layer: int, unit: int) -> str:
    return f"neuron-{slug(model)}-{site}-L{layer}-N{unit}.html"


def dataset_page(name: str) -> str:
    return f"dataset-{slug(name)}.html"


def _page(title: str, body: str, nav: str = "") -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{_asset('style.css')}</style></head><body>"
            f"<nav><a href=\"index.html\">probebank report</a>{nav}</nav><h1>{escape(title)}</h1>{body}"
            f"<script>{_asset('sortable.js')}</script></body></html>\n")


def _entries(lb: Leaderboard) -> list[str]:
    return sorted({d.entry for d in lb.datasets})


def _entry_colour(lb: Leaderboard) -> dict[str, str]:
    return {e: svg.color(i) for i, e in enumerate(_entries(lb))}


# ---- index ------------------------------------------------------------------------------------------
def _ranking_html(lb: Leaderboard) -> str:
    parts = []
    metric = METRICS[lb.metric]
    for cr in lb.rankings:
        parts.append(f"<h3>{escape(cr.category)} <span class=\"note\">({len(cr.datasets)} dataset{'s' if len(cr.datasets) != 1 else ''}: "
                     f"{escape(', '.join(cr.datasets))})</span></h3>")
        if cr.refused:
            parts.append("<p class=\"warn refused\">No aggregate for this category: "
                         + "; ".join(escape(r) for r in cr.refused) + ".</p>")
            continue
        rows = [f"<tr><td>{escape(r.entry)}</td><td class=\"num\">{r.n_datasets}</td>{_num(r.mean)}"
                f"<td class=\"num\" data-sort=\"{r.shared_rank}\">{rank_text(r.shared_rank, r.tied_above)}</td>"
                f"<td class=\"num\">{escape(p_text(r.p_above, r.n_paired))}</td>"
                f"<td class=\"num\" data-sort=\"{r.borda}\">{r.borda:g}</td>"
                f"<td class=\"num\">{r.borda_rank}</td></tr>" for r in cr.rows]
        parts.append(_table([lb.by, "datasets", f"mean {metric}", "rank (mean)", "vs above (paired test)", "Borda points",
                             "rank (Borda)"], rows))
        parts.append(f"<p class=\"note\">{escape(TIES_NOTE)}.</p>")
    return "".join(parts)


def _dataset_rows(scores: Sequence[DatasetScore], link: bool = True) -> list[str]:
    rows = []
    for s in scores:
        name = f'<a href="{dataset_page(s.dataset)}">{escape(s.dataset)}</a>' if link else escape(s.dataset)
        rows.append(f"<tr><td>{name}</td><td>{escape(s.category)}</td><td>{escape(s.entry)}</td>"
                    f"<td class=\"num\">{s.n_features}</td>{_num(s.f1_k1)}{_num(s.f1_k16)}{_num(s.f1_dense)}"
                    f"{_num(s.k_auc)}{_num(s.selectivity)}</tr>")
    return rows


DATASET_HEADERS = ["dataset", "category", "entry", "features", "F1 k=1", "F1 k=16", "F1 dense", "k-curve AUC",
                   "selectivity"]


def _comparison_html(lb: Leaderboard) -> str:
    entries = _entries(lb)
    colours = _entry_colour(lb)
    cats = sorted({d.category for d in lb.datasets})
    series = []
    for e in entries:
        vals = []
        for c in cats:
            v = [d.f1_k1 for d in lb.datasets if d.entry == e and d.category == c and d.f1_k1 is not None]
            vals.append(sum(v) / len(v) if v else None)
        series.append((e, vals, colours[e]))
    plots = [figures.grouped_bars(cats, series, title="mean F1 k=1 per category", xlabel="F1 k=1 (mean over datasets)")]
    if len(entries) < 2:
        return f"<div class=\"plots\">{plots[0]}</div><p class=\"note\">One entry only: no pairwise comparison.</p>"
    by_entry: dict[str, dict[tuple[str, str, str], FeatureScore]] = defaultdict(dict)
    for f in lb.features:
        by_entry[f.entry][(f.dataset, f.feature, f.site)] = f
    for a, b in list(combinations(entries, 2))[:6]:
        for metric in ("f1_k1", "f1_dense"):
            pts = [(f"{k[0]}/{k[1]}", getattr(fa, metric), getattr(by_entry[b][k], metric))
                   for k, fa in sorted(by_entry[a].items()) if k in by_entry[b]
                   and getattr(fa, metric) is not None and getattr(by_entry[b][k], metric) is not None]
            if pts:
                plots.append(figures.scatter(pts, title=f"{METRICS[metric]} per feature", xlabel=a, ylabel=b))
    return ("<p class=\"note\">Each dot is one (dataset, feature); above the diagonal the y entry is better.</p>"
            f"<div class=\"plots\">{''.join(plots)}</div>")


def _index(lb: Leaderboard, datasets: Sequence[str], gates: GatesArg, causal: Sequence[CausalRecord] = ()) -> str:
    res = lb.results
    info = (f"<p class=\"note\">{len(res.records)} records from {len(res.folders)} folder(s): "
            + escape(", ".join(str(f) for f in res.folders))
            + (f"; {res.duplicates} duplicate records counted once" if res.duplicates else "")
            + f". Entries compared by <b>{escape(lb.by)}</b>; ranking metric: {escape(METRICS[lb.metric])} "
              f"(best layer per feature, picked on {LAYER_WORD[lb.layer_by]} k=1 F1; mean over features, then over the "
              "category's datasets). "
              "k-curve AUC = area under F1 against log2 k over the k grid, divided by its span.</p>")
    body = [info,
            "<h2>k=1 F1 by layer</h2>", sections.heatmap_html(lb),
            "<h2>Neurons against a random rotation</h2>", sections.rotation_html(lb),
            "<h2>Replicate findings</h2>", sections.findings_html(folder_findings(res.folders)),
            "<h2>Causal effects</h2>", sections.effects_html(lb, causal)]
    entries = _entries(lb)
    if len(entries) > 1:
        body += ["<h2>Rankings per category</h2>", _ranking_html(lb)]
    else:  # a ranking of one entry is a list of one-row tables: its scores are in the per-dataset table
        body.append(f"<p class=\"note\">One entry ({escape(', '.join(entries) or '-')}): no rankings (they compare "
                    "two or more entries); its scores are in the per-dataset table.</p>")
    body += ["<h2>Per dataset</h2>", _table(DATASET_HEADERS, _dataset_rows(lb.datasets))]
    if lb.values:  # regression cards: R2 and Spearman, kept out of the F1 rankings
        rows = ["<tr>" + "".join(f"<td>{escape(c)}</td>" if i < 5 else f"<td class=\"num\">{escape(c)}</td>"
                                 for i, c in enumerate(cells)) + "</tr>" for cells in value_cells(lb.values)]
        body += ["<h2>Regression datasets</h2><p class=\"note\">R2 and Spearman of ridge probes on the test rows "
                 "(best layer on k=1 R2); not part of the F1 rankings.</p>", _table(list(VALUE_COLUMNS), rows)]
    body += ["<h2>Comparison</h2>", _comparison_html(lb),
             "<h2>Datasets</h2><ul>"]
    for name in datasets:
        body.append(f'<li><a href="{dataset_page(name)}">{escape(name)}</a>'
                    + (" (gate results)" if gates and name in gates else "") + "</li>")
    body.append("</ul>")
    return _page("probebank leaderboard", "".join(body))


# ---- dataset pages ----------------------------------------------------------------------------------
def _card_html(name: str, include: Sequence[Path]) -> str:
    try:
        card = _catalog(tuple(include)).get(name).card
    except Exception as exc:  # a dataset the registry here does not know: the page still shows results
        return f"<p class=\"note\">No card for {escape(name)} in this registry ({escape(str(exc)[:200])}).</p>"
    items = [("name", card.name), ("version", card.version), ("category", card.category),
             ("tags", ", ".join(card.tags) or "-"), ("description", card.description),
             ("construction", card.construction or "-"), ("labels", f"{card.labels.type}: {', '.join(card.labels.classes)}"),
             ("targets", card.targets.kind), ("aggregation", card.aggregation),
             ("split", f"test size {card.split.test_size}, seed {card.split.seed}, grouped {card.split.grouped}"),
             ("license", card.license), ("citation", card.citation),
             ("sources", "; ".join(f"{s.kind} {s.package or s.path or s.name}"
                                   + (f"=={s.version}" if s.version else "") for s in card.sources) or "-")]
    if card.responsible_use:
        items.append(("responsible use", card.responsible_use))
    if card.waivers:
        items.append(("waivers", "; ".join(f"{k}: {v}" for k, v in card.waivers.items())))
    return "<dl class=\"card\">" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items) + "</dl>"


@lru_cache(maxsize=4)
def _catalog(include: tuple[Path, ...]) -> Any:
    """The registry, read once for all the dataset pages of a site (parsing every card takes seconds)."""
    return load_catalog(list(include))


def render_gates(results: Mapping[str, Any] | None) -> str:
    """Gate results of one dataset: {gate: {"passed": bool, "value": x, "threshold": y, "waiver": str, "detail": str,
    "examples": [str]}} (any of the keys may be missing; a bare bool or string is accepted as the whole result).
    `examples` (the alignment gate's quoted targets) are shown under the detail of a gate that did not pass."""
    if not results:
        return "<p class=\"note\">No gate results were given to this report (pass gates= to write_site).</p>"
    rows = []
    for gate, res in sorted(results.items()):
        res = res if isinstance(res, Mapping) else {"passed": res} if isinstance(res, bool) else {"detail": res}
        passed, waiver = res.get("passed"), res.get("waiver")
        status = ("waived" if waiver and passed is False else "pass" if passed else "fail" if passed is False else "-")
        value = res.get("value")
        rows.append(f"<tr><td>{escape(gate)}</td><td class=\"{status}\">{status}</td>"
                    + (_num(value) if isinstance(value, (int, float)) else f"<td>{escape(str(value or '-'))}</td>")
                    + f"<td>{escape(str(res.get('threshold', '-')))}</td>"
                    f"<td>{escape(str(waiver or '-'))}</td><td>{escape(str(res.get('detail', '-')))}"
                    + ("".join(f"<br><code>{escape(str(q))}</code>" for q in res.get("examples") or [])
                       if status != "pass" else "") + "</td></tr>")
    return _table(["gate", "status", "value", "threshold", "waiver", "detail"], rows)


def _stats_html(name: str, feats: Sequence[FeatureScore], lb: Leaderboard) -> str:
    # probe sizes from the records (first seed, best layer of each feature); alignment from the folders' alignment.json
    sizes: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for r in lb.results.records:
        if r.provenance.dataset == name and r.k == 1 and r.method not in ("dense", "single_unit"):
            sizes.setdefault((r.provenance.model, r.feature), (r.n_train, r.n_train_pos, r.n_test, r.n_test_pos))
    rows = [f"<tr><td>{escape(m)}</td><td>{escape(f)}</td><td class=\"num\">{a}</td><td class=\"num\">{b}</td>"
            f"<td class=\"num\">{c}</td><td class=\"num\">{d}</td></tr>" for (m, f), (a, b, c, d) in sorted(sizes.items())]
    out = [_table(["model", "feature", "train rows", "train positives", "test rows", "test positives"], rows)]
    align_rows = []
    for folder in lb.results.folders:
        path = Path(folder) / "alignment.json"
        if not path.is_file():
            continue
        try:
            rep = json.loads(path.read_text(encoding="utf-8")).get(name)
        except ValueError:
            continue
        model = (lb.results.runs.get(str(folder), {}).get("model") or {}).get("name", str(folder))
        if rep:
            align_rows.append(f"<tr><td>{escape(model)}</td>" + "".join(
                f"<td class=\"num\">{rep.get(k, '-')}</td>" for k in
                ("examples", "targets", "single_token", "split", "off_boundary", "dropped", "truncated", "tokens_run"))
                + "</tr>")
    if align_rows:
        out.append("<h3>Tokenizer alignment</h3>" + _table(
            ["model", "examples", "targets", "single-token", "multi-token", "off token boundaries", "dropped",
             "truncated", "tokens run"], align_rows))
    return "".join(out)


def _dataset_html(name: str, lb: Leaderboard, gates: GatesArg, include: Sequence[Path], neuron_links: set) -> str:
    feats = [f for f in lb.features if f.dataset == name]
    colours = _entry_colour(lb)
    entries = sorted({f.entry for f in feats})
    body = sections.dataset_plots(feats, colours, entries)
    rows = []
    for f in feats:
        units = []
        for u in f.units_k1:
            page = neuron_page(f.model, f.site, f.best_layer, u)
            units.append(f'<a href="{page}">{u}</a>' if (f.model, f.site, f.best_layer, u) in neuron_links else str(u))
        rows.append(f"<tr><td>{escape(f.feature)}</td><td>{escape(f.entry)}</td><td>{escape(f.site)}</td>"
                    f"<td class=\"num\">{f.best_layer}</td>{_num(f.f1_k1)}{_num(f.f1_k16)}{_num(f.f1_dense)}"
                    f"{_num(f.k_auc)}{_num(f.selectivity)}<td>{', '.join(units) or '-'}</td>"
                    f"<td>{escape(', '.join(f.flags) or '-')}</td></tr>")
    body += ["<h2>Results per feature</h2>",
             _table(["feature", "entry", "site", "best layer", "F1 k=1", "F1 k=16", "F1 dense", "k-curve AUC",
                     "selectivity", "neuron (k=1)", "flags"], rows)]
    for entry in entries:  # one curve per layer, folded: many small charts
        per_layer = []
        for f in sorted((f for f in feats if f.entry == entry), key=lambda f: (f.feature, f.site)):
            layers = sorted(f.layer_curves)
            span = max(1, len(layers) - 1)
            series = [(f"layer {layer}", f.layer_curves[layer], svg.ramp(i / span)) for i, layer in enumerate(layers)]
            per_layer.append(svg.line_chart(series, title=f"{f.feature}: one curve per layer", legend=False))
        body.append(f"<details><summary>F1 against k, one curve per layer (dark = early, yellow = late): "
                    f"{escape(entry)}</summary><div class=\"plots\">{''.join(per_layer)}</div></details>")
    body += ["<h2>Statistics</h2>", _stats_html(name, feats, lb),
             "<h2>Gate results</h2>", render_gates(gates.get(name) if gates else None),
             "<details class=\"card\"><summary>Dataset card</summary>", _card_html(name, include), "</details>"]
    return _page(f"dataset {name}", "".join(body), nav=f' &rsaquo; <a href="{dataset_page(name)}">{escape(name)}</a>')


# ---- neuron pages -----------------------------------------------------------------------------------
def neuron_html(card: Any, dataset_pages: set[str] | None = None) -> str:
    """HTML of a probebank.results.neurons.NeuronCard; datasets link to their pages when in `dataset_pages` (None: all)."""
    def ds_link(name: str) -> str:
        if dataset_pages is None or name in dataset_pages:
            return f'<a href="{dataset_page(name)}">{escape(name)}</a>'
        return escape(name)

    body = []
    for v in card.datasets:
        series = [(h.label, h.counts, svg.color(i)) for i, h in enumerate(v.histograms)]
        rows = []
        for ex in v.top:
            a, b = ex.span
            text = ex.text
            lo = max(0, a - 120)
            target = text[a:b] if b - a <= 240 else text[a:a + 200] + " … " + text[b - 30:b]  # whole-text targets
            shown = (("…" if lo else "") + escape(text[lo:a]) + f"<mark>{escape(target)}</mark>"
                     + escape(text[b:b + 80]) + ("…" if len(text) > b + 80 else ""))
            rows.append(f"<tr>{_num(ex.activation)}<td>{escape(ex.label)}</td><td class=\"example\">{shown}</td></tr>")
        stats = [f"<tr><td>{escape(h.label)}</td><td class=\"num\">{h.count}</td>{_num(h.mean)}</tr>"
                 for h in v.histograms]
        body.append(f"<h2>{ds_link(v.dataset)} v{escape(v.version)}</h2>"
                    f"<div class=\"plots\">{svg.histogram(v.edges, series, title='activation per class')}"
                    f"{_table(['class', 'rows', 'mean activation'], stats)}</div>"
                    "<h3>Top-activating examples (target highlighted)</h3>"
                    + _table(["activation", "class", "text"], rows))
    mixed = any(s.metric != "F1" for s in card.selections)  # regression probes (R2) among them
    sel = [f"<tr><td>{ds_link(s.dataset)}</td><td>{escape(s.feature)}</td>"
           f"<td>{escape(s.method)}</td><td class=\"num\">{s.k}</td><td class=\"num\">{s.rank + 1}</td>{_num(s.score)}"
           + (f"<td>{escape(s.metric)}</td>" if mixed else "") + "</tr>"
           for s in card.selections]
    body.append("<h2>Where else this neuron is selected (k &le; 16)</h2>"
                + (_table(["dataset", "feature", "method", "k", "position"] + (["score", "metric"] if mixed else ["F1"]),
                          sel) if sel
                   else "<p class=\"note\">Not selected by any other probe with k &le; 16 in these records.</p>"))
    if card.causal:  # loss effect: nats/token on the feature's texts minus on controls; null: matched-variance units
        rows = ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r.cells()) + "</tr>" for r in card.causal]
        body.append("<h2>Causal checks</h2>" + _table(CausalRecord.CELLS, rows) + "<p class=\"note\">See docs/causal.md.</p>")
    body.append(f"<p class=\"note\">Terminal version: <code>probebank inspect {escape(card.model)} {card.layer} "
                f"{card.neuron} --site {escape(card.site)}</code></p>")
    return _page(f"neuron {card.model} {card.site} L{card.layer} #{card.neuron}", "".join(body))


def _missing_neuron_html(model: str, site: str, layer: int, unit: int) -> str:
    return _page(f"neuron {model} {site} L{layer} #{unit}",
                 "<p class=\"note\">No activation store of this model is in the cache where the report was made, "
                 f"so there is no card. Where the store is: <code>probebank inspect {escape(model)} {layer} {unit} "
                 f"--site {escape(site)}</code></p>")


# ---- the site ---------------------------------------------------------------------------------------
def write_site(lb: Leaderboard, out: Path, *, gates: GatesArg = None, include: Sequence[Path] = (),
               neuron_cards: bool = True, max_neurons: int = 200, progress: bool = False) -> list[Path]:
    """Write the report into `out` (created); returns the pages written. `gates` maps a dataset to its
    quality-gate results and renders on that dataset's page. `progress`: a bar over the pages."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _catalog.cache_clear()  # read the registry afresh once per site, not once per page
    written = []
    neurons = sorted({(f.model, f.site, f.best_layer, u) for f in lb.features if f.basis == "identity"
                      for u in f.units_k1[:1]})[:max_neurons]
    linked = set()
    datasets = sorted({f.dataset for f in lb.features})
    bar = tqdm(total=(len(neurons) if neuron_cards else 0) + len(datasets) + 1, desc="report pages", unit="page",
               disable=not progress, leave=False)
    # causal checks: the folders' causal.jsonl, else those kept in the cache (read once for the index and every card)
    causal = folder_records(lb.results.folders) or cached_records()
    if neuron_cards:
        for model, site, layer, unit in neurons:
            bar.update()
            try:
                card = neuron_card(model, layer, unit, site=site, records=lb.results.records, causal=causal)
                html = neuron_html(card, set(datasets))
            except ProbebankError:
                html = _missing_neuron_html(model, site, layer, unit)
            path = out / neuron_page(model, site, layer, unit)
            path.write_text(html, encoding="utf-8")
            written.append(path)
            linked.add((model, site, layer, unit))
    for name in datasets:
        bar.update()
        path = out / dataset_page(name)
        path.write_text(_dataset_html(name, lb, gates, include, linked), encoding="utf-8")
        written.append(path)
    index = out / "index.html"
    index.write_text(_index(lb, datasets, gates, causal), encoding="utf-8")
    bar.update()
    bar.close()
    written.insert(0, index)
    return written
