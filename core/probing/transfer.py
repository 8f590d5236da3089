"""Fit on one dataset, score on another: the rows behind `probebank run --test-on NAME`.

A card may name held-out test sets (`test_sets: {ood: other-dataset}`), datasets with the same
classes whose rows were never seen in training, e.g. the out-of-distribution variants of the
sae-probes tasks. Probing then keeps each seed's training side of the card's own split and scores
every probe on all rows of the test set instead of the split's test side (one-vs-rest features
balanced as usual). `Joined` puts the two stores side by side so the probing code reads them as one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probebank.data.examples import BuiltDataset
from probebank.probing.problem import StoredRows


@dataclass
class HeldOut:
    """A test set's stored rows and its built dataset (`name` as `--test-on` gave it); `digest`: the checksum
    of the stored rows, which cached probe records are tied to."""

    name: str
    store: StoredRows
    built: BuiltDataset
    digest: str = ""


class Joined:
    """The task's rows followed by the held-out set's rows, as one store (rows and layers concatenated)."""

    def __init__(self, store: StoredRows, built: BuiltDataset, held: HeldOut) -> None:
        self.key = f"{store.key}+{held.store.key}"
        self._parts = (store, held.store)
        own = store.rows()
        self.n_fit = int(own["label"].size)
        self._groups = np.concatenate([  # a test set's group never equals one of the task's
            np.asarray(built.dataset["group"], dtype=object)[own["example"]],
            np.asarray([f"{held.built.name}:{g}" for g in held.built.dataset["group"]],
                       dtype=object)[held.store.rows()["example"]]])

    def rows(self) -> dict[str, np.ndarray]:
        own, other = (part.rows() for part in self._parts)
        return {name: np.concatenate([own[name], other[name]]) for name in own}

    def layer(self, site: str, layer: int) -> np.ndarray:
        return np.concatenate([np.asarray(part.layer(site, layer)) for part in self._parts])

    def groups(self) -> np.ndarray:
        """The `group` of every joined row."""
        return self._groups

    def scored(self) -> np.ndarray:
        """Indices of the held-out set's rows: the rows every probe is scored on."""
        return np.arange(self.n_fit, self._groups.size)
