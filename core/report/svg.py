"""Inline SVG plots, written as strings: no plotting library, no script, nothing fetched.

Every chart is an <svg class="plot"> with <title> tooltips on its marks, so a page opened from
disk shows its values on hover.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
# five stops of viridis: layer order from dark (early) to yellow (late)
_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def ramp(t: float) -> str:
    """viridis-like colour for t in [0, 1]."""
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    f = t - i
    return "#" + "".join(f"{round(a[j] + (b[j] - a[j]) * f):02x}" for j in range(3))


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _frame(width: int, height: int, title: str, body: list[str], kind: str) -> str:
    return (f'<svg class="plot {kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>'
            f'<text x="{width / 2:.0f}" y="14" text-anchor="middle" class="ptitle">{escape(title)}</text>'
            + "".join(body) + "</svg>")


def line_chart(series: Sequence[tuple[str, dict[int, float], str]], *, title: str, width: int = 320,
               height: int = 220, hlines: Sequence[tuple[str, float, str]] = (), legend: bool = True) -> str:
    """F1 (0..1) against k on a log2 axis. series: (label, {k: f1}, colour); hlines: dashed (label, y, colour)."""
    left, right, top, bottom = 34, 10, 22, 30
    ks = sorted({k for _, pts, _ in series for k in pts}) or [1]
    x0, x1 = math.log2(ks[0]), math.log2(ks[-1]) if ks[-1] > ks[0] else math.log2(ks[0]) + 1
    pw, ph = width - left - right, height - top - bottom

    def sx(k: float) -> float:
        return left + (math.log2(k) - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return top + (1 - v) * ph

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="pbg"/>']
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" class="grid"/>'
                    f'<text x="{left - 4}" y="{sy(v) + 3:.1f}" text-anchor="end" class="tick">{v:g}</text>')
    for k in ks:
        if k & (k - 1) == 0 or k == ks[0] or k == ks[-1]:  # label powers of two and the ends
            body.append(f'<text x="{sx(k):.1f}" y="{top + ph + 12}" text-anchor="middle" class="tick">{k}</text>')
    body.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis">k (log scale)</text>')
    for label, y, col in hlines:
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="{col}" '
                    f'class="dense"><title>{escape(label)}: dense F1 {y:.3f}</title></line>')
    for label, pts, col in series:
        ordered = sorted(pts.items())
        if not ordered:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(k):.1f},{sy(v):.1f}" for i, (k, v) in enumerate(ordered))
        body.append(f'<path d="{path}" stroke="{col}" class="curve"><title>{escape(label)}</title></path>')
        for k, v in ordered:
            body.append(f'<circle cx="{sx(k):.1f}" cy="{sy(v):.1f}" r="2.2" fill="{col}">'
                        f'<title>{escape(label)}: k={k} F1 {v:.3f}</title></circle>')
    if legend and len(series) > 1:
        for i, (label, _, col) in enumerate(series[:8]):
            y = top + 10 + i * 11
            body.append(f'<rect x="{left + pw - 96}" y="{y - 7}" width="8" height="8" fill="{col}"/>'
                        f'<text x="{left + pw - 85}" y="{y}" class="legend">{escape(label[:18])}</text>')
    return _frame(width, height, title, body, "linechart")


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]], *, title: str,
            cell: int = 14, row_label: str = "layer") -> str:
    """values[r][c] in 0..1 (None = no result), coloured with the viridis ramp."""
    left = 8 + 6 * max((len(r) for r in rows), default=4)
    top = 24 + 6 * min(24, max((len(c) for c in cols), default=4))
    width = max(left + cell * len(cols) + 60, 6 * len(title) + 20)
    height = top + cell * len(rows) + 10
    body = []
    for ci, c in enumerate(cols):
        x = left + ci * cell + cell / 2
        body.append(f'<text transform="translate({x + 3:.1f},{top - 4}) rotate(-60)" class="tick">{escape(c[:24])}</text>')
    for ri, r in enumerate(rows):
        y = top + ri * cell
        body.append(f'<text x="{left - 4}" y="{y + cell - 3}" text-anchor="end" class="tick">{escape(r)}</text>')
        for ci, c in enumerate(cols):
            v = values[ri][ci]
            fill = "#eeeeee" if v is None else ramp(v)
            body.append(f'<rect x="{left + ci * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                        f'<title>{escape(row_label)} {escape(r)}, {escape(c)}: F1 {_fmt(v)}</title></rect>')
    for i in range(6):  # colour scale
        y = top + i * 12
        body.append(f'<rect x="{width - 48}" y="{y}" width="10" height="11" fill="{ramp(1 - i / 5)}"/>'
                    f'<text x="{width - 34}" y="{y + 9}" class="tick">{1 - i / 5:.1f}</text>')
    return _frame(width, max(height, top + 80), title, body, "heatmap")


def bar_chart(groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *, title: str,
              lo: float | None = None, hi: float = 1.0, width: int | None = None, height: int = 220) -> str:
    """Grouped vertical bars: for each group, one bar per series. None values leave a gap."""
    vals = [v for _, vs, _ in series for v in vs if v is not None]
    lo = min(0.0, min(vals, default=0.0)) if lo is None else lo
    hi = max(hi, max(vals, default=hi))
    if hi - lo < 1e-9:  # e.g. every selectivity exactly 0: keep a visible, non-degenerate axis
        hi = lo + 1.0
    left, top, bottom = 34, 22, 70
    n = max(1, len(series))
    group_w = max(14, 8 * n + 6)
    width = width or max(240, left + 20 + group_w * len(groups))
    pw, ph = width - left - 10, height - top - bottom

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * ph

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="pbg"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" class="grid"/>'
                    f'<text x="{left - 4}" y="{sy(v) + 3:.1f}" text-anchor="end" class="tick">{v:.2g}</text>')
    bw = (group_w - 6) / n
    for gi, g in enumerate(groups):
        gx = left + 4 + gi * group_w
        for si, (label, vs, col) in enumerate(series):
            value = vs[gi]
            if value is None:
                continue
            y0, y1 = sorted((sy(0.0 if lo <= 0 <= hi else lo), sy(value)))
            body.append(f'<rect x="{gx + si * bw:.1f}" y="{y0:.1f}" width="{bw:.1f}" height="{max(0.5, y1 - y0):.1f}" '
                        f'fill="{col}" class="bar"><title>{escape(label)}, {escape(g)}: {value:.3f}</title></rect>')
        body.append(f'<text transform="translate({gx + group_w / 2:.1f},{top + ph + 8}) rotate(50)" class="tick">'
                    f'{escape(g[:16])}</text>')
    if len(series) > 1:
        for i, (label, _, col) in enumerate(series[:8]):
            x = left + 4 + i * 110
            body.append(f'<rect x="{x}" y="{height - 12}" width="8" height="8" fill="{col}"/>'
                        f'<text x="{x + 11}" y="{height - 5}" class="legend">{escape(label[:18])}</text>')
    return _frame(width, height, title, body, "barchart")


def scatter(points: Sequence[tuple[str, float, float]], *, title: str, xlabel: str, ylabel: str,
            size: int = 260) -> str:
    """Model-vs-model: one dot per (dataset, feature), x = entry A's F1, y = entry B's F1; the diagonal is a tie."""
    left, top, bottom = 36, 22, 34
    p = size - left - 10

    def sx(v: float) -> float:
        return left + v * p

    def sy(v: float) -> float:
        return top + (1 - v) * p

    body = [f'<rect x="{left}" y="{top}" width="{p}" height="{p}" class="pbg"/>',
            f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" class="diag"/>']
    for v in (0, 0.5, 1):
        body.append(f'<text x="{left - 4}" y="{sy(v) + 3:.1f}" text-anchor="end" class="tick">{v:g}</text>'
                    f'<text x="{sx(v):.1f}" y="{top + p + 12}" text-anchor="middle" class="tick">{v:g}</text>')
    body.append(f'<text x="{left + p / 2:.0f}" y="{top + p + 26}" text-anchor="middle" class="axis">{escape(xlabel)}</text>'
                f'<text transform="translate(10,{top + p / 2:.0f}) rotate(-90)" text-anchor="middle" class="axis">'
                f'{escape(ylabel)}</text>')
    for label, x, y in points:
        col = color(1) if y > x else color(0) if x > y else "#777"
        body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{col}" fill-opacity="0.75">'
                    f'<title>{escape(label)}: {x:.3f} vs {y:.3f}</title></circle>')
    return _frame(size, size + bottom - 10, title, body, "scatter")


def histogram(edges: Sequence[float], series: Sequence[tuple[str, Sequence[int], str]], *, title: str,
              width: int = 360, height: int = 180) -> str:
    """Overlaid per-class histograms of one neuron's activations (counts normalised per class)."""
    left, top, bottom = 34, 22, 40
    pw, ph = width - left - 10, height - top - bottom
    nb = len(edges) - 1
    bw = pw / max(1, nb)
    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="pbg"/>']
    peak = max((c / (sum(s[1]) or 1) for s in series for c in s[1]), default=1.0)
    for label, counts, col in series:
        total = sum(counts) or 1
        for i, c in enumerate(counts):
            h = (c / total) / (peak or 1) * ph
            body.append(f'<rect x="{left + i * bw:.1f}" y="{top + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                        f'fill="{col}" fill-opacity="0.45"><title>{escape(label)}: {c} rows in '
                        f'[{edges[i]:.3g}, {edges[i + 1]:.3g})</title></rect>')
    body.append(f'<text x="{left}" y="{top + ph + 12}" class="tick">{edges[0]:.3g}</text>'
                f'<text x="{left + pw}" y="{top + ph + 12}" text-anchor="end" class="tick">{edges[-1]:.3g}</text>')
    for i, (label, _, col) in enumerate(series[:8]):
        x = left + i * 90
        body.append(f'<rect x="{x}" y="{height - 12}" width="8" height="8" fill="{col}"/>'
                    f'<text x="{x + 11}" y="{height - 5}" class="legend">{escape(label[:14])}</text>')
    return _frame(width, height, title, body, "histogram")
