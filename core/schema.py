"""The typed contracts of probebank (pydantic v2, extra keys forbidden).

DatasetCard and RegistryEntry describe data; ExtractionPlan and ProbeConfig describe work;
ResultRecord describes one probe result with its provenance. `probebank schema` prints the
JSON Schema of each. Nothing here knows about models, extraction or probing code.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Category = Literal["bias", "safety", "syntax", "factual", "language", "code", "position", "lexical"]
Aggregation = Literal["each", "first", "last", "mean", "max"]
LabelType = Literal["binary", "multiclass", "regression"]
Site = Literal["mlp", "resid", "attn"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
VERSION_PATTERN = r"^\d+(\.\d+){0,2}$"
DEFAULT_K_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64, 128, 256)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class SourcePin(Strict):
    """One pinned raw input of a dataset, fetched by the source plugin named in `kind`."""

    name: str = Field(pattern=NAME_PATTERN, description="Handle the builder uses: ctx.fetch(name).")
    kind: str = Field(description="Source plugin: pypi, npm, local, author (facts written in the card's folder).")
    package: str | None = Field(None, description="Registry package name (pypi, npm).")
    version: str | None = Field(None, description="Exact version, e.g. 0.1.2.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the downloaded artifact.")
    filename: str | None = Field(None, description="Artifact file name, when the registry offers several.")
    path: str | None = Field(None, description="For local sources: a path inside the dataset's folder.")
    license: str | None = Field(None, description="License of the data itself (not of the package).")

    @model_validator(mode="after")
    def _pins_complete(self) -> "SourcePin":
        if self.kind in ("pypi", "npm"):
            missing = [f for f in ("package", "version", "sha256") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a {self.kind} source needs {', '.join(missing)} "
                                 f"(pin the exact version and the artifact's sha256)")
        if self.kind == "local" and not self.path:
            raise ValueError("a local source needs `path`, relative to the dataset's folder")
        if self.path and (self.path.startswith("/") or ".." in re.split(r"[\\/]", self.path)):
            raise ValueError("`path` must stay inside the dataset's folder (no absolute path, no '..')")
        return self


class LabelSpec(Strict):
    type: LabelType
    classes: list[str] = Field(default_factory=list, description="Class names; index = label id.")

    @model_validator(mode="after")
    def _classes_match_type(self) -> "LabelSpec":
        if self.type == "binary" and len(self.classes) != 2:
            raise ValueError("a binary label needs exactly 2 classes (negative first, positive second)")
        if self.type == "multiclass" and len(self.classes) < 3:
            raise ValueError("a multiclass label needs at least 3 classes (use binary for 2)")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        return self


class TargetRule(Strict):
    """How target tokens are chosen: spans given by the builder, the whole text, or all after a char offset."""

    kind: Literal["spans", "all", "after"] = "spans"
    offset: int = Field(0, ge=0, description="For kind=after: the first character of the target region.")


class SplitPolicy(Strict):
    test_size: float = Field(0.3, gt=0.0, lt=1.0)
    seed: int = 0
    grouped: bool = Field(True, description="Keep every example of one `group` on one side.")
    stratified: bool = True


class DatasetCard(Strict):
    """Everything a user needs to know about one dataset, and how to build it."""

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN, description="Bump when the examples change.")
    category: Category
    tags: list[str] = Field(default_factory=list)
    description: str = Field(min_length=10)
    construction: str | None = Field(None, description="How the examples are made.")
    citation: str = Field(min_length=3)
    license: str = Field(min_length=2, description="License of the data (not of the code).")
    sources: list[SourcePin] = Field(default_factory=list)
    builder: str = Field(description="Name of the registered builder (register_datasets hook).")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword parameters for the builder.")
    labels: LabelSpec
    targets: TargetRule = Field(default_factory=TargetRule)
    aggregation: Aggregation = "mean"
    max_tokens: int = Field(256, ge=1, le=8192, description="Truncate each text to this many tokens.")
    split: SplitPolicy = Field(default_factory=SplitPolicy)
    min_per_class: int = Field(20, ge=1)
    silver: bool = Field(False, description="Labels are predicted by a model, not gold.")
    responsible_use: str | None = Field(None, description="Required for bias and safety data.")
    waivers: dict[str, str] = Field(default_factory=dict, description="Quality gate -> written reason.")

    @model_validator(mode="after")
    def _responsible_use(self) -> "DatasetCard":
        if self.category in ("bias", "safety") and not (self.responsible_use or "").strip():
            raise ValueError(f"a {self.category} dataset needs a `responsible_use` note "
                             "(who may use it, for what, and what it must not be used for)")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must be unique within a card")
        return self


class RegistryEntry(Strict):
    """One line of registry.yaml: where the card lives and what the index needs without importing code."""

    card: str = Field(description="Path of the card, relative to registry.yaml.")
    version: str = Field(pattern=VERSION_PATTERN)
    category: Category
    tags: list[str] = Field(default_factory=list)

    @field_validator("card")
    @classmethod
    def _inside(cls, v: str) -> str:
        if v.startswith("/") or ".." in re.split(r"[\\/]", v):
            raise ValueError("`card` must be a relative path inside the repository (no '..')")
        return v


class Suite(Strict):
    """A named set of datasets run together, with the per-class example limit that keeps it small."""

    description: str = ""
    datasets: list[str]
    limit: int | None = Field(None, ge=1, description="Max examples per class for every dataset of the suite.")


class Registry(Strict):
    version: int = 1
    datasets: dict[str, RegistryEntry]
    suites: dict[str, Suite] = Field(default_factory=dict)


class ExtractionPlan(Strict):
    """What to extract for one (model, dataset)."""

    model: str
    dataset: str
    sites: list[Site] = Field(default_factory=lambda: ["mlp"])
    layers: list[int] | None = Field(None, description="None = every layer.")
    aggregation: Aggregation = "mean"
    max_tokens: int = 256
    batch_size: int = Field(16, ge=1)
    dtype: Literal["float16", "float32"] = "float16"
    shard_rows: int = Field(2048, ge=1, description="Rows per shard (the resumable unit; bounds peak memory).")


class ProbeConfig(Strict):
    """How probes are fitted and scored."""

    methods: list[str] = Field(default_factory=lambda: ["mean_diff"])
    k_grid: list[int] = Field(default_factory=lambda: list(DEFAULT_K_GRID))
    dense: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0])
    test_size: float = Field(0.3, gt=0.0, lt=1.0)
    C: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic regression on the top k.")
    max_iter: int = Field(1000, ge=10)
    balance: bool = Field(True, description="Subsample one-vs-rest negatives to the positives' count.")
    min_rows_per_class: int = Field(4, ge=2)


class Metrics(Strict):
    f1: float
    accuracy: float
    precision: float
    recall: float
    mcc: float
    roc_auc: float | None = None


class Provenance(Strict):
    probebank_version: str
    model: str
    model_revision: str = Field(description="Revision, or sha256 of the weights file.")
    model_dtype: str
    model_notes: str | None = None
    dataset: str
    dataset_version: str
    dataset_hash: str
    store_key: str | None = None


class Controls(Strict):
    """Evidence that a probe result is real, measured on the same split as the probe (issue 4).

    None means the control was not run for this record.
    """

    shuffled_f1: float | None = Field(None, description="Same probe trained on labels shuffled across groups.")
    selectivity: float | None = Field(None, description="f1 - shuffled_f1 (Hewitt & Liang's control task).")
    rotation_f1: float | None = Field(None, description="Same probe on a random rotation of the same layer.")
    token_identity_f1: float | None = Field(None, description="Label predicted from the target token id alone.")
    random_init_f1: float | None = Field(None, description="Same probe on a random-init model of the same architecture.")


class SolverReport(Strict):
    """How an exact (MILP) probe was solved: the proof that comes with an 'optimal' support."""

    solver: str = Field(description="e.g. highs")
    status: str = Field(description="optimal, time_limit, ...")
    objective: float
    bound: float = Field(description="Best proven lower bound on the objective.")
    gap: float = Field(description="Relative optimality gap (objective - bound) / max(|objective|, eps).")
    time_s: float
    time_limited: bool
    n_candidates: int
    warm_start: bool = False


class ResultRecord(Strict):
    """One probe result: (model, dataset, feature, site, layer, method, k, seed) with provenance."""

    provenance: Provenance
    feature: str = Field(description="Positive class of the one-vs-rest probe.")
    site: Site
    layer: int
    aggregation: Aggregation
    basis: str = "identity"
    method: str = Field(description="Selection method, or 'dense' for the L2 baseline on all units.")
    method_params: dict[str, Any] = Field(default_factory=dict)
    k: int = Field(description="Number of selected units (width of the layer for dense).")
    seed: int
    n_train: int
    n_test: int
    n_train_pos: int
    n_test_pos: int
    metrics: Metrics
    units: list[int] = Field(default_factory=list, description="Selected unit indices, best first.")
    coef: list[float] = Field(default_factory=list, description="Coefficients of the selected units.")
    intercept: float = 0.0
    wall_time_s: float = 0.0
    controls: Controls | None = None
    solver: SolverReport | None = None
    train_f1: float | None = Field(None, description="F1 of the same probe on its own training rows (to choose "
                                                      "a layer without looking at the test rows).")
    basis_key: str | None = Field(None, description="Content key of a trained basis (what it was fit on, how).")
    basis_flags: list[str] = Field(default_factory=list,
                                   description="Warnings about the basis, e.g. 'train-overlaps-test'.")


SCHEMAS: dict[str, type[BaseModel]] = {
    "DatasetCard": DatasetCard,
    "Registry": Registry,
    "RegistryEntry": RegistryEntry,
    "Suite": Suite,
    "ExtractionPlan": ExtractionPlan,
    "ProbeConfig": ProbeConfig,
    "ResultRecord": ResultRecord,
    "Controls": Controls,
    "SolverReport": SolverReport,
}


class BasisRecord(Strict):
    """How one basis's units line up with one dataset's features at one site and layer (issue 6)."""

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


SCHEMAS["BasisRecord"] = BasisRecord
