"""What to extract for one (model, dataset): the extraction plan.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from probebank.contracts import Site
from probebank.data.schema import Aggregation, Strict


class ExtractionPlan(Strict):
    """What to extract for one (model, dataset). Activations are stored in float16, a site whose values
    leave float16's range in float32 (probebank.extract.store)."""

    model: str
    dataset: str
    sites: list[Site] = Field(default_factory=lambda: list[Site](["mlp"]))
    layers: list[int] | None = Field(None, description="None = every layer.")
    aggregation: Aggregation = "mean"
    max_tokens: int = 256
    batch_size: int = Field(16, ge=1, description="Sequences per forward pass (when max_batch_tokens is None).")
    max_batch_tokens: int | None = Field(None, ge=1, description=(
        "Padded tokens per forward pass instead of a fixed batch size (an out-of-memory error halves it)."))
    store_dtype: Literal["float16", "uint8"] = Field("float16", description=(
        "float16 (float32 for a site beyond its range), or uint8: per-unit affine codes, half the bytes."))
    shard_rows: int = Field(2048, ge=1, description="At most this many rows per shard (bounds peak memory).")
    shard_tokens: int = Field(16384, ge=1, description=(
        "About this many tokens per shard: the resumable unit, some 30 s of SmolLM2-135M on two CPU cores."))
