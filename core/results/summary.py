"""The summary table of a results folder: per feature, the best layer and its figures with 95% intervals.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from probebank.probing import kcurve, stats
from probebank.probing.schema import Metrics, Provenance, ResultRecord
from probebank.results.value_summary import VALUE_COLUMNS, VALUE_NOTE, summarise_values


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


# Per-seed metrics of a summary row: each gets a mean and a 95% interval (probebank.probing.stats).
F1_METRICS = ("f1_k1", "f1_k16", "f1_dense")


METRICS = F1_METRICS + ("selectivity_k1", "shuffled_k1", "rotation_k1", "token_identity_f1", "random_init_k1",
                        "auc_log2k", "k95", "gap_k1", "gain_1_8", "n_mono")


NON_PROBE_METHODS = ("dense", "single_unit")  # baselines and signals, not selection methods
DENSE_GAP = 0.05  # a dense F1 this far below the k=1 F1 gets its reason printed beside it (`dense_note`)


def _seed_metrics(curve: dict[int, ResultRecord], dense: ResultRecord | None,
                  single: ResultRecord | None) -> dict[str, float | None]:
    """Every summary metric of one (feature, layer, seed) from its records."""
    f1 = {k: r.f1 for k, r in curve.items()}
    d = dense.f1 if dense else None
    c1 = curve[1].f1_controls if 1 in curve else None
    token = next((c.token_identity_f1 for r in curve.values() if (c := r.f1_controls)), None)
    return {
        "f1_k1": f1.get(1), "f1_k16": f1.get(16), "f1_dense": d,
        "selectivity_k1": c1.selectivity if c1 else None, "shuffled_k1": c1.shuffled_f1 if c1 else None,
        "rotation_k1": c1.rotation_f1 if c1 else None, "token_identity_f1": token,
        "random_init_k1": c1.random_init_f1 if c1 else None,
        "auc_log2k": kcurve.auc_log2k(f1), "k95": kcurve.k_reaching(f1, d), "gap_k1": kcurve.k1_gap(f1, d),
        "gain_1_8": kcurve.gain(f1, 1, 8),
        "n_mono": float(single.method_params.get("n_units", 0)) if single else None,
    }


# The range each non-F1 metric can take: its t interval over seeds is cut to it (probebank.probing.stats).
RANGES: dict[str, tuple[float, float]] = {
    "f1_k1": (0.0, 1.0), "f1_k16": (0.0, 1.0), "f1_dense": (0.0, 1.0),  # when a seed lacks its record
    "selectivity_k1": (-1.0, 1.0), "shuffled_k1": (0.0, 1.0), "rotation_k1": (0.0, 1.0),
    "token_identity_f1": (0.0, 1.0), "random_init_k1": (0.0, 1.0), "auc_log2k": (0.0, 1.0),
    "k95": (1.0, math.inf), "gap_k1": (-1.0, 1.0), "gain_1_8": (-1.0, 1.0), "n_mono": (0.0, math.inf)}


def _interval(name: str, values: list[float | None], records: list[ResultRecord | None]) -> tuple:
    """(mean, low, high): for F1, a bootstrap over seeds and test rows; else a t interval over seeds cut to
    the metric's range (none from one seed). Both stay inside the range (probebank.probing.stats)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None, None
    if name in F1_METRICS and len(records) == len(values) and all(r is not None for r in records):
        cells = []
        for r in records:
            assert r is not None and isinstance(r.metrics, Metrics)  # F1_METRICS come from classification records
            cells.append(stats.confusion_from_metrics(r.n_test, r.n_test_pos, r.metrics.precision, r.metrics.recall))
        first = records[0]
        assert first is not None
        lo, hi = stats.seeds_f1_interval(cells, seed=first.seed)
        return _mean(vals), lo, hi
    low, high = RANGES.get(name, (-math.inf, math.inf))
    return stats.bounded_t_interval(vals, low, high)


