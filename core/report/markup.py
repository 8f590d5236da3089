"""HTML pieces every report page uses: number cells, sortable tables, and figures with their caption."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape


def num_cell(v: float | None, digits: int = 3) -> str:
    if v is None:
        return '<td class="num" data-sort="">-</td>'
    return f'<td class="num" data-sort="{v:.6f}">{v:.{digits}f}</td>'


def table(headers: Sequence[str], rows: Sequence[str], cls: str = "sortable", caption: str = "") -> str:
    cap = f"<caption class=\"note\">{escape(caption)}</caption>" if caption else ""
    return (f'<table class="{cls}">{cap}<thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in headers)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def omitted(why: str) -> str:
    """The one line a figure with nothing to draw leaves in its place."""
    return f"<p class=\"note omitted\">Not drawn: {escape(why)}.</p>"


def figure(svg_text: str, caption: str) -> str:
    return f"<figure>{svg_text}<figcaption class=\"note\">{escape(caption)}</figcaption></figure>"
