"""A Leaderboard as text: a rich table for the terminal, Markdown, or CSV (one row per dataset score)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from probebank.results.leaderboard import LAYER_WORD, METRICS, Leaderboard
from probebank.results.ties import ALPHA, p_text, rank_text
from probebank.results.value_board import VALUE_COLUMNS, value_cells

VALUE_TITLE = "Regression datasets (R2 and Spearman on the test rows; not part of the F1 rankings)"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


DATASET_COLUMNS = ("dataset", "category", "entry", "features", "F1 k=1", "F1 k=16", "F1 dense", "k-AUC", "selectivity")
RANK_COLUMNS = ("category", "entry", "datasets", "mean", "rank (mean)", "vs above", "Borda", "rank (Borda)")
TIES_NOTE = (f"rank (mean): '=N' = within noise of the entry above (paired sign-flip test over the features both "
             f"have, p >= {ALPHA:g}), so it shares that rank; vs above: that test's p (features paired)")


def _dataset_cells(lb: Leaderboard) -> list[list[str]]:
    return [[d.dataset, d.category, d.entry, str(d.n_features), _f(d.f1_k1), _f(d.f1_k16), _f(d.f1_dense),
             _f(d.k_auc), _f(d.selectivity)] for d in sorted(lb.datasets, key=lambda d: (d.category, d.dataset, d.entry))]


def _rank_cells(lb: Leaderboard) -> list[list[str]]:
    rows = []
    for cr in lb.rankings:
        for r in cr.rows:
            rows.append([cr.category, r.entry, str(r.n_datasets), _f(r.mean), rank_text(r.shared_rank, r.tied_above),
                         p_text(r.p_above, r.n_paired), f"{r.borda:g}", str(r.borda_rank)])
    return rows


def _refusals(lb: Leaderboard) -> list[str]:
    out = [f"{cr.category}: not ranked: {'; '.join(cr.refused)}" for cr in lb.rankings if cr.refused]
    fallback = [f for f in lb.features if f.picked_on != lb.layer_by]
    if fallback:
        on = sorted({LAYER_WORD[f.picked_on] for f in fallback})
        out.append(f"{len(fallback)} of {len(lb.features)} features have no validation F1 (results written before "
                   f"probebank recorded val_f1): their layer was picked on {' or '.join(on)} k=1 F1; re-run them")
    return out


def render_markdown(lb: Leaderboard) -> str:
    def table(cols: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
        return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in rows]

    picked = LAYER_WORD[lb.layer_by]
    lines = [f"Ranking by {lb.by}, metric {METRICS[lb.metric]} (best layer per feature, picked on {picked} "
             "k=1 F1; mean over features and "
             "then over the category's datasets; Borda: one point per entry beaten on a dataset, half per tie).", ""]
    lines += table(RANK_COLUMNS, _rank_cells(lb)) + ["", TIES_NOTE + "."]
    for why in _refusals(lb):
        lines += ["", f"- {why}"]
    lines += ["", "Per dataset (k-AUC: area under F1 against log2 k, divided by the log2 k span):", ""]
    lines += table(DATASET_COLUMNS, _dataset_cells(lb))
    if lb.values:
        lines += ["", VALUE_TITLE + ":", ""] + table(VALUE_COLUMNS, value_cells(lb.values))
    return "\n".join(lines) + "\n"


def render_csv(lb: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", *DATASET_COLUMNS, "rank (mean)", "Borda", "rank (Borda)", "p vs above", "features paired"])
    for cells in _dataset_cells(lb):
        w.writerow(["dataset", *cells, "", "", "", "", ""])
    for cr in lb.rankings:
        for r in cr.rows:
            w.writerow(["category", "", cr.category, r.entry, "", _f(r.mean) if lb.metric == "f1_k1" else "",
                        _f(r.mean) if lb.metric == "f1_k16" else "", _f(r.mean) if lb.metric == "f1_dense" else "",
                        _f(r.mean) if lb.metric == "k_auc" else "", "", rank_text(r.shared_rank, r.tied_above),
                        f"{r.borda:g}", r.borda_rank, "" if r.p_above is None else f"{r.p_above:.4f}", r.n_paired])
        if cr.refused:
            w.writerow(["refused", "", cr.category, "; ".join(cr.refused), "", "", "", "", "", "", "", "", "", "", ""])
    if lb.values:  # a block of its own, with its own header row
        w.writerow(["kind", *VALUE_COLUMNS])
        for cells in value_cells(lb.values):
            w.writerow(["regression", *cells])
    return buf.getvalue()


def render_rich(lb: Leaderboard) -> list:
    from rich.table import Table

    ranks = Table(title=f"ranking by {lb.by} ({METRICS[lb.metric]}, mean and Borda per category)")
    for col in RANK_COLUMNS:
        ranks.add_column(col, justify="left" if col in ("category", "entry") else "right")
    for cells in _rank_cells(lb):
        ranks.add_row(*cells)
    per_ds = Table(title=f"per dataset: best layer per feature (picked on {LAYER_WORD[lb.layer_by]} k=1 F1), "
                         "mean over features")
    for col in DATASET_COLUMNS:
        per_ds.add_column(col, justify="left" if col in ("dataset", "category", "entry") else "right")
    for cells in _dataset_cells(lb):
        per_ds.add_row(*cells)
    out: list = [per_ds, ranks, f"[dim]{TIES_NOTE}[/dim]"] + [f"[yellow]{why}[/yellow]" for why in _refusals(lb)]
    if lb.values:
        values = Table(title=VALUE_TITLE)
        for col in VALUE_COLUMNS:
            values.add_column(col, justify="left" if col in ("dataset", "category", "entry", "feature") else "right")
        for cells in value_cells(lb.values):
            values.add_row(*cells)
        out.append(values)
    return out
