"""A synthetic activation store and dataset for the controls tests: planted features, no model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probebank.data.examples import BuiltDataset
from probebank.data.schema import DatasetCard
from probebank.probing.schema import Provenance


class ArrayStore:
    """Duck-typed ActivationStore: rows() and layer() over in-memory arrays."""

    def __init__(self, layers: dict[int, np.ndarray], labels: np.ndarray, tokens: np.ndarray) -> None:
        self._layers = layers
        n = labels.size
        self._rows = {"example": np.arange(n), "target": np.zeros(n, np.int64), "label": labels.astype(np.int64),
                      "token": tokens.astype(np.int64), "position": np.zeros(n, np.int64)}
        self.key = "synthetic"

    def rows(self) -> dict[str, np.ndarray]:
        return dict(self._rows)

    def layer(self, site: str, layer: int) -> np.ndarray:
        return self._layers[layer]


def card(aggregation: str = "last") -> DatasetCard:
    return DatasetCard(name="planted", version="1.0", category="lexical", description="planted synthetic feature",
                       citation="probebank tests", license="CC0-1.0", builder="none",
                       labels={"type": "binary", "classes": ["off", "on"]}, aggregation=aggregation,
                       split={"test_size": 0.3})


@dataclass
class Planted:
    store: ArrayStore
    built: BuiltDataset
    provenance: Provenance


def planted(n: int = 400, d: int = 32, unit: int = 5, strength: float = 4.0, shuffled: bool = False,
            seed: int = 0, aggregation: str = "last") -> Planted:
    """n rows in groups of 4 with one label per group; unit `unit` of layer 0 carries the label.

    Layer 1 is pure noise. With shuffled=True the stored labels are permuted across groups after
    planting, so the activations carry the original labels and the stored ones are unrelated.
    """
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // 4), 4)
    group_label = rng.integers(0, 2, size=n // 4)
    labels = group_label[groups]
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[:, unit] += strength * labels
    if shuffled:
        labels = rng.permutation(group_label)[groups]
    tokens = rng.integers(0, 50, size=n)
    store = ArrayStore({0: X, 1: rng.standard_normal((n, d)).astype(np.float32)}, labels, tokens)
    built = BuiltDataset(card=card(aggregation), dataset={"group": [f"g{g}" for g in groups]},
                         content_hash="synthetic", path=Path("."), limit=None)
    prov = Provenance(probebank_version="test", model="synthetic", model_revision="0", model_dtype="float32",
                      dataset="planted", dataset_version="1.0", dataset_hash="synthetic")
    return Planted(store, built, prov)