def dense_note(records: list[ResultRecord | None]) -> str:
    """Why a dense F1 sits below the k=1 F1: units against training rows, and how its C was chosen.

    An L2 probe spreads its weight over every unit, so with more units than training rows it cannot
    single out the one unit that carries a feature, whatever its C (chosen on an inner split of the
    training rows, probebank.probing.dense); records written before that choice had a fixed C.
    """
    recs = [r for r in records if r is not None]
    if not recs:
        return "dense below k=1"
    units, rows = recs[0].k, min(r.n_train for r in recs)
    text = (f"dense below k=1: {units} units > {rows} training rows (L2 spreads its weight over all units)"
            if units > rows else f"dense below k=1: {units} units, {rows} training rows")
    fits = [r.dense_fit for r in recs if r.dense_fit is not None]
    if not fits:
        return text + "; C fixed (records written before the inner-split choice of C: re-run for it)"
    chosen = sorted({f.C for f in fits})
    cs = "/".join(f"{c:g}" for c in chosen)
    if all(f.chosen_on == "fixed" for f in fits):
        return text + f"; C fixed at {cs}"
    edge = " (an end of the grid)" if all(f.C in (min(f.C_grid), max(f.C_grid)) for f in fits) else ""
    return text + f"; C chosen {cs}{edge} on an inner split of the training rows"


def _k1_mean(seeds: dict[int, dict[int, ResultRecord]]) -> float:
    """Mean k=1 test F1 over the seeds of one layer (0 when no seed has k=1)."""
    vals = [c[1].f1 for c in seeds.values() if 1 in c]
    return _mean(vals) if vals else 0.0


def _layer_by(by_layer: dict[int, dict[int, dict[int, ResultRecord]]], field: str) -> int | None:
    """The layer with the best mean k=1 `field` (train_f1 or val_f1) over seeds (ties: earlier layer);
    None when no record has it (results written before probebank recorded it)."""
    scores = {}
    for layer, seeds in by_layer.items():
        vals = [v for c in seeds.values() if 1 in c and (v := getattr(c[1], field)) is not None]
        if vals:
            scores[layer] = _mean(vals)
    return max(scores, key=lambda layer: (scores[layer], -layer)) if scores else None


def _layer_by_train(by_layer: dict[int, dict[int, dict[int, ResultRecord]]]) -> int | None:
    return _layer_by(by_layer, "train_f1")


LAYER_PICKS = ("validation", "test")  # how summarise picks the best layer: the honest default, or the paper's


def _k1_at(by_layer: dict[int, dict[int, dict[int, ResultRecord]]], layer: int) -> tuple:
    """(mean, low, high) of the test k=1 F1 over seeds at one layer."""
    recs = [c.get(1) for c in by_layer[layer].values()]
    return _interval("f1_k1", [r.f1 if r else None for r in recs], recs)


def dataset_label(p: Provenance) -> str:
    """A summary row's dataset: its name, and the test set when the probes were scored on one (--test-on)."""
    return p.dataset if p.test_set is None else f"{p.dataset} [--test-on {p.test_set}]"


