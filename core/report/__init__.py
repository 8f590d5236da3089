"""The static HTML report: pages that open from disk (file://) with no server and no network.

`write_site(leaderboard, out)` writes index.html, one page per dataset and one neuron card per
k=1 neuron. Figures are matplotlib's, inlined as SVG (figures.py, mpl.py; their numbers: figure_data.py);
small folded charts are hand-written SVG (svg.py). The only script is the small sortable table script in
assets/, inlined into every page together with the stylesheet.
"""
from probebank.report.html import write_site

__all__ = ["write_site"]
