"""The `causal` record kind: one causal check of a found unit (or k-set), with its provenance.

Records are JSON lines in `causal.jsonl` (a results folder's, or the cache entry of one check).
`probebank schema CausalRecord` prints the JSON Schema.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from probebank.contracts import Site
from probebank.data.schema import Strict
from probebank.jsonl import read_jsonl
from probebank.paths import cache_dir
from probebank.probing.schema import Provenance

CAUSAL_FILE = "causal.jsonl"

Ablation = Literal["mean", "zero", "resample"]


class CausalSettings(Strict):
    """How a causal check is run; part of its cache key."""

    mode: Ablation = Field("mean", description="mean (over the dataset's stored rows), zero, or resample (a "
                                               "random example's stored row per text).")
    draws: int = Field(100, ge=1, le=100_000, description="Random matched-variance unit sets in the null.")
    texts: int = Field(16, ge=2, description="Test texts per class (the feature's own, and control texts).")
    max_tokens: int = Field(64, ge=2, description="Tokens per text in the ablation passes.")
    relevant_tokens: int = Field(32, ge=1, description="How many feature-relevant tokens the probability counts.")
    steer_scale: float = Field(1.0, description="Steering adds this times the class-mean difference.")
    seed: int = Field(0, description="Seed of the text choice, the null draws and resample ablation.")
    batch_tokens: int = Field(4096, ge=16, description="Padded tokens per forward pass.")


class NullSummary(Strict):
    """The null distribution of one statistic, and where the observed value falls in it."""

    observed: float
    mean: float
    sd: float
    p_value: float = Field(gt=0, le=1, description="Add-one permutation p: (1 + #{null as extreme}) / (1 + draws).")
    alternative: Literal["greater", "less"] = Field(description="The direction called extreme.")
    draws: int
    values: list[float] = Field(default_factory=list, description="Every null draw, in draw order.")


class SteeringResult(Strict):
    """Steering the control texts by the units' class-mean difference, read by a later layer's probe."""

    scale: float
    probe_layer: int
    probe_method: str
    probe_k: int
    probe_units: list[int]
    probe_f1: float = Field(description="The downstream probe's test F1 in its record.")
    probe_f1_reproduced: float = Field(description="The same F1 recomputed from the store (equal when the probe "
                                                   "was rebuilt exactly).")
    n_rows: int = Field(description="Control rows read by the probe.")
    n_eligible: int = Field(description="Control rows the probe called negative before steering.")
    flip_rate: float | None = Field(description="Share of eligible rows called positive after steering.")
    flip_null: NullSummary | None = None
    logit_shift: float = Field(description="Mean change of the probe's log-odds on the control rows.")
    logit_shift_null: NullSummary | None = None
    difference: list[float] = Field(description="The class-mean difference added (before scaling), per unit.")


class CausalRecord(Strict):
    """One causal check: ablating `units` of (site, layer) against random units of matched variance."""

    kind: Literal["causal"] = "causal"
    key: str = Field(description="Content key of the check (its cache entry).")
    provenance: Provenance
    feature: str
    site: Site
    layer: int
    units: list[int]
    source_method: str = Field(description="The probe that found the units (method, k, seed below).")
    source_k: int
    source_seed: int
    source_f1: float
    settings: CausalSettings
    ablation_values: list[float] = Field(description="What the units were set to (mean/zero); for resample, "
                                                      "their mean over the rows (the values drawn vary by text).")
    device: str = Field("cpu", description="Where the check's forward passes ran.")
    n_feature_texts: int
    n_control_texts: int
    relevant_token_ids: list[int] = Field(default_factory=list)
    relevant_tokens: list[str] = Field(default_factory=list, description="The same tokens, decoded.")
    clean_loss_feature: float = Field(description="Mean next-token loss (nats/token) on the feature's texts.")
    clean_loss_control: float
    ablated_loss_feature: float
    ablated_loss_control: float
    loss: NullSummary = Field(description="Loss effect: change on the feature's texts minus change on the controls.")
    relevant: NullSummary = Field(description="Change of the log-mass on the feature's relevant tokens, feature's "
                                              "texts minus controls.")
    variance_ratio: list[float] = Field(description="var(null unit) / var(found unit) over all draws: 5th, 50th "
                                                    "and 95th percentile.")
    steering: SteeringResult | None = None
    steering_note: str | None = Field(None, description="Why steering was not run, when it was not.")
    wall_time_s: float = 0.0

    CELLS: ClassVar[tuple[str, ...]] = ("dataset / feature", "units", "ablation", "loss effect", "null mean ± sd",
                                        "p", "steering flip rate (p)")

    def cells(self) -> list[str]:
        """One table row (the columns of CELLS) for the report's neuron pages."""
        st, loss = self.steering, self.loss
        steer = "" if st is None or st.flip_rate is None else (
            f"{st.flip_rate:.2f}" + (f" (p = {st.flip_null.p_value:.3g})" if st.flip_null is not None else ""))
        return [f"{self.provenance.dataset} / {self.feature}", str(self.units), self.settings.mode,
                f"{loss.observed:+.4f}", f"{loss.mean:+.4f} ± {loss.sd:.4f}", f"{loss.p_value:.3g}", steer]

    def summary(self) -> str:
        """One line for a neuron card."""
        flip = ""
        st = self.steering
        if st is not None and st.flip_null is not None and st.flip_rate is not None:
            flip = (f"; steering x{st.scale:g} flips {st.flip_rate:.2f} of the layer-{st.probe_layer} probe's control "
                    f"rows (null {st.flip_null.mean:.2f}, p = {st.flip_null.p_value:.3g})")
        loss = self.loss
        return (f"{self.provenance.dataset} / {self.feature}: {self.settings.mode}-ablating units {self.units} raises "
                f"the loss on the feature's texts by {loss.observed:+.4f} nats/token more than on the controls (null "
                f"{loss.mean:+.4f} ± {loss.sd:.4f}, p = {loss.p_value:.3g}, {loss.draws} draws){flip}")


