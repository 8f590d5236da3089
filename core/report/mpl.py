"""matplotlib figures as inline SVG for the report: Agg backend, text kept as text, the same bytes every time.

`Plot` wraps one matplotlib Figure. Every data mark (a bar, a heatmap mesh, a line of dots) is added
through `Plot.mark`, which gives it an SVG id (matplotlib's gid) under the figure's own prefix and,
optionally, a hover tooltip; `Plot.svg()` writes the figure, drops the XML prologue and metadata, and
puts `class="plot KIND"` and `data-marks="N"` (how many data values were drawn) on the <svg>, so a
browser test can check that each plot shows what it claims to.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from typing import Any

# Without a display the Agg canvas is the one matplotlib picks; matplotlib.figure.Figure never touches pyplot
RC = {
    "svg.fonttype": "none",            # text stays <text>: selectable, searchable, small
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # the font matplotlib measures text with (it ships it); then the browser's
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "svg.image_inline": True,
}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
PASS_COLOUR, FAIL_COLOUR, NULL_COLOUR = "#1b7f3a", "#b3261e", "#9a9a9a"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@contextmanager
def _rc(salt: str) -> Iterator[None]:
    import matplotlib

    # the salt makes the ids matplotlib derives (clip paths, markers) the same on every run and distinct per figure
    settings: Any = {**RC, "svg.hashsalt": salt}  # matplotlib's stubs type the keys as a Literal of rc names
    with matplotlib.rc_context(settings):
        yield


# Geometry attributes: matplotlib writes 6 decimals of a point (1/72 inch) and a line per path command;
# two decimals and one line each are the same picture in about half the bytes. Text and tooltips are untouched.
_GEOMETRY = re.compile(r'\b(d|x|y|x1|x2|y1|y2|width|height|transform|viewBox)="([^"]*)"')
_DECIMALS = re.compile(r"(\d\.\d\d)\d+")


def _compact(m: re.Match[str]) -> str:
    value = _DECIMALS.sub(r"\1", " ".join(m.group(2).split()))
    return f'{m.group(1)}="{value}"'


class Plot:
    """One figure of the report: build it with `.fig` / `.axes`, register data marks with `.mark`, write `.svg()`."""

    def __init__(self, kind: str, title: str, width: float, height: float, nrows: int = 1, ncols: int = 1,
                 key: str = "", **subplots: Any) -> None:
        """`key`: anything that tells apart two figures of one page with the same kind and title."""
        from matplotlib.figure import Figure

        self.kind, self.title = kind, title
        self.prefix = f"{kind}-{hashlib.sha1(f'{title}|{key}'.encode()).hexdigest()[:10]}"
        self.n_marks = 0
        self._tips: dict[str, str] = {}
        self._count = 0
        with _rc(self.prefix):
            self.fig = Figure(figsize=(width, height), layout="constrained")
            axes = self.fig.subplots(nrows, ncols, squeeze=False, **subplots)
        self.axes = [ax for row in axes for ax in row]

    def mark(self, artist: Any, values: int, tip: str | None = None) -> Any:
        """Name a data artist (`values`: how many data values it draws) and give it a tooltip."""
        gid = f"{self.prefix}-m{self._count}"
        self._count += 1
        artist.set_gid(gid)
        self.n_marks += values
        if tip:
            self._tips[gid] = tip
        return artist

    def svg(self) -> str:
        with _rc(self.prefix):
            buf = io.StringIO()
            self.fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                          "Type": None})
        text = buf.getvalue()
        text = text[text.index("<svg"):]
        text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
        # matplotlib names every group per figure (figure_1, axes_1, ...): nothing refers to them and they would
        # repeat between the figures of a page, so only the data marks keep an id
        text = re.sub(rf'<g id="(?!{re.escape(self.prefix)}-m)[^"]+"', "<g", text)
        text = _GEOMETRY.sub(_compact, text)
        text = re.sub(r"\n\s+", "\n", text)  # matplotlib's indentation: a third of the bytes, no content
        text = re.sub(r' transform="rotate\(-?0 [0-9. -]+\)"', "", text)  # the no-op rotation of upright labels
        for gid, tip in self._tips.items():  # hover text on the mark (a <title> child of its group)
            text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
        head = (f'<svg class="plot {self.kind}" data-marks="{self.n_marks}" role="img" '
                f'aria-label="{escape(self.title)}"')
        return head + text[len("<svg"):].rstrip() + "\n"
