"""The summary in a terminal: a compact view that reads at 100 columns, grouped by dataset.

The compact view shows, per feature, the best layer, F1 at k=1 / k=16 / dense with their 95%
intervals, the selectivity and the k=1 neuron; `wide=True` shows every column (means only) and
`columns=[...]` picks them by key. Each dataset is a header row with its features below it, so the
first column is as wide as the longest dataset name and no identifying text is cut: at 80 columns
each interval sits under its mean ("0.97" over ".95–.99") at every width. `column_notes` says once
what each shown column means; summary.md (probebank.results.summary) keeps the full table.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probebank.errors import ConfigError
from probebank.results.summary import COLUMNS
from probebank.results.value_summary import VALUE_COLUMNS

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


@dataclass(frozen=True)
class Column:
    key: str      # the summary row's key (`probebank results --format json` shows the same names)
    title: str
    kind: str     # "f" = value with interval, "k" = integer k, "jaccard", "units"
    note: str


_NOTES = {
    "f1_k1": ("test F1 of a logistic probe on the 1 unit the method ranks first, at the best layer (picked on "
              "validation F1, a split of the training rows; --protocol paper: on test F1)"),
    "f1_k1_ci_width": ("width of the k=1 F1's 95% interval (high - low): differences smaller than this are "
                       "within the noise of the test rows and seeds"),
    "r2_k1_ci_width": "width of the k=1 R2's 95% interval (high - low)",
    "f1_k1_test_picked": ("test k=1 F1 at the layer with the best test k=1 F1 (layer_by_test): optimistic, for "
                          "comparison with the paper"),
    "f1_k1_by_train": "test k=1 F1 at the layer picked on training F1 (never saw the test rows)",
    "f1_k16": "test F1 with the top 16 units",
    "f1_dense": ("test F1 of an L2 logistic probe on every unit of the layer, its C chosen on an inner split of "
                 "the training rows; † = more than 0.05 below k=1, the reason under the table"),
    "selectivity_k1": "k=1 F1 minus the F1 of the same probe trained on shuffled labels",
    "rotation_k1": "k=1 F1 in a random rotation of the same layer (is the neuron basis special?)",
    "token_identity_f1": "F1 of predicting the label from the target token's id alone (a shortcut baseline)",
    "random_init_k1": "k=1 F1 on a randomly re-initialised copy of the model",
    "auc_log2k": "mean F1 over log2 k from the smallest to the largest k (area under the k curve)",
    "k95": "smallest k whose F1 reaches 95% of the dense F1",
    "gap_k1": "dense F1 minus k=1 F1",
    "gain_1_8": "F1 at k=8 minus F1 at k=1",
    "n_mono": "how many single units alone reach F1 >= 0.9",
    "jaccard": ("mean pairwise Jaccard of the k=16 units across seeds; 'k1 changes' = the k=1 unit is not "
                "the same unit in every seed"),
    "units_k1": "the unit chosen at k=1 (seed 0): `probebank inspect MODEL LAYER UNIT` shows it",
    "r2_k1": "test R2 of a ridge probe on the 1 unit ranked first, at the best layer",
    "r2_k1_by_train": "test k=1 R2 at the layer picked on training R2",
    "r2_k16": "test R2 with the top 16 units",
    "r2_dense": "test R2 of a ridge probe on every unit of the layer",
    "spearman_k1": "rank correlation of the k=1 prediction and the value",
    "spearman_dense": "rank correlation of the dense prediction and the value",
    "token_identity_r2": "R2 of predicting the value from the target token alone",
}
_VALUE_NOTES = {"selectivity_k1": "k=1 R2 minus the R2 of the same probe trained on shuffled values",
                "rotation_k1": "k=1 R2 in a random rotation of the same layer",
                "random_init_k1": "k=1 R2 on a randomly re-initialised copy of the model",
                "auc_log2k": "area under R2 against log2 k (one number for the k curve)",
                "k95": "smallest k whose R2 reaches 95% of the dense R2", "gain_1_8": "R2 at k=8 minus R2 at k=1",
                "n_mono": "how many single units alone reach R2 >= 0.9"}
_TAIL = (("jaccard", "Jaccard", "jaccard"), ("units_k1", "neuron k=1", "units"))


def _catalogue(columns: Sequence[tuple[str, str, str]], notes: dict[str, str]) -> dict[str, Column]:
    return {key: Column(key, title, kind, notes.get(key) or _NOTES.get(key, title))
            for title, key, kind in (*columns, *((t, k, kind) for k, t, kind in _TAIL))}


F1_TABLE = _catalogue(COLUMNS, {})
R2_TABLE = _catalogue(VALUE_COLUMNS, _VALUE_NOTES)
COMPACT = ("f1_k1", "f1_k16", "f1_dense", "selectivity_k1", "units_k1")
COMPACT_R2 = ("r2_k1", "r2_k16", "r2_dense", "selectivity_k1", "units_k1")


def pick_columns(columns: Sequence[str] | None, *, wide: bool = False, regression: bool = False) -> list[Column]:
    """The value columns of a view: the compact default, every column (`wide`) or the keys given."""
    table = R2_TABLE if regression else F1_TABLE
    if columns:
        other = F1_TABLE if regression else R2_TABLE
        # a key of the other kind of table (r2_k1 asked of an F1 table) is simply absent there
        bad = [c for c in columns if c not in table and c not in other]
        if bad:
            close = difflib.get_close_matches(bad[0], list(F1_TABLE) + list(R2_TABLE), n=3)
            raise ConfigError(f"unknown summary column '{bad[0]}'", field="--columns",
                              fix=(f"did you mean {', '.join(close)}? " if close else "")
                              + f"columns: {', '.join(F1_TABLE)} (regression: {', '.join(R2_TABLE)})")
        return [table[c] for c in columns if c in table]
    return list(table.values()) if wide else [table[c] for c in (COMPACT_R2 if regression else COMPACT)]


def _value(row: dict, col: Column, with_ci: bool) -> str:
    """'0.97 .95–.99': the mean, then its 95% interval, which the column's width puts under the mean. Both ends
    are shown: near 0 or 1 an interval is not symmetric."""
    if col.kind == "units":
        return ",".join(str(u) for u in row.get("units_k1") or []) or "-"
    if col.kind == "jaccard":
        j = row.get("jaccard")
        return ("-" if j is None else f"{j:.2f}") + (" k1 changes" if row.get("k1_unit_changes") else "")
    v = row.get(col.key)
    if v is None:
        return "-"
    ci = row.get(col.key + "_ci") if with_ci else None
    if col.kind == "k":
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    mark = "†" if col.key == "f1_dense" and row.get("dense_note") else ""  # its reason is under the table
    return f"{v:.2f}{mark}" if not ci else f"{v:.2f}{mark} {_interval_text(ci)}"


def _interval_text(ci: Sequence[float]) -> str:
    """'.86–.89': both ends of the interval, without their leading zeros (the mean above keeps its own)."""
    def short(x: float) -> str:
        text = f"{x:.2f}"
        return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text

    return f"{short(ci[0])}–{short(ci[1])}"


def _is_value_row(row: dict) -> bool:
    return row.get("metric") == "r2"


def render_table(rows: list[dict], title: str = "probebank results", *, wide: bool = False,
                 columns: Sequence[str] | None = None) -> RenderableType:
    """The terminal view of summary rows: classification rows, then regression rows in a table of their own,
    then the meaning of each shown column, once."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = []
    shown: dict[str, Column] = {}
    for regression in (False, True):
        subset = [r for r in rows if _is_value_row(r) == regression]
        cols = pick_columns(columns, wide=wide, regression=regression)
        if not subset or not cols:
            continue
        # a column no row has a value for (controls off, no --random-init) is left out
        cols = [c for c in cols if c.kind in ("units", "jaccard") or any(r.get(c.key) is not None for r in subset)]
        label = f"{title} (regression: R2)" if regression and len(parts) else title
        parts.append(_table(subset, label, cols, with_ci=not wide))
        shown.update({c.key: c for c in cols})
    if parts:
        notes = dense_notes(rows) if "f1_dense" in shown else []
        parts += [Text(""), *notes, column_notes(list(shown.values()), rows, with_ci=not wide)]
    return Group(*parts)


