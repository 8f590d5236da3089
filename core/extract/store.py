"""Content-addressed, memory-mapped activation store. Extract once, probe many times.

Layout of one entry (cache/store/<key>/):
    meta.json                      what the key was made of, widths, dtypes, status
    shards/<i>/<site>.npy          [n_layers, rows, width] fp16 (fp32 if out of range) for one shard of examples,
                                   or uint8 codes (--store-dtype uint8) with <site>.scale.npy and <site>.offset.npy
    shards/<i>/rows_<field>.npy    row metadata of that shard
    shards/<i>/checksums.json      the shard's seal: written last, so a shard without one is unfinished
    rows_<field>.npy               all rows' metadata (example, target, label, token, position), once complete
    checksums.json                 the store's seal over every file above, once complete

Shards make extraction resumable: an interrupted run keeps every finished shard. Activations
are written once: a layer is read back as its contiguous slice of every shard (memory-mapped).
Arrays are saved in numpy's .npy format and always loaded with allow_pickle=False.

Nothing unverified is read: a complete store is checked against its seal once per process. A
shard that fails is quarantined and extracted again; a damaged meta.json or row file is gathered
again from the shards; either way the other shards are kept.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from probebank.cache.atomic import remove, staging_folder, temporary_name, write_text
from probebank.cache.checksums import SEAL, Problem, content_digest, is_sealed, problem, seal
from probebank.cache.quarantine import describe, quarantine
from probebank.extract.quantize import decode, encode

# 2: activations stay in their shards (no consolidated per-layer copy); 3: sealed, shards cut by tokens
STORE_FORMAT = 3
ROW_FIELDS = ("example", "target", "label", "token", "position")
FP16_MAX = 65504.0


def store_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the activations."""
    blob = json.dumps({**parts, "store_format": STORE_FORMAT}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load(path: Path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _atomic_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = temporary_name(path)
    with open(tmp, "wb") as f:  # a file handle: np.save would append ".npy" to a temporary name
        np.save(f, arr, allow_pickle=False)
    tmp.replace(path)


class ActivationStore:
    """One extraction's activations, addressed by content key."""

    def __init__(self, root: Path, key: str, parts: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.key = key
        self.path = self.root / key
        self.path.mkdir(parents=True, exist_ok=True)
        self.meta_path = self.path / "meta.json"
        self._parts = parts
        self.reused_shards = 0  # shards found finished on disk by the last extraction
        self.n_shards = 0
        self.reload()

    def reload(self) -> None:
        """Read meta.json again (another process may have finished the store meanwhile)."""
        try:
            meta = json.loads(self.meta_path.read_text())
            if not isinstance(meta, dict) or meta.get("key") != self.key:
                raise ValueError("it does not describe this store")
            self.meta = meta
        except FileNotFoundError:
            self._reset()
        except (OSError, ValueError) as exc:  # damaged: the shards carry their own seals and are kept
            self._reset(Problem("meta.json", f"is unreadable ({exc})"))

    def _reset(self, why: Problem | None = None) -> None:
        """Back to a partial store that keeps its finished shards (rows and meta are gathered again)."""
        if why is not None:
            print(f"cache: {describe(self.path)} failed its check ({why}); gathering it again from its shards",
                  file=sys.stderr)
        (self.path / SEAL).unlink(missing_ok=True)
        for name in ROW_FIELDS:
            (self.path / f"rows_{name}.npy").unlink(missing_ok=True)
        parts = self._parts if self._parts is not None else (getattr(self, "meta", {}) or {}).get("parts", {})
        self.meta = {"key": self.key, "parts": parts, "status": "partial", "format": STORE_FORMAT}
        _atomic_json(self.meta_path, self.meta)

    # ---- state -------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Finished and matching its seal (checked once per process); a damaged store is repaired to
        partial here, so the next extraction redoes only what was lost."""
        if self.meta.get("status") != "complete":
            return False
        why = problem(self.path) if is_sealed(self.path) else Problem(None, f"it has no {SEAL}")
        if why is None:
            return True
        shard = why.file.split("/")[1] if why.file and why.file.startswith("shards/") else None
        if shard is not None:  # one damaged shard: set it aside and extract it again
            quarantine(self.path / "shards" / shard, str(why), action="extracting that shard again")
            self._reset()
        else:
            self._reset(why)
        return False

    @property
    def digest(self) -> str:
        """sha256 over the checksums of the activations and rows (not meta.json, which holds timings):
        what a records cache built from this store is tied to."""
        return content_digest(self.path, exclude=("meta.json",))

    def shard_layout(self, shard_rows: int, shard_tokens: int) -> tuple[int, int]:
        """The shard sizes of this store: those it was begun with, else these (kept in meta.json)."""
        if "shard_rows" not in self.meta or "shard_tokens" not in self.meta:
            self.meta.update(shard_rows=shard_rows, shard_tokens=shard_tokens)
            _atomic_json(self.meta_path, self.meta)
        return int(self.meta["shard_rows"]), int(self.meta["shard_tokens"])

    def _shard_dir(self, i: int) -> Path:
        return self.path / "shards" / f"{i:05d}"

    def shard_done(self, i: int) -> bool:
        """Shard i is written and matches its seal; a damaged shard is quarantined (so it is made again)."""
        folder = self._shard_dir(i)
        if not folder.exists():
            return False
        why = problem(folder)
        if why is None:
            return True
        quarantine(folder, str(why), action="extracting that shard again")
        return False

    # ---- writing ----------------------------------------------------------------------------
    def write_shard(self, i: int, acts: dict[str, np.ndarray], rows: dict[str, np.ndarray]) -> None:
        """Write one finished shard atomically: acts[site] is [n_layers, rows, width] (fp16, or fp32 if out of range)."""
        with staging_folder(self._shard_dir(i)) as tmp:
            self._write_shard_files(tmp, acts, rows)

    @property
    def store_dtype(self) -> str:
        """How activations are kept: float16 (fp32 beyond its range) or uint8 (per-unit affine codes)."""
        return str(self.meta.get("parts", {}).get("store_dtype", "float16"))

    def _write_shard_files(self, tmp: Path, acts: dict[str, np.ndarray], rows: dict[str, np.ndarray]) -> None:
        for site, arr in acts.items():
            if self.store_dtype == "uint8":
                codes, scale, offset = encode(arr)
                np.save(tmp / f"{site}.npy", codes, allow_pickle=False)
                np.save(tmp / f"{site}.scale.npy", scale, allow_pickle=False)
                np.save(tmp / f"{site}.offset.npy", offset, allow_pickle=False)
                continue
            # fp16 halves the disk and memory bill; values beyond its range are kept in fp32.
            if arr.dtype == np.float16:
                out = arr
            else:
                peak = float(np.abs(arr).max()) if arr.size else 0.0
                out = arr.astype(np.float16) if peak < FP16_MAX else arr.astype(np.float32)
            np.save(tmp / f"{site}.npy", out, allow_pickle=False)
        for name in ROW_FIELDS:
            np.save(tmp / f"rows_{name}.npy", np.asarray(rows[name], dtype=np.int64), allow_pickle=False)
        seal(tmp)  # last: a shard folder with a seal is a finished shard

    def finalise(self, n_shards: int, sites: Iterable[str], layers: list[int], info: dict[str, Any]) -> None:
        """Mark the store complete once every shard is written; shards stay where they are.

        Activations are not copied again: a layer is read as the concatenation of its contiguous
        slice in each shard (see `layer`). Only the small row metadata is gathered into one file.
        """
        sites = list(sites)
        shard_dirs = [self._shard_dir(i) for i in range(n_shards)]
        missing = [d.name for d in shard_dirs if not is_sealed(d)]
        if missing:
            raise RuntimeError(f"cannot finalise store {self.key}: shards {missing} are unfinished")
        sizes = [int(_load(d / "rows_example.npy").shape[0]) for d in shard_dirs]
        for name in ROW_FIELDS:
            parts = [_load(d / f"rows_{name}.npy") for d in shard_dirs]
            _save_npy(self.path / f"rows_{name}.npy", np.concatenate(parts) if parts else np.zeros(0, np.int64))
        widths, dtypes = {}, {}
        for site in sites:
            arrays = [_load(d / f"{site}.npy", mmap=True) for d in shard_dirs]
            widths[site] = int(arrays[0].shape[2]) if arrays else 0
            dtypes[site] = [a.dtype.name for a in arrays]
        shards_root = self.path / "shards"
        for extra in sorted(shards_root.iterdir()) if shards_root.is_dir() else []:  # leftovers of killed writers
            if extra not in shard_dirs:
                remove(extra)
        self.meta.update(status="complete", n_rows=sum(sizes), shard_sizes=sizes, widths=widths, dtypes=dtypes,
                         sites=sites, layers=list(layers), **info)
        _atomic_json(self.meta_path, self.meta)
        seal(self.path)  # last: only a sealed store is complete

    # ---- reading ----------------------------------------------------------------------------
    def layer(self, site: str, layer: int) -> np.ndarray:
        """[rows, width] activations of one site and layer (each shard's slice is read through a memory map)."""
        if not self.complete:
            raise KeyError(f"store {self.key} is not complete")
        if site not in self.meta["sites"] or layer not in self.meta["layers"]:
            raise KeyError(f"store {self.key} has no {site} activations for layer {layer}")
        li = self.meta["layers"].index(layer)
        shards = [self._shard_dir(i) for i in range(len(self.meta["shard_sizes"]))]
        parts = [_load(d / f"{site}.npy", mmap=True)[li] for d in shards]
        if self.store_dtype == "uint8":  # decoded shard by shard with that shard's own scale and offset
            parts = [decode(p, _load(d / f"{site}.scale.npy")[li], _load(d / f"{site}.offset.npy")[li])
                     for p, d in zip(parts, shards)]
        dtype = np.result_type(*[p.dtype for p in parts])
        return np.concatenate(parts).astype(dtype, copy=False) if len(parts) > 1 else np.asarray(parts[0])

    def rows(self) -> dict[str, np.ndarray]:
        return {name: _load(self.path / f"rows_{name}.npy") for name in ROW_FIELDS}
