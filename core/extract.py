"""Forward passes with hooks -> aggregated activations in the store.

Work is cut to what is needed: no LM head, the forward stops after the last requested layer,
causal sequences are cut after their last target token, and batches are grouped by length.
Rows are written shard by shard, so an interrupted extraction resumes where it stopped and peak
memory does not grow with the dataset.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .align import AlignedExample, AlignmentReport, align_examples
from .examples import BuiltDataset
from .models import LoadedModel, capture
from .paths import cache_dir
from .schema import ExtractionPlan
from .store import FP16_MAX, ActivationStore, store_key


@dataclass
class BatchIndex:
    """Where each output row comes from in a padded batch, precomputed once for every layer."""

    flat_last: torch.Tensor           # [R] flat index (b * T + t) of the last token of each row
    flat_first: torch.Tensor          # [R]
    gather: torch.Tensor              # [R, Lmax] flat indices of each row's tokens (padded with its last)
    mask: torch.Tensor                # [R, Lmax] True where gather is a real token
    mean_matrix: torch.Tensor | None  # sparse [R, B*T] averaging weights (mean only)
    meta: dict[str, np.ndarray]       # row metadata


def _row_spans(ex: AlignedExample, aggregation: str) -> list[tuple[int, int, int, int]]:
    """(target index, first token, last token + 1, label) per output row of one example."""
    if aggregation == "each":
        return [(t, tok, tok + 1, lab) for (t, a, b), lab in zip(ex.targets, ex.labels) for tok in range(a, b)]
    return [(t, a, b, lab) for (t, a, b), lab in zip(ex.targets, ex.labels)]


def build_batch_index(batch: Sequence[AlignedExample], seq_len: int, aggregation: str) -> BatchIndex:
    firsts, lasts, gathers, meta = [], [], [], {k: [] for k in ("example", "target", "label", "token", "position")}
    for b, ex in enumerate(batch):
        for t, a, e, lab in _row_spans(ex, aggregation):
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


def plan_shards(aligned: list[AlignedExample], aggregation: str, shard_rows: int) -> list[list[AlignedExample]]:
    """Sort by length (less padding) and cut into shards of about `shard_rows` rows, deterministically."""
    order = sorted(aligned, key=lambda ex: (len(ex.input_ids), ex.index))
    shards, current, rows = [], [], 0
    for ex in order:
        current.append(ex)
        rows += len(_row_spans(ex, aggregation))
        if rows >= shard_rows:
            shards.append(current)
            current, rows = [], 0
    if current:
        shards.append(current)
    return shards


def pad_batch(batch: Sequence[AlignedExample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq = max(len(ex.input_ids) for ex in batch)
    ids = torch.full((len(batch), seq), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), seq), dtype=torch.long)
    for b, ex in enumerate(batch):  # right padding: positions of real tokens are unchanged
        ids[b, :len(ex.input_ids)] = torch.tensor(ex.input_ids)
        mask[b, :len(ex.input_ids)] = 1
    return ids, mask


def model_fingerprint(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "revision": loaded.revision, "dtype": loaded.dtype}


def dataset_fingerprint(built: BuiltDataset) -> dict[str, Any]:
    return {"name": built.card.name, "version": built.card.version, "content_hash": built.content_hash}


def resolve_layers(loaded: LoadedModel, layers: Sequence[int] | None) -> list[int]:
    from .errors import ConfigError
    if not layers:
        return list(range(loaded.n_layers))
    out = sorted({(loaded.n_layers + layer) if layer < 0 else layer for layer in layers})
    bad = [layer for layer in out if not 0 <= layer < loaded.n_layers]
    if bad:
        raise ConfigError(f"layers {bad} do not exist in {loaded.name} ({loaded.n_layers} layers)",
                          field="--layers", fix=f"use 0..{loaded.n_layers - 1} (negative counts from the end)")
    return out


class ShardBuffers:
    """Preallocated [n_layers, rows, width] arrays of one shard, filled batch by batch.

    fp16 halves memory and disk; a site whose values leave fp16's range is upgraded to fp32
    (SmolLM2's residual reaches ~26,000, Gemma-3's ~100,000: beyond fp16's 65,504).
    """

    def __init__(self, sites: Sequence[str], layers: Sequence[int], widths: dict[str, int], n_rows: int) -> None:
        self.layer_pos = {layer: i for i, layer in enumerate(layers)}
        self.arrays = {site: np.empty((len(layers), n_rows, widths[site]), dtype=np.float16) for site in sites}
        self.pos = 0

    def put(self, site: str, layer: int, rows: torch.Tensor) -> None:
        target = self.arrays[site]
        dst = target[self.layer_pos[layer], self.pos:self.pos + rows.shape[0]]
        if target.dtype == np.float16 and rows.numel():
            low, high = torch.aminmax(rows)  # one vectorised pass; far cheaper than checking the fp16 copy
            if max(-float(low), float(high)) >= FP16_MAX:
                self.arrays[site] = target = target.astype(np.float32)  # out of fp16 range: keep fp32
                dst = target[self.layer_pos[layer], self.pos:self.pos + rows.shape[0]]
        torch.from_numpy(dst).copy_(rows)  # converts to the buffer's dtype while copying

    def advance(self, n_rows: int) -> None:
        self.pos += n_rows


def extract(loaded: LoadedModel, built: BuiltDataset, plan: ExtractionPlan, *,
            store_root: Path | None = None, progress: bool = True,
            stop_after_shards: int | None = None) -> tuple[ActivationStore, AlignmentReport]:
    """Extract (or reuse) the activations of one dataset; returns the finished store and the alignment report.

    `stop_after_shards` interrupts on purpose after that many new shards (for tests of resumption).
    """
    from tqdm.auto import tqdm

    layers = resolve_layers(loaded, plan.layers)
    sites = list(dict.fromkeys(plan.sites))
    parts = {"model": model_fingerprint(loaded), "dataset": dataset_fingerprint(built), "sites": sorted(sites),
             "layers": layers, "aggregation": plan.aggregation, "max_tokens": plan.max_tokens}
    store = ActivationStore(store_root or cache_dir("store"), store_key(parts), parts)
    ds = built.dataset
    aligned, report = align_examples(loaded.tokenizer, ds["text"], ds["targets"], ds["label"],
                                     max_tokens=min(plan.max_tokens, loaded.max_positions), causal=loaded.causal)
    if store.complete:
        return store, report
    if not aligned:
        from .errors import BuildError
        raise BuildError(f"no target of '{built.name}' survived alignment to {loaded.name}'s tokenizer",
                         fix="check the target spans and max_tokens in the card")
    shards = plan_shards(aligned, plan.aggregation, plan.shard_rows)
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    total_tokens = sum(len(ex.input_ids) for shard in shards for ex in shard)
    bar = tqdm(total=total_tokens, desc=f"extract {built.name}", unit="tok", disable=not progress, leave=False)
    started, new_shards = time.perf_counter(), 0
    writer, pending = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer"), None
    try:
        for si, shard in enumerate(shards):
            if store.shard_done(si):
                bar.update(sum(len(ex.input_ids) for ex in shard))
                continue
            if stop_after_shards is not None and new_shards >= stop_after_shards:
                if pending is not None:
                    pending.result()
                raise KeyboardInterrupt(f"stopped on purpose after {new_shards} shards")
            buffers = ShardBuffers(sites, layers, loaded.widths,
                                   sum(len(_row_spans(ex, plan.aggregation)) for ex in shard))
            meta_parts = []
            for lo in range(0, len(shard), plan.batch_size):
                batch = shard[lo:lo + plan.batch_size]
                ids, mask = pad_batch(batch, pad_id)
                index = build_batch_index(batch, ids.shape[1], plan.aggregation)
                # Aggregate inside the hook and copy straight into the shard's fp16 buffer: memory holds
                # one layer's full activations at a time and nothing is stacked or concatenated later.
                capture(loaded, ids, mask, sites, layers,
                        reduce=lambda site, layer, acts: buffers.put(site, layer,
                                                                     aggregate(acts, index, plan.aggregation)))
                buffers.advance(len(index.flat_last))
                meta_parts.append(index.meta)
                bar.update(int(mask.sum()))
            rows = {k: np.concatenate([m[k] for m in meta_parts]) for k in meta_parts[0]}
            if pending is not None:
                pending.result()  # at most one shard in flight, so memory stays bounded
            # Write on a background thread while the next shard's forward passes run.
            pending = writer.submit(store.write_shard, si, buffers.arrays, rows)
            new_shards += 1
        if pending is not None:
            pending.result()
    finally:
        writer.shutdown(wait=True)  # a finished shard is never lost, even on an interrupt
        bar.close()
    store.finalise(len(shards), sites, layers, {
        "alignment": report.as_dict(), "widths_expected": {s: loaded.widths[s] for s in sites},
        "extract_seconds": round(time.perf_counter() - started, 3)})
    return store, report