def dense_notes(rows: Sequence[dict]) -> list[RenderableType]:
    """One line per row whose dense F1 is marked † (more than 0.05 below k=1): which feature, and why."""
    from rich.text import Text

    models = sorted({r["model"] for r in rows})
    return [Text(f"† {_group(r, models)} / {r['feature']}"
                 + (f" ({_method(r)})" if len({_method(x) for x in rows}) > 1 else "") + f": {r['dense_note']}")
            for r in sorted(rows, key=lambda r: (_group(r, models), r["feature"], _method(r))) if r.get("dense_note")]


def _table(rows: list[dict], title: str, cols: list[Column], *, with_ci: bool) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    methods = sorted({_method(r) for r in rows})
    sites = sorted({r["site"] for r in rows})
    models = sorted({r["model"] for r in rows})
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, padding=(0, 0),
                  title_justify="left")
    # identifying columns never wrap or shrink: the value columns give way instead
    table.add_column("dataset / feature", no_wrap=True,
                     min_width=max(max(len(_group(r, models)), len(r["feature"]) + 2) for r in rows))
    if len(methods) > 1:
        table.add_column("method", no_wrap=True, min_width=max(map(len, methods)))
    table.add_column("layer" if len(sites) > 1 else f"{sites[0]}\nlayer", justify="right", no_wrap=True)
    for c in cols:  # a value cell may wrap at its space (the interval under the mean), never inside the interval
        words = c.title.split(" ")
        ends = [len(_interval_text(r[c.key + "_ci"])) + 1 for r in rows if with_ci and r.get(c.key + "_ci")]
        width = max(6, *map(len, words), *ends)  # the interval goes under its mean, at every terminal width
        table.add_column("\n".join(words), justify="right", no_wrap=c.kind in ("units", "k"),
                         min_width=width, max_width=width if ends else None)
    group = None
    for r in sorted(rows, key=lambda r: (_group(r, models), r["feature"], _method(r))):
        if _group(r, models) != group:
            if group is not None:
                table.add_section()
            group = _group(r, models)
            table.add_row(Text(group, style="bold"))
        layer = str(r["best_layer"]) if len(sites) == 1 else f"{r['site']} {r['best_layer']}"
        cells = ["  " + r["feature"], *([_method(r)] if len(methods) > 1 else []), layer]
        table.add_row(*cells, *[_value(r, c, with_ci) for c in cols])
    return table