def read_causal(path: Path) -> list[CausalRecord]:
    """The causal records of a file, or of every causal.jsonl below a folder."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob(CAUSAL_FILE))
    out: list[CausalRecord] = []
    for f in files:
        out += read_jsonl(f, CausalRecord, what="causal record", fix="run the check again with "
                          "`probebank inspect MODEL LAYER UNIT --ablate`")
    return out


def add_causal(path: Path, records: Iterable[CausalRecord]) -> int:
    """Append records to a causal.jsonl unless one with the same key is there; returns how many were added."""
    path = Path(path)
    seen = {r.key for r in read_causal(path)} if path.is_file() else set()
    new = [r for r in records if r.key not in seen]
    with open(path, "a", encoding="utf-8") as f:
        for r in new:
            f.write(r.model_dump_json() + "\n")
    return len(new)


def folder_records(results: Iterable[Path]) -> list[CausalRecord]:
    """The causal records of results folders (their causal.jsonl files; other files are skipped)."""
    out: list[CausalRecord] = []
    for path in map(Path, results):
        if path.is_dir() or path.name == CAUSAL_FILE:
            out += read_causal(path) if path.exists() else []
    return out


def cached_records() -> list[CausalRecord]:
    """Every causal record kept in the cache (one per entry of causal/<key>/)."""
    out: list[CausalRecord] = []
    for path in sorted(cache_dir("causal").glob(f"*/{CAUSAL_FILE}")):
        out += read_causal(path)
    return out


def unit_checks(records: Iterable[CausalRecord], model: str, site: str, layer: int, unit: int) -> list[CausalRecord]:
    """The checks of this unit (alone or in a k-set), fewest units first."""
    mine = [r for r in records if (r.provenance.model, r.site, r.layer) == (model, site, layer) and unit in r.units]
    return sorted(mine, key=lambda r: (len(r.units), r.provenance.dataset, r.feature, r.settings.mode))
