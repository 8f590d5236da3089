"""Every setting of a run, checked before any model, dataset or heavy library loads.

`RunConfig` validates each value as it is made (a ConfigError names the option and the fix); `preflight`
then checks what needs the catalog and the plugins: dataset and suite names, the model (a path that does
not exist is named as such), its layers (from what the model's files say, probebank.extract.describe),
method and basis names, each with a did-you-mean. Nothing here imports torch, so a typo is answered in
under a second; only the method and basis names need scikit-learn (their plugins register classes built
on it: about 2 s more), so they come last. `probebank run` calls it before it imports the engine
(probebank.run), which checks the methods' and bases' settings next, still before loading the model.
"""
from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from probebank.contracts import Site
from probebank.data.registry import Catalog, load_catalog
from probebank.errors import ConfigError, MissingExtra, extra_fix
from probebank.extract.describe import check_layers, check_model, check_revision, known_layers
from probebank.plugins import get_registered
from probebank.probing.schema import DEFAULT_K_GRID
from probebank.specs import parse_specs

# probebank.extract.device.DEVICE_CHOICES (that module imports torch; tests/test_first_hour.py keeps them equal)
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
DEFAULT_MODEL = "smollm2-135m"
DEFAULT_SUITE = "quick"
# --protocol: standard (the default) ranks units by a standardised statistic and picks each feature's layer on
# a validation split of the training rows; paper is Gurnee et al.'s raw mean difference, layer picked on test F1.
PROTOCOL_METHODS = {"standard": "f_stat", "paper": "mean_diff"}
PROTOCOL_PICK = {"standard": "validation", "paper": "test"}  # probebank.results.summary.summarise(pick=...)
DEFAULT_SEEDS = (0, 1, 2)  # three grouped splits: the 95% intervals of the summary are t intervals over them


# The command-line option behind each setting, and how to put a bad value right.
OPTIONS: dict[str, tuple[str, str]] = {
    "model": ("--model", "give a registered model name, a .gguf file or a model folder"),
    "revision": ("--revision", "give a hub branch, tag or commit, or leave it out"),
    "datasets": ("--datasets", "give comma-separated dataset names (`probebank list`)"),
    "suite": ("--suite", "give a suite of registry.yaml, e.g. quick or bank"),
    "sites": ("--sites", "use mlp, resid and/or attn"),
    "layers": ("--layers", "give layer indices, e.g. 0,6,12 or 0-11 (negative counts from the end)"),
    "methods": ("--methods", "give at least one selection method, e.g. mean_diff,f_stat"),
    "protocol": ("--protocol", "use standard (f_stat, layer picked on validation F1) or paper (mean_diff, "
                               "layer picked on test F1)"),
    "limit": ("--limit", "give at least 1 example per class, or leave it out for the suite's limit"),
    "out": ("--out", "give a folder for the results"),
    "include": ("--include", "give folders of cards and plugin modules"),
    "seeds": ("--seeds", "give distinct non-negative split seeds, e.g. 0,1,2"),
    "k_grid": ("--k-grid", "give distinct positive k, e.g. 1,2,4,8"),
    "batch_size": ("--batch-size", "give at least 1 sequence per forward pass (16 is the fast default on CPU)"),
    "max_batch_tokens": ("--max-batch-tokens", "give at least 1 padded token per forward pass, or leave it out"),
    "store_dtype": ("--store-dtype", "use float16 or uint8"),
    "device": ("--device", f"use {DEVICE_CHOICES}"),
    "dtype": ("--dtype", "use auto, float32, bfloat16 or float16"),
    "bases": ("--bases", "give at least one basis, e.g. identity,pca"),
    "workers": ("--workers", "give at least 1 worker process, or leave it out for one per core"),
    "executor": ("--executor", "use local or ray"),
    "ray_address": ("--ray-address", "give the address `ray start --head` printed, or leave it out"),
    "test_on": ("--test-on", "give the name of a test set that the datasets' cards list under test_sets, e.g. ood"),
}