def summarise(records: list[ResultRecord], method: str | None = None, pick: str = "validation") -> list[dict]:
    """Per (model, dataset, feature, site, basis, method): the best layer and its figures.

    Every metric is averaged over seeds with a 95% interval (`<metric>_ci`, see probebank.probing.stats).
    pick="validation" (the default): the best layer is the one with the best mean k=1 `val_f1`, the
    F1 on a validation split cut from the training rows (probebank.probing.evaluate), so the test rows
    that score it never chose it; records without val_f1 (older results folders) fall back to the
    layer with the best k=1 *training* F1, and to test F1 when they lack that too (`layer_picked_on`
    says which). pick="test": the layer with the best mean k=1 test F1, as Gurnee et al. report it.
    Beside it, always: `layer_by_test` and `f1_k1_test_picked` (optimistic, for comparison with the
    paper: with 30 layers the maximum of noisy test F1s is biased upwards, and the interval does not
    cover that), `layer_by_train` / `f1_k1_by_train`, `layer_by_val`, `layer_optimism` =
    f1_k1_test_picked - the test k=1 F1 at the honest (validation, else training) pick, and
    `layer_picks_agree` (the honest pick is the test pick).
    Also: k-curve summaries (probebank.probing.kcurve), the k=1 -> 8 gain at every layer (`gain_1_8_by_layer`),
    the stability of the supports across seeds (mean pairwise Jaccard at k=16, and whether the
    k=1 unit changes), and the number of units that alone reach F1 >= 0.9 (`n_mono`).
    Records of regression cards get rows of their own, with R2 in place of F1
    (probebank.results.value_summary), after the classification rows.
    """
    if pick not in LAYER_PICKS:
        raise ValueError(f"pick must be one of {LAYER_PICKS}, got {pick!r}")
    values = [r for r in records if r.regression]
    if values:
        return summarise([r for r in records if not r.regression], method, pick) + add_ci_widths(
            summarise_values(values, method))
    curves: dict[tuple, dict[int, dict[int, dict[int, ResultRecord]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))          # key -> layer -> seed -> k -> record
    dense: dict[tuple, ResultRecord] = {}                        # (base, layer, seed) -> record
    single: dict[tuple, ResultRecord] = {}
    for r in records:
        base = (r.provenance.model, dataset_label(r.provenance), r.feature, r.site, r.basis)
        if r.method in NON_PROBE_METHODS:
            (dense if r.method == "dense" else single)[base + (r.layer, r.seed)] = r
            continue
        if method and r.method != method:
            continue
        curves[base + (r.method,)][r.layer][r.seed][r.k] = r
    rows = []
    for key, by_layer in sorted(curves.items()):
        base = key[:5]

        by_test = max(by_layer, key=lambda layer, b=by_layer: (_k1_mean(b[layer]), -layer))  # type: ignore[misc]
        by_train = _layer_by_train(by_layer)
        by_val = _layer_by(by_layer, "val_f1")
        honest, honest_on = (by_val, "validation") if by_val is not None else (by_train, "train")
        if pick == "test" or honest is None:
            best_layer, picked_on = by_test, "test"
        else:
            best_layer, picked_on = honest, honest_on
        seeds = sorted(by_layer[best_layer])
        per_seed = {s: _seed_metrics(by_layer[best_layer][s], dense.get(base + (best_layer, s)),
                                     single.get(base + (best_layer, s))) for s in seeds}
        row: dict = {"model": key[0], "dataset": key[1], "feature": key[2], "site": key[3], "basis": key[4],
                     "method": key[5], "best_layer": best_layer, "layer_picked_on": picked_on, "seeds": len(seeds)}
        f1_records = {"f1_k1": [by_layer[best_layer][s].get(1) for s in seeds],
                      "f1_k16": [by_layer[best_layer][s].get(16) for s in seeds],
                      "f1_dense": [dense.get(base + (best_layer, s)) for s in seeds]}
        for name in METRICS:
            mean, lo, hi = _interval(name, [per_seed[s][name] for s in seeds], f1_records.get(name, [None]))
            row[name] = mean
            row[name + "_ci"] = None if lo is None else [lo, hi]
        below = row["f1_dense"] is not None and row["f1_k1"] is not None and row["f1_dense"] < row["f1_k1"] - DENSE_GAP
        row["dense_note"] = dense_note(f1_records["f1_dense"]) if below else None
        vals = [v for s in seeds if (r1 := by_layer[best_layer][s].get(1)) is not None and (v := r1.val_f1) is not None]
        row["val_f1_k1"] = _mean(vals) if vals else None
        row["layer_by_val"], row["layer_by_train"], row["layer_by_test"] = by_val, by_train, by_test
        for name, layer in (("f1_k1_test_picked", by_test), ("f1_k1_by_train", by_train)):
            mean, lo, hi = _k1_at(by_layer, layer) if layer is not None else (None, None, None)
            row[name] = mean
            row[name + "_ci"] = None if lo is None else [lo, hi]
        honest_f1 = _k1_at(by_layer, honest)[0] if honest is not None else None
        row["layer_optimism"] = (None if honest_f1 is None or row["f1_k1_test_picked"] is None
                                 else row["f1_k1_test_picked"] - honest_f1)
        row["layer_picks_agree"] = None if honest is None else honest == by_test
        row.update(stats.support_stability([by_layer[best_layer][s] for s in seeds]))
        gains = {}
        for layer in sorted(by_layer):
            g = [kcurve.gain({k: r.f1 for k, r in c.items()}) for c in by_layer[layer].values()]
            known = [v for v in g if v is not None]
            gains[layer] = _mean(known) if known else None
        row["gain_1_8_by_layer"] = gains
        row["layers"] = len(by_layer)
        rows.append(row)
    return add_ci_widths(rows)


def layer_pick_line(rows: list[dict]) -> str | None:
    """One line on how the best layers were picked and how often the honest pick equals the test pick."""
    rows = [r for r in rows if not _is_value_row(r) and "layer_picked_on" in r]
    if not rows:
        return None
    on = sorted({r["layer_picked_on"] for r in rows})
    known = [r for r in rows if r.get("layer_picks_agree") is not None]
    line = "Best layer picked on " + " / ".join(f"{PICK_WORDS[p]} ({sum(r['layer_picked_on'] == p for r in rows)})"
                                                for p in on) + "."
    if known:
        agree = sum(bool(r["layer_picks_agree"]) for r in known)
        opt = [r["layer_optimism"] for r in known if r.get("layer_optimism") is not None]
        honest = "validation" if all(r.get("layer_by_val") is not None for r in known) else "validation/training"
        line += (f" The {honest} pick equals the test pick on {agree}/{len(known)} features"
                 + (f"; the test pick's k=1 F1 is higher by {_mean(opt):.3f} on average (optimism)" if opt else "")
                 + ".")
    if "train" in on:
        line += (" Records without val_f1 (written before probebank recorded it) fell back to the training-F1 "
                 "pick; re-run them for a validation pick.")
    return line


PICK_WORDS = {"validation": "validation F1 (a split of the training rows)",
              "train": "training F1 (older records without val_f1)",
              "test": "test F1 (optimistic, as the paper)"}


def add_ci_widths(rows: list[dict]) -> list[dict]:
    """Give every figure with a 95% interval its width (`<metric>_ci_width` = high - low): how far apart two
    such figures must be before the difference says more than the noise of the test rows and seeds."""
    for row in rows:
        for key in [k for k in row if k.endswith("_ci")]:
            ci = row[key]
            row[key + "_width"] = None if not ci else float(ci[1] - ci[0])
    return rows


def median_ci_width(rows: list[dict], key: str = "f1_k1") -> tuple[float | None, int]:
    """(median width of `key`'s 95% interval over the rows that have one, how many have one)."""
    widths = [w for r in rows if (w := r.get(key + "_ci_width")) is not None]
    return (statistics.median(widths) if widths else None), len(widths)


# (column title, row key, kind) of the tables; kind "f" = value with interval, "k" = integer k
COLUMNS = (("F1 k=1", "f1_k1", "f"), ("95% width k=1", "f1_k1_ci_width", "f"),
           ("F1 k=1 test-picked", "f1_k1_test_picked", "f"),  # optimistic: the note says so
           ("F1 k=1 layer by train", "f1_k1_by_train", "f"),
           ("F1 k=16", "f1_k16", "f"), ("F1 dense", "f1_dense", "f"),
           ("select. k=1", "selectivity_k1", "f"), ("rotation k=1", "rotation_k1", "f"),
           ("token id", "token_identity_f1", "f"), ("rand-init k=1", "random_init_k1", "f"),
           ("AUC log2k", "auc_log2k", "f"), ("k@95% dense", "k95", "k"), ("gap k=1", "gap_k1", "f"),
           ("gain 1->8", "gain_1_8", "f"), ("units F1>=.9", "n_mono", "k"))


def _cell(row: dict, key: str, kind: str, with_ci: bool = True) -> str:
    """'mean [low, high]' with the 95% interval (with_ci=False: the mean only); intervals are not symmetric
    near the ends of a range, so both ends are shown. The terminal's view is probebank.results.summary_table."""
    v = row.get(key)
    if v is None:
        return "-"
    ci = row.get(key + "_ci") if with_ci else None
    if kind == "k":
        text = f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
        return text if not ci else f"{text} [{ci[0]:.1f}, {ci[1]:.1f}]"
    return f"{v:.3f}" if not ci else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _stability(row: dict) -> str:
    j = row.get("jaccard")
    text = "-" if j is None else f"{j:.2f}"
    return text + (" k1 changes" if row.get("k1_unit_changes") else "")


def _columns(rows: list[dict], columns: tuple[tuple[str, str, str], ...] = COLUMNS) -> list[tuple[str, str, str]]:
    """Drop the columns no row has a value for (e.g. controls off, no --random-init)."""
    return [c for c in columns if any(r.get(c[1]) is not None for r in rows)] or list(columns[:3])


def _is_value_row(row: dict) -> bool:
    return row.get("metric") == "r2"  # a regression card's row (probebank.results.value_summary)


def certificates(records: Iterable[ResultRecord]) -> str | None:
    """One line on the exact (milp) probes' certificates, or None when no record has a solver report."""
    reps = [r.solver for r in records if r.solver is not None]
    if not reps:
        return None
    proven = [s for s in reps if s.status == "optimal"]
    times = sorted(s.time_s for s in reps)
    solvers = ", ".join(sorted({s.solver for s in reps}))
    line = (f"exact probes ({solvers}): {len(reps)} solves, {len(proven)} proven optimal"
            + (f" (max gap {max(s.gap for s in proven):.1e})" if proven else "")
            + f", median {times[len(times) // 2]:.3f} s, max {times[-1]:.2f} s")
    limited = len(reps) - len(proven)
    if limited:
        worst = max(s.gap for s in reps if s.status != "optimal")
        line += f"; {limited} stopped by the time limit (largest proven gap {worst:.1e})"
    return line


def write_summary_markdown(rows: list[dict], path: Path, footer: str | None = None) -> None:
    values = [r for r in rows if _is_value_row(r)]
    rows = [r for r in rows if not _is_value_row(r)]
    text = _markdown(rows, COLUMNS) + "\n" + _NOTE + _median_line(rows, "f1_k1", "F1") if rows or not values else ""
    if values:  # regression cards: a table of their own, with R2 and Spearman
        text += (("\n" if text else "") + _markdown(values, VALUE_COLUMNS) + "\n" + VALUE_NOTE
                 + _median_line(values, "r2_k1", "R2"))
    picks = layer_pick_line(rows)
    if picks:
        text += f"\n{picks}\n"
    if footer:
        text += f"\n{footer}\n"
    path.write_text(text, encoding="utf-8")


def protocol_line(protocol: str, methods: list[str]) -> str:
    """What summary.md says about the run's protocol (probebank.settings.PROTOCOL_METHODS)."""
    if protocol == "paper":
        return (f"Protocol: paper (Gurnee et al.): methods {', '.join(methods)}; each feature's best layer picked on "
                "test k=1 F1 (optimistic). `--protocol standard` picks it on a validation split of the training rows.")
    return (f"Protocol: standard: methods {', '.join(methods)}; each feature's best layer picked on validation k=1 F1 "
            "(a split of the training rows; the test rows never chose it). `--protocol paper` is the paper's.")


def _median_line(rows: list[dict], key: str, metric: str) -> str:
    median, n = median_ci_width(rows, key)
    return "" if median is None else (f"\nMedian width of the 95% interval of k=1 {metric}: {median:.3f} "
                                      f"(over {n} row{'s' if n != 1 else ''}).\n")


def _markdown(rows: list[dict], columns: tuple[tuple[str, str, str], ...]) -> str:
    cols = _columns(rows, columns)
    head = ["model", "dataset", "feature", "site", "basis", "method", "best layer", "picked on",
            "layer by test (optimistic)", "layer by train", "seeds"]
    head += [c[0] for c in cols] + ["Jaccard", "neuron (k=1)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["dataset"], r["feature"], r["site"], r.get("basis", "identity"), r["method"],
                 str(r["best_layer"]), r.get("layer_picked_on", "test"),
                 "-" if r.get("layer_by_test") is None else str(r["layer_by_test"]),
                 "-" if r.get("layer_by_train") is None else str(r["layer_by_train"]),
                 str(r.get("seeds", 1))]
        cells += [_cell(r, key, kind) + (f" ({r['dense_note']})" if key == "f1_dense" and r.get("dense_note") else "")
                  for _, key, kind in cols]
        cells += [_stability(r), ",".join(map(str, r["units_k1"])) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_NOTE = ("\nValues are means over seeds with their 95% interval in brackets: for F1 a bootstrap over seeds and "
         "test rows; for the other figures a t interval over seeds cut to the "
         "figure's range (none from one seed); 95% width = high - low of that interval. best layer = the layer "
         "every figure of the row is taken at, picked on validation k=1 F1, a split of the training rows that never saw the test rows "
         "(older records: training F1; --protocol paper: test F1, as the paper reports it); F1 k=1 test-picked "
         "= test k=1 F1 at the layer with the best test k=1 F1 (layer by test): optimistic, for comparison with "
         "the paper; F1 k=1 layer by train = test k=1 F1 at the layer picked on training F1. "
         "F1 dense = an L2 logistic probe on every unit, its C chosen on an inner split of the training rows; "
         "one more than 0.05 below k=1 has its reason beside it. "
         "select. = F1 - shuffled-label F1; k@95% dense = smallest k reaching "
         "95% of the dense F1; Jaccard = mean pairwise Jaccard of the k=16 supports across seeds. "
         "See docs/controls.md.\n")


def summary_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=1)
