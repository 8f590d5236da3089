"""Small inline SVG plots written as strings, for the many little charts of a page (the folded per-layer
k curves of a dataset page, a neuron card's histograms); the figures a page opens with are matplotlib's
(probebank.report.figures). No script, nothing fetched.

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
