"""`probebank replicate`: the findings logic on hand-made records, and the command end to end on a tiny model."""
from __future__ import annotations

import numpy as np

from probebank.cli import main
from probebank.probing.schema import Controls, Metrics, Provenance, ResultRecord
from probebank.results.replicate import findings, shuffle_labels_per_group

PROV = Provenance(probebank_version="t", model="m", model_revision="0", model_dtype="float32", dataset="d",
                  dataset_version="1", dataset_hash="h")


def _rec(feature: str, layer: int, k: int, f1: float, rot: float, sel: float, seed: int = 0) -> ResultRecord:
    return ResultRecord(provenance=PROV, feature=feature, site="mlp", layer=layer, aggregation="mean",
                        method="f_stat", k=k, seed=seed, n_train=60, n_test=40, n_train_pos=30, n_test_pos=20,
                        metrics=Metrics(f1=f1, accuracy=f1, precision=f1, recall=f1, mcc=0.0), units=[k],
                        controls=Controls(shuffled_f1=f1 - sel, selectivity=sel, rotation_f1=rot))


def _real(k1: float = 0.9, rot: float = 0.6, k_growth: float = 0.02, sel: float = 0.4) -> list[ResultRecord]:
    return [_rec(f, layer, k, min(1.0, k1 + k_growth * i - 0.1 * (layer == 0)), rot, sel, seed)
            for f in ("eng", "fra") for layer in (0, 1) for i, k in enumerate((1, 2, 4, 8)) for seed in range(5)]


def _shuffled(sel: float = 0.02) -> list[ResultRecord]:
    return [_rec(f, layer, k, 0.5, 0.5, sel) for f in ("eng", "fra") for layer in (0, 1) for k in (1, 2, 4, 8)]


def test_findings_pass_on_paper_like_records() -> None:
    found = findings(_real(), _shuffled())
    assert [f.name for f in found] == ["single neurons", "neuron basis privileged", "F1 grows with k", "selectivity"]
    assert all(f.passed for f in found), found
    assert "0.900" in found[0].figures  # best layer 1: k=1 F1 0.9


def test_single_neuron_finding_uses_the_layer_picked_on_training_f1() -> None:
    # Layer 1 wins on test (0.9) but layer 0 wins on training F1: the finding scores layer 0 (0.8).
    real = [r.model_copy(update={"train_f1": 1.0 if r.layer == 0 else 0.7}) for r in _real()]
    found = findings(real, _shuffled())[0]
    assert "mean 0.800" in found.figures and "picked on training F1" in found.figures and found.passed
    assert not findings([r.model_copy(update={"metrics": r.metrics.model_copy(update={"f1": 0.5})})
                         if r.layer == 0 else r for r in real], _shuffled())[0].passed
    assert "picked on test F1" in findings(_real(), _shuffled())[0].figures  # records without train_f1


def test_each_finding_can_fail() -> None:
    assert not findings(_real(k1=0.5), _shuffled())[0].passed
    assert not findings(_real(rot=0.89), _shuffled())[1].passed  # neuron 0.8 / 0.9 by layer: loses on average
    few = [r for r in _real() if r.seed == 0]  # 4 pairs: a sign-rank test cannot reach p < 0.01
    assert not findings(few, _shuffled())[1].passed
    assert not findings(_real(k_growth=-0.03), _shuffled())[2].passed
    assert not findings(_real(sel=0.1), _shuffled())[3].passed
    assert not findings(_real(), _shuffled(sel=0.3))[3].passed


def test_shuffle_labels_per_group_permutes_classes_within_each_group() -> None:
    groups = np.repeat(np.arange(30), 3)
    labels = np.tile([0, 1, 2], 30)
    out = shuffle_labels_per_group(labels, groups, 3, seed=0)
    assert all(sorted(out[groups == g]) == [0, 1, 2] for g in range(30))  # a bijection per group
    assert (out != labels).mean() > 0.4


def test_replicate_command_on_a_tiny_model(tmp_path, capsys) -> None:
    code = main(["replicate", "--model", "tiny:llama", "--layers", "0,1", "--limit", "10", "--seeds", "0",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    out = capsys.readouterr().out
    assert "single neurons" in out and "selectivity" in out and "findings hold" in out
    n_pass = int(out.split("findings hold")[0].split()[-1].split("/")[0])
    assert code == (0 if n_pass == 4 else 1)
    assert (tmp_path / "r" / "records.jsonl").stat().st_size > 0
    assert (tmp_path / "r" / "shuffled.records.jsonl").stat().st_size > 0
    assert main(["replicate", "--model", "tiny:llama", "--limit", "2", "--no-progress"]) == 2
