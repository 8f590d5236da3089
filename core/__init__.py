"""probebank: a bank of probing datasets and the engine that runs k-sparse probes on them.

The public API, for notebooks and scripts (each name loads its part of the engine on first use,
so `import probebank` stays fast):

    import probebank as pb

    outcome = pb.run(pb.RunConfig(datasets=["language-udhr"], layers=[6, 12]))
    catalog = pb.load_catalog()
    probe = pb.SparseProbe(k=4, method="f_stat").fit(X, y)     # a scikit-learn estimator
    ridge = pb.SparseRidgeProbe(k=4).fit(X, values)            # the same for a real-valued target (R2)

A dataset plugin needs only `from probebank import BuildContext, Example, RegisterDataset, hookimpl`
(docs/example-package is a complete one); the other contracts (`Layout`, the Protocols of sources,
models, methods and bases) are in probebank.contracts.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from probebank.version import __version__

_EXPORTS: dict[str, str] = {
    # the main job
    "run": "probebank.run", "RunConfig": "probebank.settings", "RunOutcome": "probebank.run",
    # datasets
    "load_catalog": "probebank.data.registry", "build_dataset": "probebank.data.examples",
    "BuildContext": "probebank.data.examples", "BuiltDataset": "probebank.data.examples",
    "DatasetCard": "probebank.data.schema",
    # plugins and their contracts
    "hookimpl": "probebank.hookspecs", "Example": "probebank.contracts", "Layout": "probebank.contracts",
    "RegisterDataset": "probebank.contracts",
    "get_registered": "probebank.plugins",
    # models and activations
    "load_model": "probebank.extract.providers", "LoadedModel": "probebank.extract.loaded",
    "extract": "probebank.extract.pipeline", "ExtractionPlan": "probebank.extract.plan",
    "ActivationStore": "probebank.extract.store",
    # probing
    "SparseProbe": "probebank.probing.probes", "DenseProbe": "probebank.probing.probes",
    "SparseRidgeProbe": "probebank.probing.regression", "DenseRidgeProbe": "probebank.probing.regression",
    "sweep_feature": "probebank.probing.sweep", "evaluate_store": "probebank.probing.evaluate",
    "Selector": "probebank.probing.selection", "get_selector": "probebank.probing.methods",
    "MilpSelector": "probebank.probing.exact.selector", "ProbeConfig": "probebank.probing.schema",
    "ResultRecord": "probebank.probing.schema",
    # results
    "read_records": "probebank.results.records", "summarise": "probebank.results.summary",
    # errors
    "ProbebankError": "probebank.errors", "ConfigError": "probebank.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'probebank' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what mypy and editors see (`X as X`: an explicit re-export, for mypy --strict users)
    from probebank.contracts import Example as Example
    from probebank.contracts import Layout as Layout
    from probebank.contracts import RegisterDataset as RegisterDataset
    from probebank.data.examples import BuildContext as BuildContext
    from probebank.data.examples import BuiltDataset as BuiltDataset
    from probebank.data.examples import build_dataset as build_dataset
    from probebank.data.registry import load_catalog as load_catalog
    from probebank.data.schema import DatasetCard as DatasetCard
    from probebank.errors import ConfigError as ConfigError
    from probebank.errors import ProbebankError as ProbebankError
    from probebank.extract.loaded import LoadedModel as LoadedModel
    from probebank.extract.pipeline import extract as extract
    from probebank.extract.plan import ExtractionPlan as ExtractionPlan
    from probebank.extract.providers import load_model as load_model
    from probebank.extract.store import ActivationStore as ActivationStore
    from probebank.hookspecs import hookimpl as hookimpl
    from probebank.plugins import get_registered as get_registered
    from probebank.probing.evaluate import evaluate_store as evaluate_store
    from probebank.probing.exact.selector import MilpSelector as MilpSelector
    from probebank.probing.methods import get_selector as get_selector
    from probebank.probing.probes import DenseProbe as DenseProbe
    from probebank.probing.probes import SparseProbe as SparseProbe
    from probebank.probing.regression import DenseRidgeProbe as DenseRidgeProbe
    from probebank.probing.regression import SparseRidgeProbe as SparseRidgeProbe
    from probebank.probing.schema import ProbeConfig as ProbeConfig
    from probebank.probing.schema import ResultRecord as ResultRecord
    from probebank.probing.selection import Selector as Selector
    from probebank.probing.sweep import sweep_feature as sweep_feature
    from probebank.results.records import read_records as read_records
    from probebank.results.summary import summarise as summarise
    from probebank.run import RunOutcome as RunOutcome
    from probebank.run import run as run
    from probebank.settings import RunConfig as RunConfig