class RunConfig(BaseModel):
    """Every setting of a run, validated when it is made: a bad one is a ConfigError naming its option,
    before any model is loaded or any file written."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: str = Field(DEFAULT_MODEL, min_length=1)
    revision: str | None = Field(None, min_length=1)  # a hub model's branch, tag or commit (hf provider)
    datasets: list[str] | None = None
    suite: str | None = None
    sites: list[Site] = Field(default_factory=lambda: list[Site](["mlp"]), min_length=1)
    layers: list[int] | None = None
    protocol: Literal["standard", "paper"] = "standard"
    methods: list[str] = Field(default_factory=list, min_length=1)  # empty or left out: the protocol's method
    limit: int | None = Field(None, ge=1)
    out: Path = Path("probebank-out")
    include: list[Path] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: list(DEFAULT_SEEDS), min_length=1)
    k_grid: list[int] = Field(default_factory=lambda: list(DEFAULT_K_GRID), min_length=1)
    batch_size: int = Field(16, ge=1)
    max_batch_tokens: int | None = Field(None, ge=1)  # None: --batch-size on the CPU, from free memory on a GPU
    store_dtype: Literal["float16", "uint8"] = "float16"
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    dense: bool = True
    progress: bool = True
    bases: list[str] = Field(default_factory=lambda: ["identity"], min_length=1)  # unsupervised bases to probe
    controls: bool = True          # shuffled-label, random-rotation and token-identity controls
    random_init: bool = False      # also probe a random-init copy of the model (a second extraction)
    workers: int | None = Field(None, ge=1)  # probe worker processes (local) or CPUs (a local Ray); None: the cores
    executor: Literal["local", "ray"] = "local"  # who runs the probe units (probebank.scale)
    ray_address: str | None = Field(None, min_length=1)  # an existing Ray cluster (--executor ray)
    test_on: str | None = Field(None, min_length=1)  # score on each card's test set of this name (test_sets)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _protocol_method(cls, data: Any) -> Any:
        """No --methods: the protocol's ranking (f_stat for standard, the paper's mean_diff for paper)."""
        if isinstance(data, dict) and not data.get("methods"):
            protocol = data.get("protocol") or "standard"
            data = {**data, "methods": [PROTOCOL_METHODS.get(protocol, "f_stat")]}
        return data

    @property
    def layer_pick(self) -> str:
        """How the summary picks each feature's best layer (probebank.results.summary.LAYER_PICKS)."""
        return PROTOCOL_PICK[self.protocol]

    @field_validator("seeds", "k_grid")
    @classmethod
    def _distinct(cls, v: list[int], info: ValidationInfo) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("values must be distinct")
        if info.field_name == "seeds" and min(v) < 0 or info.field_name == "k_grid" and min(v) < 1:
            raise ValueError("values out of range")
        return v


def _config_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "config"
    option, fix = OPTIONS.get(name, (name, "see `probebank run --help`"))
    got = err.get("input")
    return ConfigError(f"{err['msg']} (got {got!r})" if not isinstance(got, dict) else err["msg"],
                       field=option, fix=fix)




def _selected(config: RunConfig, catalog: Catalog) -> tuple[list[str], int | None]:
    """The run's datasets (--datasets, or the suite's) and their --limit (the suite's when not given)."""
    if config.datasets and config.suite:
        raise ConfigError("give either --datasets or --suite, not both", field="--datasets",
                          fix="drop one of the two options")
    if config.datasets:
        for name in config.datasets:
            catalog.get(name)  # raises with a did-you-mean
        return list(config.datasets), config.limit
    name = config.suite or DEFAULT_SUITE
    if name not in catalog.suites:
        raise ConfigError(f"no suite named '{name}'", field="--suite",
                          fix=did_you_mean(name, catalog.suites) + f"use one of: {', '.join(sorted(catalog.suites))}")
    suite = catalog.suite(name)
    return list(suite.datasets), config.limit if config.limit is not None else suite.limit


