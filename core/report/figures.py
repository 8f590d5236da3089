"""The report's figures, drawn with matplotlib from plain numbers (probebank.report.figure_data makes them).

Each function returns one inline <svg class="plot KIND"> (probebank.report.mpl). Scales are fixed where
the metric has a range (F1: 0..1, one colour bar for every heatmap panel), labels sit on the marks
they name (horizontal bars: the label is the bar's own tick), and intervals are drawn as error bars.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from probebank.report.mpl import FAIL_COLOUR, NULL_COLOUR, PASS_COLOUR, Plot, colour

Interval = tuple[float, float | None, float | None]  # (mean, low, high); low/high None: one value, no interval


@dataclass
class HeatPanel:
    label: str                              # e.g. "tiny-llama (method mean_diff)"
    rows: list[str]                         # layers, top to bottom
    cols: list[str]                         # features or categories
    values: list[list[float | None]]        # values[row][col], None: no result


@dataclass
class PairedRow:
    label: str                              # a category
    neuron: Interval
    rotation: Interval
    n: int                                  # features behind the means


@dataclass
class FindingPoint:
    name: str
    claim: str
    passed: bool
    estimate: float
    low: float | None
    high: float | None
    threshold: float | None
    unit: str


@dataclass
class EffectRow:
    label: str
    observed: float
    null_mean: float
    null_sd: float
    p_value: float


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _err(iv: Interval) -> tuple[list[float], list[float]] | None:
    mean, lo, hi = iv
    if lo is None or hi is None:
        return None
    return [max(0.0, mean - lo)], [max(0.0, hi - mean)]


def heatmap(panels: Sequence[HeatPanel], *, title: str, what: str = "k=1 F1") -> str:
    """One panel per model: rows are layers, columns features (or categories); one 0..1 colour bar."""
    ncols = max(len(p.cols) for p in panels)
    nrows = [len(p.rows) for p in panels]
    width = min(14.0, max(5.0, 1.9 + 0.24 * ncols))
    longest = max((len(_short(c)) for p in panels for c in p.cols), default=4)
    heights = [max(1.4, 0.16 * n + 0.5) for n in nrows]
    plot = Plot("heatmap", title, width, sum(heights) + 0.075 * longest + 0.6, nrows=len(panels),
                gridspec_kw={"height_ratios": heights})
    mesh = None
    for ax, p in zip(plot.axes, panels):
        data = np.ma.masked_invalid(np.array([[math.nan if v is None else v for v in row] for row in p.values],
                                             dtype=float))
        mesh = ax.pcolormesh(data, vmin=0.0, vmax=1.0, cmap="viridis", edgecolors="white", linewidth=0.3)
        plot.mark(mesh, int(data.count()))
        ax.set_xticks([i + 0.5 for i in range(len(p.cols))], [_short(c) for c in p.cols], rotation=90)
        step = max(1, len(p.rows) // 12)  # at most ~12 layer labels
        ax.set_yticks([i + 0.5 for i in range(0, len(p.rows), step)], p.rows[::step])
        ax.set_xlim(0, len(p.cols))
        ax.set_ylim(len(p.rows), 0)  # first layer at the top
        ax.set_ylabel("layer")
        ax.set_title(p.label, loc="left")
        ax.grid(False)
        ax.tick_params(length=0)
    if mesh is not None:
        plot.fig.colorbar(mesh, ax=plot.axes, label=what, fraction=0.04, pad=0.01, shrink=0.9)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def paired_dots(panels: Sequence[tuple[str, Sequence[PairedRow]]], *, title: str,
                labels: tuple[str, str] = ("neurons", "random rotation")) -> str:
    """Per category: the neuron basis against the random rotation (mean k=1 F1 over features, 95% interval)."""
    plot = Plot("paired", title, 6.4, 0.9 + sum(0.28 * len(rows) + 0.5 for _, rows in panels), nrows=len(panels),
                gridspec_kw={"height_ratios": [max(1, len(rows)) for _, rows in panels]})
    for ax, (label, rows) in zip(plot.axes, panels):
        ys = list(range(len(rows)))
        for si, (name, offset, col) in enumerate(((labels[0], -0.17, colour(0)), (labels[1], 0.17, NULL_COLOUR))):
            for y, row in zip(ys, rows):
                iv = row.neuron if si == 0 else row.rotation
                err = _err(iv)
                c = ax.errorbar([iv[0]], [y + offset], xerr=err, fmt="o" if si == 0 else "s", color=col,
                                markersize=5, capsize=2, elinewidth=1.2, label=name if y == 0 else None)
                ci = "" if err is None else f" [{iv[1]:.3f}, {iv[2]:.3f}]"
                plot.mark(c.lines[0], 1, f"{row.label}, {name}: mean k=1 F1 {iv[0]:.3f}{ci} over {row.n} features")
        ax.set_yticks(ys, [f"{_short(r.label, 24)} ({r.n})" for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(0.0, 1.0)
        ax.set_title(label, loc="left")
        ax.grid(axis="y", visible=False)
    plot.axes[-1].set_xlabel("k=1 F1 at each feature's best layer (mean over features, 95% interval)")
    plot.fig.legend(*plot.axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def findings(points: Sequence[FindingPoint], *, title: str) -> str:
    """One row per finding: its estimate with the interval, the pass threshold dashed, green pass / red fail."""
    plot = Plot("findings", title, 6.4, 0.55 + 1.0 * len(points), nrows=len(points))
    for ax, f in zip(plot.axes, points):
        col = PASS_COLOUR if f.passed else FAIL_COLOUR
        err = None if f.low is None or f.high is None else ([max(0.0, f.estimate - f.low)],
                                                            [max(0.0, f.high - f.estimate)])
        c = ax.errorbar([f.estimate], [0], xerr=err, fmt="o", color=col, markersize=6, capsize=3, elinewidth=1.5)
        ci = "" if err is None else f", 95% interval [{f.low:.3g}, {f.high:.3g}]"
        plot.mark(c.lines[0], 1, f"{f.name}: {f.estimate:.3g}{ci}; {f.claim}; {'pass' if f.passed else 'FAIL'}")
        known = [v for v in (f.estimate, f.low, f.high, f.threshold) if v is not None]
        lo, hi = min(known), max(known)
        pad = max(0.05 * (hi - lo), 0.02 * max(abs(lo), abs(hi), 1e-3))
        ax.set_xlim(lo - pad, hi + pad)
        if f.threshold is not None:
            ax.axvline(f.threshold, color="#555", linestyle="--", linewidth=1)
        ax.set_yticks([0], [_short(f.name, 26)])
        ax.set_ylim(-0.6, 0.6)
        ax.grid(axis="y", visible=False)
        # the claim above the axis, the unit below it: together they overran the panel's width
        ax.set_title(f"{'pass' if f.passed else 'FAIL'}: {_short(f.claim, 72)}", loc="left", fontsize=8, color=col)
        if f.unit:
            ax.set_xlabel(_short(f.unit, 72), fontsize=7, labelpad=1)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def effects(rows: Sequence[EffectRow], *, title: str, xlabel: str) -> str:
    """Causal effects: the observed effect (dot) against its null (mean ± 1.96 sd, grey); p-value at the right."""
    plot = Plot("effects", title, 7.2, 0.9 + 0.3 * len(rows))
    ax = plot.axes[0]
    for y, r in enumerate(rows):
        c = ax.errorbar([r.null_mean], [y], xerr=[[1.96 * r.null_sd], [1.96 * r.null_sd]], fmt="|", color=NULL_COLOUR,
                        markersize=8, capsize=2, elinewidth=3, alpha=0.7, label="null (mean ± 1.96 sd)" if y == 0 else None)
        plot.mark(c.lines[0], 1, f"{r.label}: null {r.null_mean:+.4f} ± {r.null_sd:.4f}")
        col = PASS_COLOUR if r.p_value < 0.05 else FAIL_COLOUR
        (dot,) = ax.plot([r.observed], [y], "o", color=col, markersize=6,
                         label=("observed, p < 0.05" if r.p_value < 0.05 else "observed, p >= 0.05"))
        plot.mark(dot, 1, f"{r.label}: observed {r.observed:+.4f}, p = {r.p_value:.3g}")
        ax.annotate(f"p = {r.p_value:.2g}", xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(0.0, color="#888", linewidth=0.8)
    ax.margins(x=0.06)  # a dot at the largest effect stays clear of the frame and the p-values beside it
    ax.set_yticks(range(len(rows)), [_short(r.label, 48) for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    plot.fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncol=3, frameon=False)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def k_curves(panels: Sequence[tuple[str, Sequence[tuple[str, Mapping[int, float], str]],
                                    Sequence[tuple[str, float, str]]]], *, title: str) -> str:
    """Small multiples of F1 against k (log2 axis), one panel per feature: a line per entry, dense dashed."""
    n = len(panels)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    # at least 5.2 in wide: one or two panels at 2.3 in cut the title and the legend of two entries off
    plot = Plot("kcurve", title, max(2.3 * ncols + 0.4, 5.2), 1.9 * nrows + 0.8, nrows=nrows, ncols=ncols,
                sharey=True)
    for ax in plot.axes[n:]:
        ax.set_visible(False)
    for ax, (name, series, dense) in zip(plot.axes, panels):
        for label, curve, col in series:
            ks = sorted(curve)
            (line,) = ax.plot(ks, [curve[k] for k in ks], "-o", color=col, markersize=3, linewidth=1.4, label=label)
            plot.mark(line, len(ks), f"{name}, {label}: " + ", ".join(f"k={k} {curve[k]:.3f}" for k in ks))
        for _label, y, col in dense:
            ax.axhline(y, color=col, linestyle="--", linewidth=1, alpha=0.8)
        ax.set_xscale("log", base=2)
        ks_all = sorted({k for _, curve, _ in series for k in curve})
        if ks_all:
            powers = [k for k in ks_all if k & (k - 1) == 0] or ks_all
            ax.set_xticks(powers, [str(k) for k in powers])  # ticks at powers of two; the dots mark every k
            ax.minorticks_off()
        ax.set_ylim(0.0, 1.02)
        ax.set_title(_short(name, 34), fontsize=9)
    for ax in plot.axes[:n]:
        if ax.get_subplotspec().is_last_row() or plot.axes.index(ax) + ncols >= n:
            ax.set_xlabel("k (log scale)")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("F1")
    labels = {label: col for _, series, _ in panels for label, _, col in series}
    if labels:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, marker="o", markersize=3, label=lab) for lab, c in labels.items()]
        if any(dense for _, _, dense in panels):
            handles.append(Line2D([], [], color="#555", linestyle="--", label="dense probe"))
        plot.fig.legend(handles=handles, loc="outside lower center", ncol=min(max(2, ncols), len(handles)),
                        frameon=False)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def grouped_bars(groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *, title: str,
                 xlabel: str, lo: float | None = 0.0, hi: float | None = 1.0) -> str:
    """Horizontal grouped bars: a group per label (its tick is centred on its bars), a bar per series.
    lo/hi None: the axis follows the data (and always includes 0)."""
    n = max(1, len(series))
    height = 0.8 / n
    plot = Plot("barchart", title, 6.4, 0.9 + len(groups) * max(0.22, 0.14 * n) + 0.2 * (n > 1))
    ax = plot.axes[0]
    known = [v for _, vs, _ in series for v in vs if v is not None]
    for si, (label, values, col) in enumerate(series):
        for gi, v in enumerate(values):
            if v is None:
                continue
            (bar,) = ax.barh([gi - 0.4 + height * (si + 0.5)], [v], height=height * 0.92, color=col,
                             label=label if not any(x is not None for x in values[:gi]) else None)
            plot.mark(bar, 1, f"{groups[gi]}, {label}: {v:.3f}")
    ax.set_yticks(range(len(groups)), [_short(g, 32) for g in groups])
    ax.set_ylim(len(groups) - 0.5, -0.5)
    low = min([0.0, *known]) if lo is None else lo
    high = max([0.0, *known]) if hi is None else hi
    if high - low < 1e-9:  # e.g. every selectivity exactly 0: keep a visible axis
        high = low + 1.0
    span = high - low
    ax.set_xlim(low - (0.03 * span if lo is None else 0.0), high + (0.03 * span if hi is None else 0.0))
    ax.axvline(0.0, color="#888", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    if len(series) > 1:
        plot.fig.legend(loc="outside lower center", ncol=min(4, len(series)), frameon=False)
    plot.fig.suptitle(title, x=0.0, ha="left", fontweight="bold")
    return plot.svg()


def scatter(points: Sequence[tuple[str, float, float]], *, title: str, xlabel: str, ylabel: str) -> str:
    """Entry against entry: a dot per (dataset, feature); above the diagonal the y entry is better."""
    plot = Plot("scatter", title, 3.6, 3.6, key=f"{xlabel}|{ylabel}")
    ax = plot.axes[0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="#bbb", linewidth=1)
    for label, x, y in points:
        col = colour(1) if y > x else colour(0) if x > y else "#777"
        (dot,) = ax.plot([x], [y], "o", color=col, alpha=0.75, markersize=4)
        plot.mark(dot, 1, f"{label}: {x:.3f} vs {y:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(_short(xlabel, 40))
    ax.set_ylabel(_short(ylabel, 40))
    ax.set_title(title, loc="left", fontweight="bold")
    return plot.svg()
