"""How one basis's units line up with one dataset's features: the BasisRecord.
"""
from __future__ import annotations

from pydantic import Field

from probebank.contracts import Site
from probebank.data.schema import Strict
from probebank.probing.schema import Provenance


class BasisRecord(Strict):
    """How one basis's units line up with one dataset's features at one site and layer."""

    provenance: Provenance
    category: str | None = Field(None, description="The dataset's category (language, code, ...).")
    basis: str = Field(description="The basis as specified, e.g. pca or sae-topk:k=16.")
    basis_key: str | None = Field(None, description="Content key of the fitted basis (None: needs no fit).")
    basis_flags: list[str] = Field(default_factory=list)
    site: Site
    layer: int
    n_units: int
    n_rows: int
    n_features: int
    method: str = Field(description="Selection method of the k-sparse curve.")
    f1_at_k: dict[int, float] = Field(default_factory=dict, description="Mean test F1 over features, per k.")
    best_unit_f1: dict[str, float] = Field(default_factory=dict,
                                           description="Per feature: test F1 of the best single unit chosen on train.")
    best_unit_f1_mean: float
    coverage_80: float = Field(description="Share of features whose best single unit reaches F1 >= 0.8.")
    coverage_90: float
    dead_fraction: float = Field(description="Units never active (|code| > 1e-6) on the dataset's rows.")
    always_on_fraction: float = Field(description="Units active on more than 99% of the rows.")
    fvu: float | None = Field(None, description="Fraction of variance unexplained by decode(encode(x)).")
    train_rows: int | None = None
    fit_seconds: float | None = None