def _check_test_on(config: RunConfig, names: list[str], catalog: Catalog) -> None:
    """--test-on: every dataset of the run names that test set, a classification dataset with the same classes."""
    test_on = config.test_on
    if test_on is None:
        return
    if config.random_init or any(b != "identity" for b in config.bases):
        raise ConfigError("--test-on scores neuron probes of the model itself; it does not combine with "
                          "--random-init or --bases yet", field="--test-on",
                          fix="run those without --test-on, or drop --random-init / --bases")
    missing = [n for n in names if test_on not in catalog.get(n).card.test_sets]
    if missing:
        having = sorted(n for n, e in catalog.entries.items() if test_on in e.card.test_sets)
        suites = sorted(s for s, spec in catalog.suites.items()
                        if spec.datasets and all(test_on in catalog.get(d).card.test_sets for d in spec.datasets))
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        fix = ("no card names a test set of that name: leave out --test-on" if not having else
               "run only datasets whose card lists it under test_sets: "
               + (f"--suite {suites[0]}, or " if suites else "") + f"--datasets {','.join(having[:3])}"
               + (" (`probebank list` shows the rest)" if len(having) > 3 else ""))
        raise ConfigError(f"{len(missing)} of the run's {len(names)} datasets have no test set '{test_on}': {shown}",
                          field="--test-on", fix=fix)
    for name in names:
        card, test = catalog.get(name).card, catalog.get(catalog.get(name).card.test_sets[test_on]).card
        if card.labels.type == "regression" or (test.labels, test.aggregation) != (card.labels, card.aggregation):
            raise ConfigError(f"the test set '{test_on}' of {name} ({test.name}) is not scored like it: it needs the "
                              "same classes and aggregation, and a classification label", field="--test-on",
                              fix=f"fix test_sets in the card of {name}, or run it without --test-on")


@dataclass
class Checked:
    """What preflight found: the datasets to run, their limit, the layers when the model's files tell them,
    and the catalog it read."""

    datasets: list[str]
    limit: int | None
    layers: list[int] | None
    catalog: Catalog


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'did you mean X or Y? ' for a close match among `choices` (difflib), else ''."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    close += [c for c in choices if c not in close and (name in c or c in name)][: 3 - len(close)]
    return f"did you mean {' or '.join(close)}? " if close else ""


def _known(kind: str, option: str, names: Iterable[str], registered: Iterable[str]) -> None:
    choices = sorted(registered)
    for name in names:
        if name not in choices:
            raise ConfigError(f"unknown {kind} '{name}'", field=option,
                              fix=did_you_mean(name, choices) + f"use one of: {', '.join(choices)}")


def _check_executor(config: RunConfig) -> None:
    """--executor ray needs the `ray` extra; --ray-address means nothing to the local executor."""
    if config.ray_address and config.executor != "ray":
        raise ConfigError("--ray-address is for the Ray executor", field="--ray-address",
                          fix="add --executor ray, or drop --ray-address")
    if config.executor == "ray" and importlib.util.find_spec("ray") is None:  # found without importing it
        raise MissingExtra("--executor ray needs the Python package 'ray', which is not installed",
                           fix=extra_fix("ray"))


def preflight(config: RunConfig) -> Checked:
    """Check every setting that needs no model weights and no heavy library, in order of cost."""
    device = (config.device or "auto").strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):  # whether this machine has it: at the run
        raise ConfigError(f"'{config.device}' is not a device", field="--device",
                          fix=did_you_mean(device, ["auto", "cpu", "cuda", "mps"]) + f"use {DEVICE_CHOICES}")
    _check_executor(config)
    catalog = load_catalog(config.include)
    names, limit = _selected(config, catalog)
    _check_test_on(config, names, catalog)
    registered = get_registered(config.include)
    check_model(config.model, config.include)  # unknown names (with a did-you-mean) and missing paths
    check_revision(config.model, config.revision, config.include)  # imports the provider only with --revision
    layers = None
    known = known_layers(config.model, include=config.include)
    if known is not None:
        layers = check_layers(config.layers, *known) if config.layers else list(range(known[1]))
    _known("selection method", "--methods", [s.name for s in parse_specs(
        config.methods, option="--methods", example="mean_diff,milp:objective=logistic")], registered.methods)
    _known("basis", "--bases", [s.name for s in parse_specs(
        config.bases, option="--bases", example="identity,pca,sae-topk:k=16")], registered.bases)
    return Checked(names, limit, layers, catalog)
