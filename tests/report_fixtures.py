"""Shared by the leaderboard, HTML report and inspect tests: synthetic records and one real tiny run.

Synthetic records follow the ResultRecord schema exactly (with and without controls), so the
ranking arithmetic can be checked against hand-computed numbers.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from probebank.probing.schema import DEFAULT_K_GRID, Controls, Metrics, Provenance, ResultRecord
from probebank.results.records import append_records
from probebank.run import RunConfig, run

TINY_DATASETS = ["factual-country-continent", "safety-harmful-requests"]  # author-written: no download


def record(model: str, dataset: str, feature: str, layer: int, k: int, f1: float, *, method: str = "mean_diff",
           seed: int = 0, basis: str = "identity", selectivity: float | None = None, rotation: float | None = None,
           width: int = 512,
           revision: str = "rev0", units: list[int] | None = None, n_train: int = 40, n_train_pos: int = 20) -> ResultRecord:
    metrics = Metrics(f1=f1, accuracy=f1, precision=f1, recall=f1, mcc=2 * f1 - 1)
    controls = None if selectivity is None else Controls(shuffled_f1=f1 - selectivity, selectivity=selectivity,
                                                         rotation_f1=rotation)
    return ResultRecord(
        provenance=Provenance(probebank_version="0.1.0", model=model, model_revision=revision, model_dtype="float32",
                              dataset=dataset, dataset_version="1.0", dataset_hash="h-" + dataset),
        feature=feature, site="mlp", layer=layer, aggregation="mean", basis=basis, method=method, k=k, seed=seed,
        n_train=n_train, n_test=20, n_train_pos=n_train_pos, n_test_pos=10, metrics=metrics,
        units=units if units is not None else list(range(7, 7 + min(k, width))) if method != "dense" else [],
        controls=controls)


def sweep(model: str, dataset: str, feature: str, score: Callable[[int, int], float], *, layers=(0, 1, 2),
          ks=DEFAULT_K_GRID, dense: float | None = 0.9, width: int = 512, **kw) -> list[ResultRecord]:
    """One feature's records over layers x k (score(layer, k) -> F1), plus a dense record per layer."""
    out = []
    for layer in layers:
        for k in ks:
            if k < width:
                out.append(record(model, dataset, feature, layer, k, score(layer, k), width=width, **kw))
        if dense is not None:
            kw_dense = {k: v for k, v in kw.items() if k not in ("method", "selectivity", "rotation", "units")}
            out.append(record(model, dataset, feature, layer, width, dense, method="dense", width=width, units=[],
                              **kw_dense))
    return out


def write_folder(folder: Path, records: list[ResultRecord]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    append_records(folder / "records.jsonl", records)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `probebank run` of the tiny random llama on two author-written registry datasets (limit 20)."""
    out = tmp_path_factory.mktemp("tiny-run")
    outcome = run(RunConfig(model="tiny:llama", datasets=TINY_DATASETS, limit=20, out=out, progress=False),
                  log=lambda m: None)
    assert outcome.n_records > 0 and not outcome.skipped
    return out
