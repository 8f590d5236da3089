"""The static HTML report: self-contained pages, working links, and a real headless Chromium that
loads them from disk, sorts a table by clicking and takes a screenshot."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from report_fixtures import sweep, tiny_run, write_folder  # noqa: F401  (tiny_run is a fixture)

from probebank.causal.record import CAUSAL_FILE, CausalRecord, CausalSettings, NullSummary, add_causal
from probebank.probing.schema import Provenance
from probebank.report import write_site
from probebank.results.findings_io import write_findings
from probebank.results.judge import Finding
from probebank.results.leaderboard import Leaderboard, build_leaderboard

GATES = {"factual-country-continent": {"class_balance": {"passed": True, "value": 1.0, "threshold": 0.1},
                                       "token_identity": {"passed": False, "value": 0.95, "waiver": "by design"},
                                       "alignment": {"passed": False, "value": 0.5, "threshold": "<= 5%",
                                                     "detail": "3 of 6 targets (3 partial, 0 no token)",
                                                     "examples": ["example 'x-1' target 0: \"we saw c⟦at ⟧<b>\""]}}}


def causal_record(model: str, feature: str, observed: float, p_value: float, key: str) -> CausalRecord:
    """A causal check of `model` (the numbers the index's effects figure draws; the rest is plausible filler)."""
    null = NullSummary(observed=observed, mean=0.01, sd=0.02, p_value=p_value, alternative="greater", draws=10,
                       values=[0.01] * 10)
    prov = Provenance(probebank_version="t", model=model, model_revision="rev0", model_dtype="float32",
                      dataset="factual-country-continent", dataset_version="1.0", dataset_hash="h-factual-country-continent")
    return CausalRecord(key=key, provenance=prov, feature=feature, site="mlp", layer=3, units=[7],
                        source_method="mean_diff", source_k=1, source_seed=0, source_f1=0.9,
                        settings=CausalSettings(draws=10), ablation_values=[0.5], n_feature_texts=4,
                        n_control_texts=4, clean_loss_feature=2.0, clean_loss_control=2.1,
                        ablated_loss_feature=2.3, ablated_loss_control=2.1, loss=null,
                        relevant=null.model_copy(update={"alternative": "less", "observed": -0.3}),
                        variance_ratio=[0.9, 1.0, 1.1])


FINDINGS = [Finding("single_neurons", "mean k=1 F1 over 12 languages >= 0.75", "standard", True, 0.91, (0.85, 0.95),
                    "mean 0.910", threshold=0.75, unit="k=1 F1"),
            Finding("neuron_basis", "k=1 F1 neuron > rotation", "standard", False, 0.02, (-0.01, 0.05), "p = 0.2",
                    threshold=0.0, unit="F1 difference"),
            Finding("selectivity", "real >= 0.3", "standard", True, None, None, "real 0.52")]


@pytest.fixture(scope="module")
def leaderboard(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Leaderboard:
    """The real tiny run plus a synthetic second model (with controls, a random-rotation control, replicate
    findings and two causal checks, without a store)."""
    other = tmp_path_factory.mktemp("other")
    recs = []
    for ds, feats in (("factual-country-continent", ["Africa", "Asia", "Europe", "North America", "Oceania",
                                                     "South America"]), ("safety-harmful-requests", ["harmful"])):
        for i, feat in enumerate(feats):
            recs += sweep("synthetic-b", ds, feat, lambda layer, k, i=i: min(1.0, 0.3 + 0.1 * i + 0.05 * layer),
                          layers=(0, 1, 2, 3), selectivity=0.1 + 0.02 * i, rotation=0.2 + 0.05 * i, width=128)
    write_folder(other, recs)
    write_findings(other, "synthetic-b", "language-udhr, layers 0-3, seeds 0-2, f_stat", FINDINGS)
    add_causal(other / CAUSAL_FILE, [causal_record("synthetic-b", "Africa", 0.2, 1 / 11, "c1"),
                                     causal_record("synthetic-b", "Asia", 0.005, 0.6, "c2")])
    return build_leaderboard([tiny_run, other], by="model")


@pytest.fixture(scope="module")
def site(leaderboard: Leaderboard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    write_site(leaderboard, out, gates=GATES)
    return out


def test_pages_are_self_contained_and_links_resolve(site: Path) -> None:
    pages = sorted(site.glob("*.html"))
    names = {p.name for p in pages}
    assert {"index.html", "dataset-factual-country-continent.html", "dataset-safety-harmful-requests.html"} <= names
    assert any(n.startswith("neuron-tiny-llama-mlp-") for n in names)
    for page in pages:
        html = page.read_text()
        # nothing is fetched: no external URL in any src/href, no <link> or external script
        assert not re.search(r'(src|href)="(https?:)?//', html), page.name
        assert "<link" not in html and not re.search(r"<script[^>]+src=", html)
        for target in re.findall(r'href="(?!data:)([^"#]+)"', html):  # data: URIs are inline (a colour bar)
            assert (site / target).is_file(), f"{page.name} links to missing {target}"
    index = (site / "index.html").read_text()
    assert "tiny-llama" in index and "synthetic-b" in index
    # the index opens with its figures (heatmap, neurons vs rotation, findings, causal effects), tables after them
    positions = [index.index(f'class="plot {kind}"') for kind in ("heatmap", "paired", "findings", "effects")]
    assert positions == sorted(positions) and positions[-1] < index.index("<h2>Rankings per category")
    assert 'class="plot barchart"' in index and 'class="plot scatter"' in index and index.count("Not drawn") == 1
    # one finding has no estimate: listed in one line, and every finding is in the folded table
    assert "no estimate to draw for synthetic-b: selectivity" in index and "real 0.52" in index
    ds = (site / "dataset-factual-country-continent.html").read_text()
    for kind in ("kcurve", "heatmap", "barchart", "linechart"):
        assert f'class="plot {kind}"' in ds
    # plots first; the card is folded below them
    card = ds.index('<details class="card">')
    assert ds.index('class="plot kcurve"') < ds.index("<table") < card < ds.index('<dl class="card">')
    assert "selectivity (F1 - shuffled-label F1)" in ds  # synthetic-b carries controls, tiny-llama shows '-'
    assert '<td class="waived">waived</td>' in ds and '<td class="pass">pass</td>' in ds and "by design" in ds
    assert "No gate results were given" in (site / "dataset-safety-harmful-requests.html").read_text()
    assert "Tokenizer alignment" in ds and "off token boundaries" in ds  # from the tiny run's alignment.json
    # a failing alignment gate quotes its targets, escaped
    assert "<code>example &#x27;x-1&#x27; target 0: &quot;we saw c⟦at ⟧&lt;b&gt;&quot;</code>" in ds
    neuron = (site / next(n for n in names if n.startswith("neuron-tiny-llama"))).read_text()
    assert "<mark>" in neuron and 'class="plot histogram"' in neuron


# For each matplotlib plot on the page: its kind, the data values it says it drew (data-marks), how many of the
# shapes inside its data marks have a size on screen, and the plot's own rendered width.
PLOTS_SHOWN = """[...document.querySelectorAll('svg.plot[data-marks]')].map(s => {
    const marks = [...s.querySelectorAll('g[id]')].filter(g => /-m[0-9]+$/.test(g.id));
    const shown = marks.flatMap(g => [...g.querySelectorAll('path, use')]).filter(e => {
        const r = e.getBoundingClientRect(); return r.width > 0 || r.height > 0; });
    return [s.classList[1], Number(s.dataset.marks), shown.length, s.getBoundingClientRect().width]; })"""


def plots_shown(browser) -> list[list]:
    """Every plot shows data: it drew at least one value, and each value it drew has a visible shape."""
    plots = browser.eval(PLOTS_SHOWN)
    assert plots
    for kind, marks, shown, width in plots:
        assert marks >= 1 and shown >= marks, (kind, marks, shown)
        assert width > 150, (kind, width)  # laid out, not collapsed
    return plots


def keep_screenshot(browser, path: Path) -> None:
    data = browser.screenshot(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("PROBEBANK_SCREENSHOTS")
    if keep:  # CI or a developer can keep the pictures to look at
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(keep) / path.name)


def test_report_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    from headless import Browser

    browser = Browser()
    try:
        browser.open(site / "index.html")
        assert browser.console_errors() == []
        assert browser.eval("document.querySelectorAll('svg.plot').length") >= 2
        # per-dataset table: find the "F1 k=1" column, click its header twice (ascending, then descending)
        col = browser.eval("""(() => { const t = document.querySelectorAll('table.sortable')[document
            .querySelectorAll('table.sortable').length - 1]; t.id = 'per-dataset';
            return [...t.tHead.rows[0].cells].findIndex(th => th.textContent === 'F1 k=1'); })()""")
        assert col >= 0
        values = f"[...document.querySelectorAll('#per-dataset tbody tr')].map(r => Number(r.cells[{col}].dataset.sort))"
        before = browser.eval(values)
        assert len(before) == 4 and before != sorted(before)
        browser.click(f"#per-dataset thead th:nth-child({col + 1})")
        assert browser.eval(values) == sorted(before)
        browser.click(f"#per-dataset thead th:nth-child({col + 1})")
        assert browser.eval(values) == sorted(before, reverse=True)
        assert browser.eval(f"document.querySelector('#per-dataset thead th:nth-child({col + 1})')"
                            ".getAttribute('aria-sort')") == "descending"

        index_plots = plots_shown(browser)
        assert {"heatmap", "paired", "findings", "effects", "barchart", "scatter"} <= {p[0] for p in index_plots}
        assert [p for p in index_plots if p[0] == "effects"][0][1] == 4  # two checks: an observed dot and a null each
        keep_screenshot(browser, tmp_path / "index.png")

        browser.open(site / "dataset-factual-country-continent.html")
        assert browser.console_errors() == []
        assert {"kcurve", "heatmap", "barchart"} <= {p[0] for p in plots_shown(browser)}
        # the folded per-layer charts are there, hidden until opened
        assert browser.eval("document.querySelectorAll('details svg.plot.linechart').length") >= 1
        keep_screenshot(browser, tmp_path / "dataset-page.png")

        neuron = next(site.glob("neuron-tiny-llama-*.html"))
        browser.open(neuron)
        assert browser.console_errors() == []
        assert browser.eval("document.querySelectorAll('mark').length") >= 1
    finally:
        browser.close()


def test_console_errors_are_caught(site: Path, tmp_path: Path) -> None:
    """The browser check itself can fail: a page with a script error is reported."""
    from headless import Browser

    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    browser = Browser()
    try:
        browser.open(bad)
        errors = browser.console_errors()
        assert errors and "undefinedFunction" in " ".join(errors)
    finally:
        browser.close()


def test_bar_chart_with_all_values_equal_to_the_axis_bound() -> None:
    """Selectivity bars follow the data: a dataset whose selectivities are all 0 must still render its bars."""
    from probebank.report import figures

    out = figures.grouped_bars(["a", "b"], [("sel", [0.0, 0.0], "#333")], title="selectivity", xlabel="x",
                               lo=None, hi=None)
    assert out.startswith('<svg class="plot barchart" data-marks="2"') and "nan" not in out


def test_figures_are_deterministic_text_svg(site: Path, leaderboard: Leaderboard, tmp_path: Path) -> None:
    """The same results give the same bytes; text stays text; nothing dated or fetched in the SVG."""
    again = tmp_path / "again"
    write_site(leaderboard, again, gates=GATES)
    for name in ("index.html", "dataset-factual-country-continent.html"):
        assert (again / name).read_text() == (site / name).read_text(), name
    index = (site / "index.html").read_text()
    assert "<metadata>" not in index and "<?xml" not in index and "dc:date" not in index
    assert "<text" in index and "k=1 F1 by layer and feature</text>" in index  # svg.fonttype none: no glyph paths
    ids = re.findall(r'id="([^"]+)"', index)
    assert len(ids) == len(set(ids)), "ids repeat between the inline figures of a page"


def test_one_model_report_has_no_ranking_tables_and_says_what_it_omits(tiny_run: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))  # no causal checks kept from other tests
    lb = build_leaderboard([tiny_run], by="model")
    write_site(lb, tmp_path / "site", neuron_cards=False)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Rankings per category" not in index and "Borda" not in index
    assert "One entry (tiny-llama): no rankings" in index
    # no findings.json and no causal checks of this model: one line each, no empty frame
    assert 'class="plot findings"' not in index and "Not drawn: no results folder has a findings.json" in index
    assert 'class="plot effects"' not in index and "Not drawn: no causal check of these models" in index
    assert 'class="plot heatmap"' in index and 'class="plot paired"' in index  # the tiny run has the rotation control


def test_report_shows_progress_over_its_pages(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lb = build_leaderboard([tiny_run], by="model")
    pages = write_site(lb, tmp_path / "site", progress=True)
    err = capsys.readouterr().err
    assert "report pages" in err and f"0/{len(pages)} " in err  # one bar over every page written
    write_site(lb, tmp_path / "quiet", progress=False)
    assert "report pages" not in capsys.readouterr().err


def test_index_figure_numbers(leaderboard: Leaderboard) -> None:
    """What the index draws, against hand-computed figures of the synthetic model (F1 = 0.3 + 0.1 i + 0.05 layer,
    rotation F1 = 0.2 + 0.05 i, best layer 3: picked on test F1, its records have no validation F1)."""
    from probebank.report import figure_data

    picks = figure_data.picked_methods(leaderboard)
    assert picks["synthetic-b"] == ("mean_diff", "test") and picks["tiny-llama"][1] == "validation"
    rows = dict(figure_data.rotation_rows(leaderboard))["synthetic-b (mean_diff)"]
    factual = next(r for r in rows if r.label == "factual")
    assert factual.n == 6
    assert factual.neuron[0] == pytest.approx(0.7) and factual.rotation[0] == pytest.approx(0.325)
    assert factual.rotation[1] < 0.325 < factual.rotation[2]  # a 95% interval over the six features
    panels, word = figure_data.heat_panels(leaderboard)
    assert word == "feature" and len(panels) == 2
    synth = next(p for p in panels if p.label.startswith("synthetic-b"))
    assert synth.rows == ["0", "1", "2", "3"] and synth.values[3][synth.cols.index("Asia (factual-country-continent)")] \
        == pytest.approx(0.55)
    # more features than columns allowed: a column per category, the mean of its features at each layer
    panels, word = figure_data.heat_panels(leaderboard, max_columns=3)
    synth = next(p for p in panels if p.label.startswith("synthetic-b"))
    assert word == "category" and synth.cols == ["factual", "safety"]
    assert synth.values[0][0] == pytest.approx(0.55)  # layer 0: mean of 0.3 .. 0.8


def test_one_ablation_found_by_two_methods_is_one_causal_row_naming_both() -> None:
    """The same unit checked twice (found by f_stat and by mean_diff) is one row of the effects figure, labelled
    with both methods; a check of another unit keeps its own row."""
    from probebank.report import figure_data

    twice = causal_record("m", "Africa", 0.2, 1 / 11, "c1")
    again = twice.model_copy(update={"key": "c2", "source_method": "f_stat"})
    other = causal_record("m", "Africa", 0.05, 0.5, "c3").model_copy(update={"units": [9]})
    rows = figure_data.effect_rows([twice, again, other], {"m"})
    assert [r.label for r in rows] == ["Africa L3 #7 (factual-country-continent; f_stat + mean_diff)",
                                       "Africa L3 #9 (factual-country-continent; mean_diff)"]
    assert rows[0].observed == pytest.approx(0.2) and rows[0].p_value == pytest.approx(1 / 11)


def test_each_findings_panel_names_its_protocol(tmp_path: Path) -> None:
    """A findings file judged under two protocols gives one panel per protocol, and each panel's title says which."""
    from probebank.report import sections
    from probebank.results.findings_io import folder_findings

    paper = [Finding("single_neurons", "mean k=1 F1 >= 0.75", "paper", True, 0.99, (0.98, 1.0), "mean 0.990",
                     threshold=0.75, unit="k=1 F1")]
    write_findings(tmp_path, "m", "findings.yaml v1", FINDINGS + paper)
    html = sections.findings_html(folder_findings([tmp_path]))
    assert "replicate findings: m, standard protocol" in html and "replicate findings: m, paper protocol" in html
    assert html.count('class="plot findings"') == 2
