"""One shard's forward passes: batches cut by a token budget, rows copied into the shard's buffers.

On a GPU the rows are aggregated on the device and only they cross to the host, with non-blocking
copies into pinned buffers, so the next batch's kernels are queued while the copies run; the check
that values fit in float16 is made once per batch, not once per layer. An out-of-memory error halves
the batch and retries it; finished shards are never touched.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch

from probebank.data.align import AlignedExample
from probebank.errors import ModelError
from probebank.extract.aggregate import BatchIndex, aggregate, build_batch_index, pad_batch, row_spans
from probebank.extract.capture import capture
from probebank.extract.device import free_cached_memory, is_out_of_memory, model_device
from probebank.extract.loaded import LoadedModel
from probebank.extract.store import FP16_MAX


class ShardBuffers:
    """Preallocated [n_layers, rows, width] arrays of one shard, filled batch by batch.

    fp16 halves memory and disk; a site whose values leave fp16's range is upgraded to fp32
    (SmolLM2's residual reaches ~26,000, Gemma-3's ~100,000: beyond fp16's 65,504). With `pin`, the
    buffers are page-locked so copies from a GPU can be asynchronous.
    """

    def __init__(self, sites: Sequence[str], layers: Sequence[int], widths: dict[str, int], n_rows: int,
                 pin: bool = False) -> None:
        self.layer_pos = {layer: i for i, layer in enumerate(layers)}
        self.arrays = {site: self._empty((len(layers), n_rows, widths[site]), pin) for site in sites}
        self.pos = 0
        self._peaks: dict[str, torch.Tensor] = {}  # device-side running max |x| per site (GPU rows)

    @staticmethod
    def _empty(shape: tuple[int, ...], pin: bool) -> np.ndarray:
        if pin:
            return torch.empty(shape, dtype=torch.float16, pin_memory=True).numpy()
        return np.empty(shape, dtype=np.float16)

    def put(self, site: str, layer: int, rows: torch.Tensor) -> None:
        target = self.arrays[site]
        dst = target[self.layer_pos[layer], self.pos:self.pos + rows.shape[0]]
        if rows.device.type != "cpu":  # range check deferred to settle(): no device sync per layer
            if target.dtype == np.float16 and rows.numel():
                peak = rows.detach().abs().amax().float()
                self._peaks[site] = torch.maximum(self._peaks[site], peak) if site in self._peaks else peak
            torch.from_numpy(dst).copy_(rows.to(torch.float16 if target.dtype == np.float16 else torch.float32),
                                        non_blocking=True)
            return
        if target.dtype == np.float16 and rows.numel():
            low, high = torch.aminmax(rows)  # one vectorised pass; far cheaper than checking the fp16 copy
            if max(-float(low), float(high)) >= FP16_MAX:
                self.arrays[site] = target = target.astype(np.float32)  # out of fp16 range: keep fp32
                dst = target[self.layer_pos[layer], self.pos:self.pos + rows.shape[0]]
        torch.from_numpy(dst).copy_(rows)  # converts to the buffer's dtype while copying

    def settle(self) -> bool:
        """Wait for this batch's copies; True when a site left fp16's range (it is upgraded to fp32 and
        the batch must be captured again, its fp16 copy having overflowed)."""
        if not self._peaks:
            return False
        peaks = {site: float(p) for site, p in self._peaks.items()}  # one sync for the whole batch
        self._peaks = {}
        redo = False
        for site, peak in peaks.items():
            if peak >= FP16_MAX and self.arrays[site].dtype == np.float16:
                self.arrays[site] = self.arrays[site].astype(np.float32)
                redo = True
        return redo

    def advance(self, n_rows: int) -> None:
        self.pos += n_rows


def _store_rows(buffers: ShardBuffers, index: BatchIndex, aggregation: str, site: str, layer: int,
                acts: torch.Tensor) -> None:
    """The capture hook's reduction: aggregate a layer's activations and copy them into the shard's buffer."""
    buffers.put(site, layer, aggregate(acts, index, aggregation))


def batch_end(shard: Sequence[AlignedExample], lo: int, batch_size: int, max_tokens: int | None) -> int:
    """End of the batch that starts at `lo`: at most `batch_size` sequences, or, with a token budget, as
    many as fit in `max_tokens` padded tokens (at least one). The shard is sorted by length."""
    if max_tokens is None:
        return min(len(shard), lo + batch_size)
    hi = lo + 1
    while hi < len(shard) and (hi + 1 - lo) * len(shard[hi].input_ids) <= max_tokens:
        hi += 1
    return hi


def fill_shard(loaded: LoadedModel, shard: Sequence[AlignedExample], sites: Sequence[str], layers: Sequence[int],
               aggregation: str, batch_size: int, max_tokens: int | None, pad_id: int,
               on_tokens: Callable[[int], None]) -> tuple[ShardBuffers, dict[str, np.ndarray], int | None, int]:
    """Capture every batch of one shard; returns (buffers, row metadata, the token budget and batch size
    that worked, for the next shard)."""
    loaded.ensure_weights()  # weights deferred by open_model load here, before their device is read
    device = model_device(loaded.model)
    on_device = device.type != "cpu"
    buffers = ShardBuffers(sites, layers, loaded.widths, sum(len(row_spans(ex, aggregation)) for ex in shard),
                           pin=device.type == "cuda")
    meta_parts = []
    lo = 0
    while lo < len(shard):
        hi = batch_end(shard, lo, batch_size, max_tokens)
        batch = shard[lo:hi]
        ids, mask = pad_batch(batch, pad_id)
        index = build_batch_index(batch, ids.shape[1], aggregation)
        dev_index = _index_on(index, device) if on_device else index
        try:
            # Aggregate inside the hook and copy straight into the shard's buffer: memory holds one
            # layer's full activations at a time and nothing is stacked or concatenated later.
            for _ in range(2):  # a second pass only when a site just left fp16's range
                capture(loaded, ids.to(device, non_blocking=True), mask.to(device, non_blocking=True), sites,
                        layers, reduce=functools.partial(_store_rows, buffers, dev_index, aggregation))
                if not buffers.settle():
                    break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            free_cached_memory(device)
            if len(batch) == 1:
                raise ModelError(f"{loaded.name}: one sequence of {len(batch[0].input_ids)} tokens does not fit "
                                 f"in {device}'s memory", field="--max-batch-tokens",
                                 fix="use a shorter max_tokens in the card, a smaller --dtype, or another device") \
                    from exc
            if max_tokens is None:
                batch_size = max(1, len(batch) // 2)
            else:
                max_tokens = max(1, max_tokens // 2)
            print(f"out of memory on {device}: batch halved to {batch_size if max_tokens is None else max_tokens}"
                  f" {'sequences' if max_tokens is None else 'tokens'}, retrying", file=sys.stderr)
            continue
        buffers.advance(len(index.flat_last))
        meta_parts.append(index.meta)
        on_tokens(int(mask.sum()))
        lo = hi
    if on_device and device.type == "cuda":
        torch.cuda.synchronize(device)  # every non-blocking copy has landed before the writer reads
    rows = {k: np.concatenate([m[k] for m in meta_parts]) for k in meta_parts[0]}
    return buffers, rows, max_tokens, batch_size


def _index_on(index: BatchIndex, device: torch.device) -> BatchIndex:
    """The batch index with its tensors on `device` (metadata stays on the host)."""
    return BatchIndex(flat_last=index.flat_last.to(device), flat_first=index.flat_first.to(device),
                      gather=index.gather.to(device), mask=index.mask.to(device),
                      mean_matrix=None if index.mean_matrix is None else index.mean_matrix.to(device),
                      meta=index.meta)
