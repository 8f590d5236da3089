"""`probebank replicate`: the pre-registered findings file and its lock, each finding judged (and failed) on
hand-made records, and the command end to end on a tiny model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from probebank.cli import main
from probebank.errors import ConfigError
from probebank.probing.schema import Controls, Metrics, Provenance, ResultRecord
from probebank.results import judge
from probebank.results.preregistered import PACKAGED, load_findings, lock_path, register
from probebank.results.replicate import preregistered_layers, shuffle_labels_per_group

SPEC = load_findings().spec
STANDARD, PAPER = SPEC.protocols["standard"], SPEC.protocols["paper"]


def _rec(feature: str, layer: int, k: int, f1: float, rot: float, sel: float, seed: int = 0,
         dataset: str = "language-udhr", method: str = "f_stat", val: float | None = None) -> ResultRecord:
    prov = Provenance(probebank_version="t", model="m", model_revision="0", model_dtype="float32", dataset=dataset,
                      dataset_version="1", dataset_hash="h")
    return ResultRecord(provenance=prov, feature=feature, site="mlp", layer=layer, aggregation="mean",
                        method=method, k=k, seed=seed, n_train=60, n_test=40, n_train_pos=30, n_test_pos=20,
                        metrics=Metrics(f1=f1, accuracy=f1, precision=f1, recall=f1, mcc=0.0), units=[k],
                        controls=Controls(shuffled_f1=f1 - sel, selectivity=sel, rotation_f1=rot),
                        val_f1=val if k == 1 else None)


def _real(k1: float = 0.9, rot: float = 0.6, k_growth: float = 0.02, sel: float = 0.4,
          method: str = "f_stat") -> list[ResultRecord]:
    return [_rec(f, layer, k, min(1.0, k1 + k_growth * i - 0.1 * (layer == 0)), rot, sel, seed, method=method,
                 val=0.9 if layer == 1 else 0.5)
            for f in ("eng", "fra", "deu") for layer in (0, 1) for i, k in enumerate((1, 2, 4, 8)) for seed in range(5)]


def _shuffled(sel: float = 0.02) -> list[ResultRecord]:
    return [_rec(f, layer, k, 0.5, 0.5, sel) for f in ("eng", "fra") for layer in (0, 1) for k in (1, 2, 4, 8)]


def _categories(early_gain: float, middle_gain: float, rot: float = 0.6) -> list[ResultRecord]:
    """Two datasets (two categories), three features each; 12 layers: 0-3 early, 4-7 middle."""
    out = []
    for ds in ("bias-x", "factual-y"):
        for f in ("a", "b", "c"):
            for layer in (0, 3, 6):
                gain = early_gain if layer < 4 else middle_gain
                for seed in range(3):
                    out += [_rec(f, layer, 1, 0.7, rot, 0.3, seed, ds, val=0.7 + 0.01 * layer),
                            _rec(f, layer, 8, 0.7 + gain, rot, 0.3, seed, ds)]
    return out


CATEGORY_OF = {"bias-x": "bias", "factual-y": "factual"}


def test_the_packaged_findings_file_matches_its_lock() -> None:
    prereg = load_findings()
    assert prereg.path == PACKAGED and prereg.spec.version >= 1 and len(prereg.sha256) == 64
    assert set(prereg.spec.protocols) == {"standard", "paper"}
    assert {p.method for p in prereg.spec.protocols.values()} == {"f_stat", "mean_diff"}


def _copy(tmp_path: Path, edit=None) -> Path:
    raw = yaml.safe_load(PACKAGED.read_text())
    if edit:
        edit(raw)
    path = tmp_path / "findings.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    lock_path(path).write_text(lock_path(PACKAGED).read_text())
    return path


def test_a_threshold_edited_without_a_new_version_is_refused(tmp_path: Path) -> None:
    same = _copy(tmp_path)  # re-dumped without comments: the content hash is unchanged, so it loads
    assert load_findings(same).sha256 == load_findings().sha256

    def lower(raw: dict) -> None:
        raw["findings"]["single_neurons"]["pass"]["at_least"] = 0.5

    edited = _copy(tmp_path, lower)
    with pytest.raises(ConfigError, match="edited without a new version") as err:
        load_findings(edited)
    assert err.value.field == "version"
    assert main(["replicate", "--findings", str(edited), "--model", "tiny:llama"]) == 2
    with pytest.raises(ConfigError, match="already registered"):  # a registered version is never rewritten
        register(edited)

    def bump(raw: dict) -> None:
        lower(raw)
        raw["version"] = SPEC.version + 1

    bumped = _copy(tmp_path, bump)
    with pytest.raises(ConfigError, match="not registered"):
        load_findings(bumped)
    assert main(["replicate", "--findings", str(bumped), "--register"]) == 0
    assert load_findings(bumped).spec.threshold("single_neurons", "at_least") == 0.5
    assert f"{SPEC.version}: " in lock_path(bumped).read_text()  # the old version's hash is kept


def test_a_findings_file_with_a_missing_finding_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path, lambda raw: raw["findings"].pop("causal"))
    with pytest.raises(ConfigError, match="missing finding") as err:
        register(path)
    assert err.value.field == "findings"


def test_findings_pass_on_paper_like_records() -> None:
    real, shuffled = _real(), _shuffled()
    found = [judge.single_neurons(SPEC, "standard", STANDARD, real), judge.neuron_basis(SPEC, "standard", STANDARD, real),
             judge.grows_with_k(SPEC, "standard", STANDARD, real),
             judge.selectivity(SPEC, "standard", STANDARD, real, shuffled),
             judge.early_distributed(SPEC, "standard", STANDARD, _categories(0.25, 0.05), 12),
             judge.neuron_basis_by_category(SPEC, "standard", STANDARD, _categories(0.2, 0.0) + real,
                                            {**CATEGORY_OF, "language-udhr": "language"})]
    assert all(f.passed for f in found), [(f.name, f.figures) for f in found]
    single = found[0]
    assert single.figure == pytest.approx(0.9) and single.interval is not None  # layer 1, picked on validation
    assert "validation" in single.figures
    lo, hi = found[4].interval or (0, 0)
    assert lo == pytest.approx(0.2) and hi == pytest.approx(0.2) and found[4].figure == pytest.approx(0.2)


def test_the_paper_protocol_picks_the_layer_on_test_f1() -> None:
    # validation prefers layer 0 here; test F1 prefers layer 1 (0.9 against 0.8)
    real = [r.model_copy(update={"val_f1": None if r.val_f1 is None else (0.9 if r.layer == 0 else 0.5)})
            for r in _real(method="mean_diff")]
    assert judge.single_neurons(SPEC, "paper", PAPER, real).figure == pytest.approx(0.9)
    std = [r.model_copy(update={"method": "f_stat"}) for r in real]
    assert judge.single_neurons(SPEC, "standard", STANDARD, std).figure == pytest.approx(0.8)


def test_each_finding_can_fail() -> None:
    assert not judge.single_neurons(SPEC, "s", STANDARD, _real(k1=0.5)).passed
    assert not judge.neuron_basis(SPEC, "s", STANDARD, _real(rot=0.89)).passed
    few = [r for r in _real() if r.seed == 0 and r.feature == "eng"]  # 2 pairs: a sign-rank test cannot reach p < 0.01
    assert not judge.neuron_basis(SPEC, "s", STANDARD, few).passed
    assert not judge.grows_with_k(SPEC, "s", STANDARD, _real(k_growth=-0.03)).passed
    assert not judge.selectivity(SPEC, "s", STANDARD, _real(sel=0.1), _shuffled()).passed
    assert not judge.selectivity(SPEC, "s", STANDARD, _real(), _shuffled(sel=0.3)).passed
    assert not judge.early_distributed(SPEC, "s", STANDARD, _categories(0.05, 0.25), 12).passed
    assert not judge.neuron_basis_by_category(SPEC, "s", STANDARD, _categories(0.2, 0.0, rot=0.75), CATEGORY_OF).passed
    assert not judge.causal(SPEC, "s", []).passed
    assert not judge.single_neurons(SPEC, "s", PAPER, _real()).passed  # no mean_diff records at all


def test_cluster_interval_resamples_features_not_rows() -> None:
    tight = judge.cluster_mean_interval({"a": [0.5] * 50, "b": [0.5] * 50})
    assert tight == (0.5, 0.5)
    spread = judge.cluster_mean_interval({"a": [0.0] * 50, "b": [1.0] * 50, "c": [0.5] * 50})
    assert spread is not None and spread[0] < 0.3 and spread[1] > 0.7  # 150 rows, but only 3 features
    assert judge.cluster_mean_interval({"a": [1.0]}) is None


def test_preregistered_layers() -> None:
    assert preregistered_layers(30) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29]
    assert preregistered_layers(18) == [0, 3, 6, 9, 12, 15, 17]


def test_shuffle_labels_per_group_permutes_classes_within_each_group() -> None:
    groups = np.repeat(np.arange(30), 3)
    labels = np.tile([0, 1, 2], 30)
    out = shuffle_labels_per_group(labels, groups, 3, seed=0)
    assert all(sorted(out[groups == g]) == [0, 1, 2] for g in range(30))  # a bijection per group
    assert (out != labels).mean() > 0.4


def test_replicate_command_on_a_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def small(raw: dict) -> None:
        raw["categories"]["datasets"] = ["language-udhr", "factual-country-continent"]
        raw["causal"].update(draws=4, texts=2, max_tokens=8, languages=1)
        raw["version"] = 1

    path = _copy(tmp_path, small)
    lock_path(path).unlink()
    assert main(["replicate", "--findings", str(path), "--register"]) == 0
    code = main(["replicate", "--findings", str(path), "--model", "tiny:llama", "--layers", "0,1", "--limit", "10",
                 "--seeds", "0", "--out", str(tmp_path / "r"), "--no-progress"])
    out = capsys.readouterr().out
    assert "EXPLORATORY" in out and "standard" in out and "paper" in out and "findings hold" in out
    result = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert result["exploratory"] == ["layers", "limit", "seeds"] and result["findings_version"] == 1
    names = [(f["finding_protocol"], f["name"]) for f in result["findings"]]
    single = next(f for f in result["findings"] if f["name"] == "single_neurons")
    assert single["threshold"] == 0.75 and single["unit"] == "mean k=1 F1" and single["low"] <= single["estimate"]
    assert len(names) == 14 and ("paper", "causal") in names and ("standard", "early_distributed") in names
    assert code == (0 if all(f["passed"] for f in result["findings"]) else 1)
    causal = [json.loads(line) for line in (tmp_path / "r" / "causal.jsonl").read_text().splitlines()]
    assert len(causal) == 2 and all(c["settings"]["draws"] == 4 for c in causal)  # one language per protocol
    datasets = {json.loads(line)["provenance"]["dataset"] for line in
                (tmp_path / "r" / "records.jsonl").read_text().splitlines()}
    assert datasets == {"language-udhr", "factual-country-continent"}
    assert main(["replicate", "--findings", str(path), "--model", "tiny:llama", "--limit", "2", "--no-progress"]) == 2
