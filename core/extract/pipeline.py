"""Forward passes with hooks -> aggregated activations in the store.

Work is cut to what is needed: no LM head, the forward stops after the last requested layer,
causal sequences are cut after their last target token, and batches are grouped by length.
Rows are written shard by shard, so an interrupted extraction resumes where it stopped and peak
memory does not grow with the dataset.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from probebank.cache.locks import entry_lock
from probebank.data.align import AlignedExample, AlignmentReport, align_examples
from probebank.data.examples import BuiltDataset
from probebank.errors import BuildError, ConfigError
from probebank.extract.aggregate import row_spans
from probebank.extract.device import model_device
from probebank.extract.loaded import LoadedModel
from probebank.extract.plan import ExtractionPlan
from probebank.extract.shard import fill_shard
from probebank.extract.store import ActivationStore, store_key
from probebank.paths import cache_dir
from probebank.version import __version__


def plan_shards(aligned: list[AlignedExample], aggregation: str, shard_rows: int,
                shard_tokens: int | None = None) -> list[list[AlignedExample]]:
    """Sort by length (less padding) and cut into shards of about `shard_tokens` tokens and at most about
    `shard_rows` rows, deterministically."""
    order = sorted(aligned, key=lambda ex: (len(ex.input_ids), ex.index))
    shards, current, rows, tokens = [], [], 0, 0
    for ex in order:
        current.append(ex)
        rows += len(row_spans(ex, aggregation))
        tokens += len(ex.input_ids)
        if rows >= shard_rows or (shard_tokens is not None and tokens >= shard_tokens):
            shards.append(current)
            current, rows, tokens = [], 0, 0
    if current:
        shards.append(current)
    return shards


def library_versions() -> dict[str, str]:
    """The versions that decide the numbers of a forward pass (kept with each store and record)."""
    import transformers

    return {"probebank": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": str(torch.version.cuda or "none")}


def model_fingerprint(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "revision": loaded.revision, "dtype": loaded.dtype}


def dataset_fingerprint(built: BuiltDataset) -> dict[str, Any]:
    return {"name": built.card.name, "version": built.card.version, "content_hash": built.content_hash}


def resolve_layers(loaded: LoadedModel, layers: Sequence[int] | None) -> list[int]:
    if not layers:
        return list(range(loaded.n_layers))
    out = sorted({(loaded.n_layers + layer) if layer < 0 else layer for layer in layers})
    bad = [layer for layer in out if not 0 <= layer < loaded.n_layers]
    if bad:
        raise ConfigError(f"layers {bad} do not exist in {loaded.name} ({loaded.n_layers} layers)",
                          field="--layers", fix=f"use 0..{loaded.n_layers - 1} (negative counts from the end)")
    return out


def extract(loaded: LoadedModel, built: BuiltDataset, plan: ExtractionPlan, *,
            store_root: Path | None = None, progress: bool = True,
            stop_after_shards: int | None = None) -> tuple[ActivationStore, AlignmentReport]:
    """Extract (or reuse) the activations of one dataset; returns the finished store and the alignment report.

    `stop_after_shards` interrupts on purpose after that many new shards (for tests of resumption).
    """
    if (plan.model, plan.dataset) != (loaded.name, built.name):
        raise ConfigError(f"the plan is for {plan.model} on {plan.dataset}, not {loaded.name} on {built.name}",
                          field="plan", fix="make the ExtractionPlan with model=loaded.name and dataset=built.name")
    layers = resolve_layers(loaded, plan.layers)
    sites = list(dict.fromkeys(plan.sites))
    parts = {"model": model_fingerprint(loaded), "dataset": dataset_fingerprint(built), "sites": sorted(sites),
             "layers": layers, "aggregation": plan.aggregation, "max_tokens": plan.max_tokens,
             "store_dtype": plan.store_dtype}
    store = ActivationStore(store_root or cache_dir("store"), store_key(parts), parts)
    if store.complete and "alignment" in store.meta:  # its report was made by the same tokenizer: no re-tokenising
        store.reused_shards = store.n_shards = len(store.meta["shard_sizes"])
        return store, AlignmentReport.from_dict(store.meta["alignment"])
    ds = built.dataset
    aligned, report = align_examples(loaded.tokenizer, ds["text"], ds["targets"], ds["label"],
                                     max_tokens=min(plan.max_tokens, loaded.max_positions), causal=loaded.causal)
    if not aligned:
        raise BuildError(f"no target of '{built.name}' survived alignment to {loaded.name}'s tokenizer",
                         fix="check the target spans and max_tokens in the card")
    # One extractor per store: a second process waits here, then finds the store complete.
    with entry_lock(store.path, f"the activations of {built.name} on {loaded.name}"):
        store.reload()
        if store.complete:
            store.reused_shards = store.n_shards = len(store.meta["shard_sizes"])
            return store, report
        _extract_shards(loaded, built, plan, store, aligned, report, sites, layers, progress, stop_after_shards)
    return store, report


def _extract_shards(loaded: LoadedModel, built: BuiltDataset, plan: ExtractionPlan, store: ActivationStore,
                    aligned: list[AlignedExample], report: AlignmentReport, sites: Sequence[str], layers: list[int],
                    progress: bool, stop_after_shards: int | None) -> None:
    """Run the forward passes of every unfinished shard and finalise the store (under its lock)."""
    from tqdm.auto import tqdm

    # The shard plan is part of the store's layout: a store begun with other shard sizes keeps them.
    shard_rows, shard_tokens = store.shard_layout(plan.shard_rows, plan.shard_tokens)
    shards = plan_shards(aligned, plan.aggregation, shard_rows, shard_tokens)
    store.n_shards, store.reused_shards = len(shards), 0
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    total_tokens = sum(len(ex.input_ids) for shard in shards for ex in shard)
    bar = tqdm(total=total_tokens, desc=f"extract {built.name}", unit="tok", disable=not progress, leave=False)
    started, new_shards = time.perf_counter(), 0
    batch_size, max_tokens = plan.batch_size, plan.max_batch_tokens
    writer, pending = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer"), None
    try:
        for si, shard in enumerate(shards):
            if store.shard_done(si):
                bar.update(sum(len(ex.input_ids) for ex in shard))
                store.reused_shards += 1
                continue
            if stop_after_shards is not None and new_shards >= stop_after_shards:
                if pending is not None:
                    pending.result()
                raise KeyboardInterrupt(f"stopped on purpose after {new_shards} shards")
            buffers, rows, max_tokens, batch_size = fill_shard(
                loaded, shard, sites, layers, plan.aggregation, batch_size, max_tokens, pad_id, bar.update)
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
        "extract_seconds": round(time.perf_counter() - started, 3), "device": str(model_device(loaded.model)),
        "versions": library_versions()})
