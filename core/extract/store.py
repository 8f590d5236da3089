"""Content-addressed, memory-mapped activation store. Extract once, probe many times.

Layout of one entry (cache/store/<key>/):
    meta.json                      what the key was made of, widths, dtypes, status
    shards/<i>/<site>.npy          [n_layers, rows, width] fp16 (fp32 if out of range) for one shard of examples
    shards/<i>/rows_<field>.npy    row metadata of that shard; shards/<i>/.done marks it finished
    rows_<field>.npy               all rows' metadata (example, target, label, token, position), once complete

Shards make extraction resumable: an interrupted run keeps every finished shard. Activations
are written once: a layer is read back as its contiguous slice of every shard (memory-mapped).
Arrays are saved in numpy's .npy format and always loaded with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

STORE_FORMAT = 2  # 2: activations stay in their shards (no consolidated per-layer copy)
ROW_FIELDS = ("example", "target", "label", "token", "position")
FP16_MAX = 65504.0


def store_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the activations."""
    blob = json.dumps({**parts, "store_format": STORE_FORMAT}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load(path: Path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


class ActivationStore:
    """One extraction's activations, addressed by content key."""

    def __init__(self, root: Path, key: str, parts: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.key = key
        self.path = self.root / key
        self.path.mkdir(parents=True, exist_ok=True)
        self.meta_path = self.path / "meta.json"
        if self.meta_path.is_file():
            self.meta = json.loads(self.meta_path.read_text())
        else:
            self.meta = {"key": key, "parts": parts or {}, "status": "partial", "format": STORE_FORMAT}
            _atomic_json(self.meta_path, self.meta)

    # ---- state -------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return self.meta.get("status") == "complete"

    def _shard_dir(self, i: int) -> Path:
        return self.path / "shards" / f"{i:05d}"

    def shard_done(self, i: int) -> bool:
        return (self._shard_dir(i) / ".done").is_file()

    # ---- writing ----------------------------------------------------------------------------
    def write_shard(self, i: int, acts: dict[str, np.ndarray], rows: dict[str, np.ndarray]) -> None:
        """Write one finished shard atomically: acts[site] is [n_layers, rows, width] (fp16, or fp32 if out of range)."""
        final = self._shard_dir(i)
        tmp = final.with_name(final.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for site, arr in acts.items():
            # fp16 halves the disk and memory bill; values beyond its range are kept in fp32.
            if arr.dtype == np.float16:
                out = arr
            else:
                peak = float(np.abs(arr).max()) if arr.size else 0.0
                out = arr.astype(np.float16) if peak < FP16_MAX else arr.astype(np.float32)
            np.save(tmp / f"{site}.npy", out, allow_pickle=False)
        for name in ROW_FIELDS:
            np.save(tmp / f"rows_{name}.npy", np.asarray(rows[name], dtype=np.int64), allow_pickle=False)
        (tmp / ".done").write_text("")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)

    def finalise(self, n_shards: int, sites: Iterable[str], layers: list[int], info: dict[str, Any]) -> None:
        """Mark the store complete once every shard is written; shards stay where they are.

        Activations are not copied again: a layer is read as the concatenation of its contiguous
        slice in each shard (see `layer`). Only the small row metadata is gathered into one file.
        """
        sites = list(sites)
        shard_dirs = [self._shard_dir(i) for i in range(n_shards)]
        missing = [d.name for d in shard_dirs if not (d / ".done").is_file()]
        if missing:
            raise RuntimeError(f"cannot finalise store {self.key}: shards {missing} are unfinished")
        sizes = [int(_load(d / "rows_example.npy").shape[0]) for d in shard_dirs]
        for name in ROW_FIELDS:
            parts = [_load(d / f"rows_{name}.npy") for d in shard_dirs]
            np.save(self.path / f"rows_{name}.npy",
                    np.concatenate(parts) if parts else np.zeros(0, np.int64), allow_pickle=False)
        widths, dtypes = {}, {}
        for site in sites:
            arrays = [_load(d / f"{site}.npy", mmap=True) for d in shard_dirs]
            widths[site] = int(arrays[0].shape[2]) if arrays else 0
            dtypes[site] = [a.dtype.name for a in arrays]
        self.meta.update(status="complete", n_rows=sum(sizes), shard_sizes=sizes, widths=widths, dtypes=dtypes,
                         sites=sites, layers=list(layers), **info)
        _atomic_json(self.meta_path, self.meta)

    # ---- reading ----------------------------------------------------------------------------
    def layer(self, site: str, layer: int) -> np.ndarray:
        """[rows, width] activations of one site and layer (each shard's slice is read through a memory map)."""
        if not self.complete:
            raise KeyError(f"store {self.key} is not complete")
        if site not in self.meta["sites"] or layer not in self.meta["layers"]:
            raise KeyError(f"store {self.key} has no {site} activations for layer {layer}")
        li = self.meta["layers"].index(layer)
        parts = [_load(self._shard_dir(i) / f"{site}.npy", mmap=True)[li] for i in range(len(self.meta["shard_sizes"]))]
        dtype = np.result_type(*[p.dtype for p in parts])
        return np.concatenate(parts).astype(dtype, copy=False) if len(parts) > 1 else np.asarray(parts[0])

    def rows(self) -> dict[str, np.ndarray]:
        return {name: _load(self.path / f"rows_{name}.npy") for name in ROW_FIELDS}
