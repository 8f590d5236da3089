"""How many test rows each one-vs-rest feature of a built dataset gets: the power its F1 can have.

A feature's test side is the probes' seed-0 split (probebank.data.splits.feature_splits): the
positives on the test side of the card's split, and as many negatives (balanced). An F1 over n
test rows per class moves by about +-1/sqrt(n) from split to split, so telling two entries apart
at 0.05 needs about TARGET_TEST_ROWS rows per class. With a card's test_size t and a per-class
--limit L, a class with L examples puts round(t * L) rows on the test side: `limit_for` gives the
L that reaches a number of test rows. Rows are counted per target, before any tokenizer drops one
at truncation (no model or tokenizer is loaded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from probebank.data.examples import BuiltDataset, row_labels, targets_as_rows
from probebank.data.splits import feature_splits

TARGET_TEST_ROWS = 100


@dataclass
class FeatureRows:
    feature: str
    positives: int   # targets of the class in the build
    test_pos: int    # on the test side of seed 0
    test_neg: int    # negatives kept there (balanced to test_pos where the rest allows)

    @property
    def per_class(self) -> int:
        """Test rows of the smaller class: what bounds the F1's precision."""
        return min(self.test_pos, self.test_neg)


def limit_for(test_rows: int, test_size: float) -> int:
    """The smallest per-class limit whose test side holds `test_rows` rows of a class (rounded as the split)."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    limit = math.ceil(test_rows / test_size)
    while round(test_size * (limit - 1)) >= test_rows:  # ceil can overshoot by one where round() reaches it
        limit -= 1
    return limit


def target_rows(built: BuiltDataset) -> dict[str, np.ndarray]:
    """One row per target (example index, label): what feature_splits reads, without a tokenizer."""
    example, label = [], []
    for i, ex in enumerate(built.dataset):
        for _, lab in zip(targets_as_rows(ex["targets"]), row_labels(ex)):
            example.append(i)
            label.append(lab)
    return {"example": np.asarray(example, dtype=np.int64), "label": np.asarray(label, dtype=np.int64)}


def feature_test_rows(built: BuiltDataset) -> list[FeatureRows]:
    """Per one-vs-rest feature of a classification card, its seed-0 test rows per class (none for regression)."""
    if built.card.labels.type == "regression":
        return []
    rows = target_rows(built)
    counts = np.bincount(rows["label"], minlength=len(built.card.labels.classes))
    index = {name: i for i, name in enumerate(built.card.labels.classes)}
    return [FeatureRows(sp.feature, int(counts[index[sp.feature]]), int(sp.y_test.sum()),
                        int((sp.y_test == 0).sum())) for sp in feature_splits(built, rows, seeds=(0,))]
