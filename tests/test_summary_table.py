"""The terminal summary: readable at 80, 100 and 200 columns, grouped by dataset, columns explained once."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from probebank.errors import ConfigError
from probebank.results.summary_table import F1_TABLE, explain, pick_columns, render_table

LONG_DATASET = "position-news-word-index-value"  # the bank's longest name (30 characters)


def _row(dataset: str, feature: str, layer: int, unit: int, f1: float, method: str = "mean_diff") -> dict:
    row: dict = {"model": "smollm2-135m", "dataset": dataset, "feature": feature, "site": "mlp", "basis": "identity",
                 "method": method, "best_layer": layer, "seeds": 3, "units_k1": [unit], "jaccard": 0.41,
                 "k1_unit_changes": True, "layer_by_train": layer}
    for key, col in F1_TABLE.items():
        if col.kind == "f":
            row[key], row[key + "_ci"] = f1, [f1 - 0.0123, f1 + 0.0123]
        elif col.kind == "k":
            row[key], row[key + "_ci"] = 4.0, None
    return row


ROWS = [_row(LONG_DATASET, "discrimination_toxicity", 29, 1535, 0.8765),
        _row(LONG_DATASET, "other", 3, 7, 0.5),
        _row("language-udhr", "fra", 12, 345, 0.9712)]


def _text(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 200])
def test_identifying_columns_are_readable_at_every_width(width: int) -> None:
    text = _text(render_table(ROWS, title="smollm2-135m"), width)
    lines = text.splitlines()
    assert "…" not in text  # no cell is cut to an ellipsis
    assert max(len(line.rstrip()) for line in lines) <= width
    for r in ROWS:  # dataset header, feature, layer and neuron each whole on one line
        assert any(r["dataset"] in line for line in lines)
        row_line = next(line for line in lines if r["feature"] in line.split())
        assert str(r["best_layer"]) in row_line.split() and str(r["units_k1"][0]) in row_line.split()
    # one header row per dataset, its features below it
    assert [line.strip() for line in lines].count("language-udhr") == 1
    assert sum(LONG_DATASET == line.strip() for line in lines) == 1


def _ends(line: str, token: str) -> list[int]:
    return [m.end() for m in re.finditer(re.escape(token), line)]


@pytest.mark.parametrize("width", [80, 100, 200])
def test_compact_view_puts_each_interval_under_its_mean(width: int) -> None:
    text = _text(render_table(ROWS), width)
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if "discrimination_toxicity" in line)
    # F1 k=1, k=16, dense and selectivity on the feature's own line, each interval right under its mean
    assert lines[i].split()[2:6] == ["0.88"] * 4 and "1535" in lines[i]
    assert lines[i + 1].split() == [".86–.89"] * 4
    assert _ends(lines[i], "0.88") == _ends(lines[i + 1], ".86–.89")
    assert "rotation" not in text  # the rest is behind --wide / --columns


def test_an_interval_cut_by_the_range_shows_both_its_ends() -> None:
    row = _row("language-udhr", "fra", 12, 345, 0.99)
    row["f1_k1_ci"] = [0.95, 1.0]  # a bootstrap interval near 1 is not symmetric
    lines = _text(render_table([row]), 100).splitlines()
    i = next(i for i, line in enumerate(lines) if "fra" in line.split())
    assert lines[i + 1].split()[0] == ".95–1.00"


def test_at_80_columns_values_wrap_instead_of_being_cut() -> None:
    lines = _text(render_table(ROWS), 80).splitlines()
    i = next(i for i, line in enumerate(lines) if "discrimination_toxicity" in line)
    assert "0.88" in lines[i] and ".86–.89" in lines[i] + lines[i + 1]


def test_column_meanings_are_printed_once_under_the_table() -> None:
    text = _text(render_table(ROWS), 200)
    notes = text[text.index("means over 3 seed(s)"):]
    assert "shuffled labels" in notes and "F1 k=16" in notes and "neuron k=1" in notes
    assert text.count("shuffled labels") == 1
    wide = _text(render_table(ROWS, wide=True), 200)
    assert "k1 changes" in wide and "the k=1 unit is not the same unit in every seed" in wide
    assert "rotation" in wide and ".86–.89" not in wide.split("means over")[0]  # wide: means only


def test_columns_option_picks_columns_and_names_a_typo() -> None:
    assert [c.key for c in pick_columns(["rotation_k1", "units_k1"])] == ["rotation_k1", "units_k1"]
    text = _text(render_table(ROWS, columns=["rotation_k1", "units_k1"]), 100)
    assert "rotation" in text and "F1 dense" not in text
    with pytest.raises(ConfigError, match="rotation_k1"):
        pick_columns(["rotaton_k1"])
    assert "k1 changes" in explain() and "r2_k1" in explain()


def test_several_methods_get_a_method_column() -> None:
    rows = ROWS + [_row("language-udhr", "fra", 10, 9, 0.9, method="f_stat")]
    text = _text(render_table(rows), 100)
    line = next(line for line in text.splitlines() if "f_stat" in line)
    assert "fra" in line and "10" in line.split()


def test_regression_rows_get_their_own_compact_r2_table() -> None:
    from probebank.results.summary_table import R2_TABLE

    value = {"model": "smollm2-135m", "dataset": "position-news-word-index-value", "feature": "log_word_index",
             "site": "mlp", "basis": "identity", "method": "mean_diff", "best_layer": 3, "seeds": 3,
             "units_k1": [77], "metric": "r2"}
    for key, col in R2_TABLE.items():
        if col.kind == "f":
            value[key], value[key + "_ci"] = 0.4321, [0.42, 0.44]
    text = _text(render_table([*ROWS, value], title="run"), 100)
    assert "run (regression: R2)" in text and "…" not in text
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if "log_word_index" in line)
    assert lines[i].split().count("0.43") == 4 and "77" in lines[i].split()
    assert lines[i + 1].split() == [".42–.44"] * 4
    assert "test R2 with the top 16 units" in text and "test F1 with the top 16 units" in text
