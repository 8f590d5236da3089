"""Test rows per class at a limit (probebank.data.power): what the bank suite's limit is sized from."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GOOD_CARD

from probebank.data.examples import build_dataset
from probebank.data.power import TARGET_TEST_ROWS, feature_test_rows, limit_for
from probebank.data.registry import load_catalog, load_registry_file
from probebank.plugins import get_registered

PLUGIN = '''
from probebank.hookspecs import hookimpl


def build(ctx):
    for i in range(500):  # 500 texts per class, one group each
        for w in (f"stone{i}", f"Berlin{i}"):
            text = f"we saw {w} today"
            yield {"text": text, "targets": [(7, 7 + len(w))], "label": "capitalised" if w[0].isupper() else "lower",
                   "group": w}


@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''


def test_limit_for_is_the_smallest_limit_that_reaches_the_test_rows() -> None:
    assert limit_for(100, 0.3) == 332 and round(0.3 * 332) == 100 and round(0.3 * 331) == 99
    assert limit_for(12, 0.3) == 39
    assert limit_for(100, 0.5) == 199  # the split rounds half to even, as Python does: round(99.5) == 100


def test_the_bank_limit_gives_every_feature_100_test_rows_per_class_where_the_data_allows(bank) -> None:
    folder: Path = bank(card=GOOD_CARD.format(name="toy-words", builder="toy-words").replace("0.5", "0.3"),
                        plugin=PLUGIN)
    entry = load_catalog([folder]).get("toy-words")
    builders = get_registered([folder]).builders
    suite_limit = load_registry_file(Path(__file__).resolve().parents[1] / "registry.yaml").suite("bank").limit
    assert suite_limit is not None and suite_limit >= limit_for(TARGET_TEST_ROWS, 0.3)
    at = {limit: feature_test_rows(build_dataset(entry, builders=builders, limit=limit, progress=False))
          for limit in (40, suite_limit, None)}
    assert [(f.test_pos, f.test_neg) for f in at[40]] == [(12, 12)]  # the old bank limit: 12 rows per class
    (feature,) = at[suite_limit]
    assert feature.feature == "capitalised" and feature.positives == suite_limit
    assert feature.per_class >= TARGET_TEST_ROWS
    assert at[None][0].per_class == 150  # the full build: 0.3 x 500


def test_regression_cards_have_no_classes_to_count(bank) -> None:
    card = GOOD_CARD.format(name="toy-words", builder="toy-words").replace(
        "type: binary\n  classes: [lower, capitalised]", "type: regression")
    plugin = PLUGIN.replace('"label": "capitalised" if w[0].isupper() else "lower"', '"label": float(len(w))')
    folder = bank(card=card, plugin=plugin)
    built = build_dataset(load_catalog([folder]).get("toy-words"), builders=get_registered([folder]).builders,
                          progress=False)
    assert feature_test_rows(built) == []


@pytest.mark.parametrize("bad", [0.0, 1.0])
def test_limit_for_needs_a_test_share_inside_0_1(bad: float) -> None:
    with pytest.raises(ValueError, match="test_size"):
        limit_for(100, bad)
