"""Honest defaults: val_f1 from the training rows only, the layer picked on it, and --protocol standard|paper."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import sweep, write_folder
from synthetic_store import ArrayStore, planted

import probebank.probing.evaluate as evaluate
from probebank.cli import main
from probebank.data.splits import FeatureSplit
from probebank.errors import ConfigError
from probebank.probing.schema import ProbeConfig
from probebank.results.summary_cache import summary_of
from probebank.settings import RunConfig

CFG = ProbeConfig(methods=["mean_diff", "f_stat"], k_grid=[1, 2, 4], seeds=[0, 1], dense=True)


def _records(p, store=None, cfg: ProbeConfig = CFG) -> list:
    return list(evaluate.evaluate_store(store or p.store, p.built, p.provenance, cfg, ["mlp"], [0, 1], progress=False))


def test_val_f1_is_on_k1_records_only_and_finds_the_planted_layer() -> None:
    recs = _records(planted())
    k1 = [r for r in recs if r.k == 1 and r.method != "dense"]
    assert k1 and all(r.val_f1 is not None and 0.0 <= r.val_f1 <= 1.0 for r in k1)
    assert all(r.val_f1 is None for r in recs if r.k != 1 or r.method == "dense")
    planted_layer = [r.val_f1 for r in k1 if r.layer == 0]
    noise_layer = [r.val_f1 for r in k1 if r.layer == 1]
    assert min(planted_layer) > 0.85 and max(noise_layer) < min(planted_layer)


def test_validation_rows_are_training_rows_split_by_group() -> None:
    p = planted()
    rows = p.store.rows()
    groups = np.asarray(p.built.dataset["group"])[rows["example"]]
    for sp in evaluate.feature_splits(p.built, rows, seeds=[0, 1]):
        inner = evaluate.validation_split(p.built, rows, sp)
        assert inner is not None
        tr, va = (sp.train[i] for i in inner)  # positions into the training rows -> row indices
        assert not set(tr) & set(va) and set(tr) | set(va) == set(sp.train)
        assert not set(va) & set(sp.test)
        assert not set(groups[tr]) & set(groups[va])  # grouped: no group on both sides
        assert abs(va.size / sp.train.size - evaluate.VAL_SHARE) < 0.05
        assert 0 < sp.y_train[inner[1]].mean() < 1  # stratified: both classes in validation


def test_val_f1_never_reads_the_test_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Same split (one seed: another seed's test rows are training rows); then the test rows' labels are
    # permuted and their activations replaced by noise: every test F1 may move, val_f1 must not.
    p = planted()
    cfg = CFG.model_copy(update={"seeds": [0]})
    real_splits = evaluate.feature_splits
    before = _records(p, cfg=cfg)
    rng = np.random.default_rng(7)

    def scrambled(*args, **kwargs) -> list[FeatureSplit]:
        return [FeatureSplit(sp.feature, sp.seed, sp.train, sp.test, sp.y_train, rng.permutation(sp.y_test))
                for sp in real_splits(*args, **kwargs)]

    monkeypatch.setattr(evaluate, "feature_splits", scrambled)
    rows = p.store.rows()
    (split,) = real_splits(p.built, rows, seeds=cfg.seeds)
    layers = {}
    for layer in (0, 1):
        X = np.array(p.store.layer("mlp", layer), copy=True)
        X[split.test] = rng.standard_normal((split.test.size, X.shape[1]))
        layers[layer] = X
    after = _records(p, ArrayStore(layers, rows["label"], rows["token"]), cfg=cfg)
    key = lambda r: (r.layer, r.seed, r.method, r.k)  # noqa: E731
    val_before = {key(r): r.val_f1 for r in before if r.val_f1 is not None}
    val_after = {key(r): r.val_f1 for r in after if r.val_f1 is not None}
    assert val_before and val_after == val_before
    test_before = {key(r): r.f1 for r in before}
    assert any(abs(test_before[key(r)] - r.f1) > 0.05 for r in after)  # the scrambling did reach the test F1


def test_summary_of_follows_the_pick(tmp_path: Path) -> None:
    # layer 2 best on test F1, layer 0 best on validation F1: the cached summary keys on the pick
    recs = [r.model_copy(update={"val_f1": 0.9 if r.layer == 0 else 0.5}) if r.k == 1 else r
            for r in sweep("A", "d1", "x", lambda layer, k: 0.5 + 0.1 * layer)]
    folder = write_folder(tmp_path / "run", recs)
    (val,), _ = summary_of(folder / "records.jsonl")
    (test,), _ = summary_of(folder / "records.jsonl", pick="test")
    assert (val["best_layer"], val["layer_picked_on"], val["layer_by_test"]) == (0, "validation", 2)
    assert (test["best_layer"], test["layer_picked_on"]) == (2, "test")
    assert val["f1_k1"] == pytest.approx(0.5) and val["f1_k1_test_picked"] == pytest.approx(0.7)


def test_results_command_picks_as_the_run_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = [r.model_copy(update={"val_f1": 0.9 if r.layer == 0 else 0.5}) if r.k == 1 else r
            for r in sweep("A", "d1", "x", lambda layer, k: 0.5 + 0.1 * layer)]
    for protocol, layer in (("standard", 0), ("paper", 2)):
        folder = write_folder(tmp_path / protocol, recs)
        (folder / "run.json").write_text(json.dumps({"config": {"protocol": protocol}}))
        capsys.readouterr()
        assert main(["results", str(folder), "--format", "json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["best_layer"] == layer


def test_default_protocol_ranks_by_a_standardised_statistic() -> None:
    assert RunConfig().methods == ["f_stat"] and RunConfig().protocol == "standard"
    assert RunConfig().layer_pick == "validation"
    paper = RunConfig(protocol="paper")
    assert paper.methods == ["mean_diff"] and paper.layer_pick == "test"
    assert RunConfig(protocol="paper", methods=["l1"]).methods == ["l1"]  # --methods wins over the protocol
    with pytest.raises(ConfigError) as err:
        RunConfig(protocol="papers")
    assert err.value.field == "--protocol"