def _method(row: dict) -> str:
    return row["method"] if row.get("basis", "identity") == "identity" else f"{row['method']}@{row['basis']}"


def _group(row: dict, models: list[str]) -> str:
    return row["dataset"] if len(models) == 1 else f"{row['dataset']} ({row['model']})"


def column_notes(cols: Sequence[Column], rows: Sequence[dict] = (), *, with_ci: bool = True) -> Table:
    """What each shown column means, once: a grid whose wrapped lines stay under their note."""
    from rich.table import Table

    seeds = max((r.get("seeds", 1) for r in rows), default=1)
    grid = Table.grid(padding=(0, 2), pad_edge=True)
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column()
    grid.add_row("values", f"means over {seeds} seed(s)" + ("; under each, its 95% interval (F1: a bootstrap over "
                                                            "seeds and test rows; others: t over seeds, cut to the "
                                                            "range)" if with_ci else
                                                            "; intervals in summary.md"))
    grid.add_row("layer", _layer_note(rows))
    for c in cols:
        grid.add_row(c.title, c.note)
    grid.add_row("more", "`probebank results --explain` says what every column means; --wide shows them all; "
                         "summary.md has the full table")
    return grid


_PICK_NOTES = {"validation": "the best mean validation k=1 F1 (a split of the training rows: no test row chose it)",
               "train": "the best mean training k=1 F1 (records older than val_f1)",
               "test": "the best mean test k=1 F1, as the paper picks it (optimistic)"}


def _layer_note(rows: Sequence[dict]) -> str:
    """How the shown rows' layers were picked (summary rows' `layer_picked_on`; regression rows: test R2)."""
    picks = sorted({r.get("layer_picked_on", "test") for r in rows if not _is_value_row(r)},
                   key=list(_PICK_NOTES).index)
    text = "the layer with " + "; or ".join(_PICK_NOTES[p] for p in picks or ["test"])
    return text + ("; regression rows: best test R2" if any(_is_value_row(r) for r in rows) else "")


def explain() -> str:
    """Every column of both tables, for `probebank results --explain`."""
    return ("Classification (F1) columns, by --columns key:\n"
            + "\n".join(f"  {c.key:<18} {c.title:<22} {c.note}" for c in F1_TABLE.values())
            + "\n\nRegression (R2) columns, by --columns key:\n"
            + "\n".join(f"  {c.key:<18} {c.title:<22} {c.note}" for c in R2_TABLE.values()))
