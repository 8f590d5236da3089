"""Batches of aligned examples -> padded token ids, and [batch, seq, width] activations -> rows.

An aggregation rule (each, first, last, mean, max) turns a target's tokens into one row (or one
row per token for `each`); the gather indices of a batch are computed once and reused for every
layer.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from probebank.data.align import AlignedExample


@dataclass
class BatchIndex:
    """Where each output row comes from in a padded batch, precomputed once for every layer."""

    flat_last: torch.Tensor           # [R] flat index (b * T + t) of the last token of each row
    flat_first: torch.Tensor          # [R]
    gather: torch.Tensor              # [R, Lmax] flat indices of each row's tokens (padded with its last)
    mask: torch.Tensor                # [R, Lmax] True where gather is a real token
    mean_matrix: torch.Tensor | None  # sparse [R, B*T] averaging weights (mean only)
    meta: dict[str, np.ndarray]       # row metadata


def row_spans(ex: AlignedExample, aggregation: str) -> list[tuple[int, int, int, int]]:
    """(target index, first token, last token + 1, label) per output row of one example."""
    if aggregation == "each":
        return [(t, tok, tok + 1, lab) for (t, a, b), lab in zip(ex.targets, ex.labels) for tok in range(a, b)]
    return [(t, a, b, lab) for (t, a, b), lab in zip(ex.targets, ex.labels)]


def build_batch_index(batch: Sequence[AlignedExample], seq_len: int, aggregation: str) -> BatchIndex:
    firsts: list[int] = []
    lasts: list[int] = []
    gathers: list[list[int]] = []
    meta: dict[str, list[int]] = {k: [] for k in ("example", "target", "label", "token", "position")}
    for b, ex in enumerate(batch):
        for t, a, e, lab in row_spans(ex, aggregation):
            base = b * seq_len
            firsts.append(base + a)
            lasts.append(base + e - 1)
            gathers.append(list(range(base + a, base + e)))
            meta["example"].append(ex.index)
            meta["target"].append(t)
            meta["label"].append(lab)
            meta["token"].append(ex.input_ids[e - 1])
            meta["position"].append(e - 1)
    width = max(len(g) for g in gathers)
    gather = torch.tensor([g + [g[-1]] * (width - len(g)) for g in gathers], dtype=torch.long)
    mask = torch.tensor([[True] * len(g) + [False] * (width - len(g)) for g in gathers])
    mean_matrix = None
    if aggregation == "mean":
        rows = torch.arange(len(gathers)).repeat_interleave(torch.tensor([len(g) for g in gathers]))
        cols = torch.tensor([i for g in gathers for i in g], dtype=torch.long)
        vals = torch.cat([torch.full((len(g),), 1.0 / len(g)) for g in gathers])
        mean_matrix = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (len(gathers), len(batch) * seq_len),
                                              check_invariants=True)
    return BatchIndex(torch.tensor(lasts), torch.tensor(firsts), gather, mask, mean_matrix,
                      {k: np.asarray(v, dtype=np.int64) for k, v in meta.items()})


def aggregate(acts: torch.Tensor, index: BatchIndex, aggregation: str) -> torch.Tensor:
    """[B, T, D] activations -> [R, D] rows by the card's aggregation rule."""
    flat = acts.reshape(-1, acts.shape[-1])
    if aggregation in ("last", "each"):
        return flat.index_select(0, index.flat_last)
    if aggregation == "first":
        return flat.index_select(0, index.flat_first)
    if aggregation == "mean":
        return torch.sparse.mm(index.mean_matrix, flat.float())
    if aggregation == "max":
        vals = flat[index.gather]                                  # [R, Lmax, D]
        vals = vals.masked_fill(~index.mask.unsqueeze(-1), float("-inf"))
        return vals.amax(dim=1)
    raise ValueError(f"unknown aggregation '{aggregation}'")


def pad_batch(batch: Sequence[AlignedExample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq = max(len(ex.input_ids) for ex in batch)
    ids = torch.full((len(batch), seq), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), seq), dtype=torch.long)
    for b, ex in enumerate(batch):  # right padding: positions of real tokens are unchanged
        ids[b, :len(ex.input_ids)] = torch.tensor(ex.input_ids)
        mask[b, :len(ex.input_ids)] = 1
    return ids, mask
