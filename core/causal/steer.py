"""Steering, the converse of ablation: add the units' class-mean difference and read a downstream probe.

On the control texts (the other class), `scale` x (mean over the feature's training rows - mean over
the control training rows) is added to each unit at every position. A stored probe of the same
feature at a later layer (its record's units, coefficients and intercept, standardised with the
training rows of its own split, as it was fitted) then reads the steered rows: the flip rate is the
share of control rows it called negative before steering and positive after. Rows are what the
probe was trained on: the card's targets, aggregation and max_tokens.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch

from probebank.causal.ablate import Prefix, UnitEdit, clean_prefix, edits_applied, prefix_reused
from probebank.data.align import AlignedExample
from probebank.data.splits import FeatureSplit
from probebank.extract.aggregate import BatchIndex, aggregate, build_batch_index, pad_batch
from probebank.extract.capture import capture
from probebank.extract.device import model_device
from probebank.extract.loaded import LoadedModel
from probebank.metrics import binary_metrics
from probebank.probing.problem import column_scaling
from probebank.probing.schema import ResultRecord


@dataclass
class DownstreamProbe:
    """A stored sparse probe made usable on new rows: standardisation from its training rows, its weights."""

    record: ResultRecord
    units: np.ndarray
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    reproduced_f1: float  # its test F1 recomputed from the store: equal to the record's when the split is the same

    def decision(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds of the feature for rows [R, width] of the probe's site and layer."""
        z = (np.asarray(rows, dtype=np.float64)[:, self.units] - self.mean) / self.scale
        return z @ self.coef + self.intercept


def downstream_probe(record: ResultRecord, acts: np.ndarray, split: FeatureSplit) -> DownstreamProbe:
    """The probe of `record` on its layer's stored rows `acts`, standardised as the sweep did (column_scaling
    of the float32 training rows of the selected units)."""
    units = np.asarray(record.units, dtype=np.int64)
    X = np.asarray(acts, dtype=np.float32)
    mean, scale = column_scaling(X[split.train][:, units])
    probe = DownstreamProbe(record, units, np.asarray(record.coef, dtype=np.float64), float(record.intercept),
                            mean, scale, 0.0)
    scores = probe.decision(X[split.test])
    probe.reproduced_f1 = float(binary_metrics(split.y_test.astype(bool), scores > 0, scores)["f1"] or 0.0)
    return probe


def class_mean_difference(acts: np.ndarray, split: FeatureSplit, units: Sequence[int]) -> np.ndarray:
    """Mean over the feature's training rows minus mean over the control training rows, per unit."""
    cols = np.asarray(acts, dtype=np.float64)[split.train][:, list(units)]
    y = split.y_train.astype(bool)
    return cols[y].mean(axis=0) - cols[~y].mean(axis=0)


def steer_edit(site: str, layer: int, units: Sequence[int], difference: np.ndarray, scale: float) -> UnitEdit:
    return UnitEdit(site, layer, tuple(int(u) for u in units), torch.tensor(scale * difference, dtype=torch.float32),
                    add=True)


@dataclass
class _RowBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    index: BatchIndex
    prefix: Prefix | None


class RowSet:
    """Aligned texts whose target rows at (site, layer) a downstream probe reads, ready for many steered
    passes (the clean prefix before `edit_layer` is kept once per batch)."""

    def __init__(self, loaded: LoadedModel, aligned: Sequence[AlignedExample], aggregation: str, site: str,
                 layer: int, edit_layer: int, batch_tokens: int) -> None:
        self.loaded, self.aggregation, self.site, self.layer = loaded, aggregation, site, layer
        device = model_device(loaded.model)
        pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
        order = sorted(aligned, key=lambda ex: (len(ex.input_ids), ex.index))
        self.batches: list[_RowBatch] = []
        lo = 0
        while lo < len(order):
            hi = lo + 1
            while hi < len(order) and (hi + 1 - lo) * len(order[hi].input_ids) <= batch_tokens:
                hi += 1
            batch = order[lo:hi]
            ids, mask = pad_batch(batch, pad)
            index = build_batch_index(batch, ids.shape[1], aggregation)
            ids, mask = ids.to(device), mask.to(device)
            self.batches.append(_RowBatch(ids, mask, index, clean_prefix(loaded, ids, mask, edit_layer)))
            lo = hi
        self.labels = np.concatenate([b.index.meta["label"] for b in self.batches])

    def rows(self, edits: Sequence[UnitEdit] = ()) -> np.ndarray:
        """[R, width] rows of the probe's site and layer with `edits` made, in a fixed order (self.labels)."""
        parts = []
        for b in self.batches:
            def reduce(site: str, layer: int, acts: torch.Tensor, b: _RowBatch = b) -> torch.Tensor:
                return aggregate(acts, b.index, self.aggregation).float()
            with ExitStack() as stack:
                stack.enter_context(edits_applied(self.loaded, edits))
                stack.enter_context(prefix_reused(self.loaded, b.prefix))
                got = capture(self.loaded, b.input_ids, b.attention_mask, [self.site], [self.layer], reduce=reduce)
            parts.append(got[(self.site, self.layer)].cpu().numpy().astype(np.float64))
        return np.concatenate(parts)


def flips(clean: np.ndarray, steered: np.ndarray) -> tuple[float | None, float]:
    """(flip rate: share of rows the probe called negative that it calls positive after steering, None when
    it called none negative; mean shift of the log-odds)."""
    eligible = clean <= 0
    rate = float(np.mean(steered[eligible] > 0)) if eligible.any() else None
    return rate, float(np.mean(steered - clean))
