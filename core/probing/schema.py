"""What probing takes and gives: the probe configuration and one result record with its provenance.

`probebank schema ResultRecord` prints the JSON Schema of a record; a results folder is a file of
them (probebank.results.records).
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat

from probebank.contracts import Site
from probebank.data.schema import Aggregation, Strict
from probebank.data.splits import MIN_ROWS_PER_CLASS

DEFAULT_K_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64, 128, 256)
# The dense probe's C is chosen from these on an inner split of the training rows (probebank.probing.dense):
# with more units than rows, C=1 lets the probe memorise its training rows.
DEFAULT_DENSE_C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


class ProbeConfig(Strict):
    """How probes are fitted and scored. The train/test split is the card's (`split` in DatasetCard)."""

    methods: list[str] = Field(default_factory=lambda: ["mean_diff"])
    k_grid: list[int] = Field(default_factory=lambda: list(DEFAULT_K_GRID))
    dense: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0])
    C: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic regression on the top k.")
    dense_C_grid: list[PositiveFloat] = Field(default_factory=lambda: list(DEFAULT_DENSE_C_GRID), min_length=1,
                                      description="The dense probe's inverse L2 strengths: the one with the best F1 "
                                                  "on an inner validation split of the training rows is refitted "
                                                  "on all of them (one value: fitted at it, no split).")
    max_iter: int = Field(1000, ge=10)
    balance: bool = Field(True, description="Subsample one-vs-rest negatives to the positives' count.")
    min_rows_per_class: int = Field(MIN_ROWS_PER_CLASS, ge=2)


class Metrics(Strict):
    f1: float
    accuracy: float
    precision: float
    recall: float
    mcc: float
    roc_auc: float | None = None


class RegressionMetrics(Strict):
    """Metrics of a probe on a regression card (probebank.probing.regression), on the test rows."""

    r2: float = Field(description="1 - residual / total sum of squares (sklearn's r2_score); the headline.")
    spearman: float | None = Field(None, description="Spearman rank correlation of prediction and value.")
    pearson: float | None = None
    rmse: float
    train_r2: float | None = Field(None, description="R2 of the same probe on its own training rows.")


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
    store_dtype: str = Field("float16", description="How the activations were kept: float16 or uint8 codes.")
    device: str | None = Field(None, description="Where the activations were extracted (cpu, cuda:0, ...).")
    versions: dict[str, str] = Field(default_factory=dict, description="probebank, torch, transformers, cuda.")
    test_set: str | None = Field(None, description="What the probe was scored on when not the card's own test "
                                 "split: the test set named by `probebank run --test-on` (e.g. ood); the probe "
                                 "was fitted on the training side of this dataset's split.")
    test_dataset: str | None = Field(None, description="The dataset of that test set (all its rows scored).")
    test_dataset_hash: str | None = Field(None, description="Its content hash.")

    @property
    def scored_on(self) -> str:
        """The dataset whose rows scored the probe: this one's test split, or the --test-on set's."""
        return self.test_dataset or self.dataset


HELD_OUT_FIELDS = ("test_set", "test_dataset", "test_dataset_hash")  # Provenance's fields of --test-on


class Controls(Strict):
    """Evidence that a probe result is real, measured on the same split as the probe.

    None means the control was not run for this record.
    """

    shuffled_f1: float | None = Field(None, description="Same probe trained on labels shuffled across groups.")
    selectivity: float | None = Field(None, description="f1 - shuffled_f1 (Hewitt & Liang's control task).")
    rotation_f1: float | None = Field(None, description="Same probe on a random rotation of the same layer.")
    token_identity_f1: float | None = Field(None, description="Label predicted from the target token id alone.")
    random_init_f1: float | None = Field(None, description="Same probe on a random-init model of the same architecture.")


class RegressionControls(Strict):
    """The controls of a regression probe: as Controls, with R2 in place of F1."""

    shuffled_r2: float | None = Field(None, description="Same probe trained on values shuffled across groups.")
    selectivity: float | None = Field(None, description="r2 - shuffled_r2.")
    rotation_r2: float | None = Field(None, description="Same probe on a random rotation of the same layer.")
    token_identity_r2: float | None = Field(None, description="Value predicted from the target token id alone "
                                                              "(the token's mean training value).")
    random_init_r2: float | None = Field(None, description="Same probe on a random-init model.")


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


class DenseFit(Strict):
    """How a dense record's C was chosen (probebank.probing.dense): on training rows only, never the test rows."""

    C: float = Field(description="The C the dense probe was fitted at, on all training rows.")
    C_grid: list[float] = Field(description="The Cs it was chosen from.")
    chosen_on: str = Field(description="'validation': the inner split of the val_f1 layer pick (grouped like the "
                                       "card's split); 'rows': a stratified split of the training rows (no grouped "
                                       "one was given or possible); 'fixed': one C given, or no split possible.")
    val_f1: list[float] = Field(default_factory=list, description="F1 on the inner validation rows of the probe "
                                "fitted on the other training rows, one per C of C_grid (empty when fixed).")
    n_val: int = Field(0, description="Inner validation rows.")
    n_units: int = Field(description="Units of the layer.")
    n_train: int = Field(description="Training rows of the final fit.")


class ResultRecord(Strict):
    """One probe result: (model, dataset, feature, site, layer, method, k, seed) with provenance."""

    provenance: Provenance
    feature: str = Field(description="Positive class of the one-vs-rest probe (the value's name on a regression card).")
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
    n_train_pos: int = Field(description="Positive rows (0 on a regression card).")
    n_test_pos: int
    metrics: Metrics | RegressionMetrics
    units: list[int] = Field(default_factory=list, description="Selected unit indices, best first.")
    coef: list[float] = Field(default_factory=list, description="Coefficients of the selected units.")
    intercept: float = 0.0
    wall_time_s: float = 0.0
    controls: Controls | RegressionControls | None = None
    solver: SolverReport | None = None
    train_f1: float | None = Field(None, description="F1 of the same probe on its own training rows (to choose "
                                                      "a layer without looking at the test rows).")
    val_f1: float | None = Field(None, description="k=1 records: F1 on a validation split of the training rows of "
                                                    "a k=1 probe ranked and fitted on the rest of them (the layer "
                                                    "pick; never sees the test rows). None on other k and older files.")
    dense_fit: DenseFit | None = Field(None, description="Dense records: the C chosen on an inner split of the "
                                                          "training rows, with its grid (None on older files).")
    basis_key: str | None = Field(None, description="Content key of a trained basis (what it was fit on, how).")
    basis_flags: list[str] = Field(default_factory=list,
                                   description="Warnings about the basis, e.g. 'train-overlaps-test'.")

    @property
    def regression(self) -> bool:
        """A record of a regression card: metrics R2 / Spearman instead of F1."""
        return isinstance(self.metrics, RegressionMetrics)

    @property
    def f1(self) -> float:
        """The test F1 of a classification record (a regression record has none: TypeError)."""
        if isinstance(self.metrics, Metrics):
            return self.metrics.f1
        raise TypeError(f"a regression record ({self.provenance.dataset}) has no F1: read metrics.r2")

    @property
    def f1_controls(self) -> Controls | None:
        """The controls of a classification record (None for a regression record: see `controls`)."""
        return self.controls if isinstance(self.controls, Controls) else None

    @property
    def score(self) -> float:
        """The headline test metric: F1, or R2 on a regression card (see `metric_name`)."""
        return self.metrics.f1 if isinstance(self.metrics, Metrics) else self.metrics.r2

    @property
    def metric_name(self) -> str:
        return "R2" if self.regression else "F1"
