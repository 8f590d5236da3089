"""Extraction as Ray actors (`--executor ray`): each actor holds one replica of the model on its device.

An actor opens the model once (one GPU per replica where the cluster has GPUs: Ray's `num_gpus=1`
sets its CUDA_VISIBLE_DEVICES; else on the CPU) and extracts whole datasets into the shared cache:
the activation store of a dataset is made under its lock and sealed shard by shard, exactly as in
the driver (probebank.extract.pipeline), so a dataset extracted by an actor is the same store, with
the same key and checksums, that a local run makes, and a rerun resumes it from its finished shards.
The driver keeps several datasets in flight, one per replica and one queued, and reads each store
back from the cache (verifying its seal) before its probe units are submitted.

This module imports torch (through the extraction pipeline); the probe workers never import it.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probebank.data.examples import BuiltDataset
from probebank.extract.pipeline import extract
from probebank.extract.plan import ExtractionPlan
from probebank.extract.providers import open_model


class Extractor:
    """One model replica (a Ray actor when wrapped by `ray.remote`); extracts datasets into the cache."""

    def __init__(self, model: str, *, dtype: str, include: Sequence[str], revision: str | None, device: str,
                 env: dict[str, str]) -> None:
        os.environ.update(env)  # the driver's PROBEBANK_* settings: the same cache and plugins
        self.device = device
        self.loaded = open_model(model, dtype=dtype, include=[Path(p) for p in include], revision=revision,
                                 device=device)
        self.loaded.to_device(device)

    def extract(self, built: BuiltDataset, plan: ExtractionPlan) -> dict[str, Any]:
        """Extract (or reuse) one dataset's store; returns where it is and its alignment report."""
        store, report = extract(self.loaded, built, plan, progress=False)
        return {"root": str(store.root), "key": store.key, "alignment": report.as_dict(),
                "reused_shards": store.reused_shards, "n_shards": store.n_shards, "device": self.device}
