"""Leaderboard arithmetic (best layer, k-curve AUC, mean and Borda ranks, refusals), merging, submit --check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import record, sweep, tiny_run, write_folder  # noqa: F401  (tiny_run is a fixture)

from probebank.cli import main
from probebank.errors import ConfigError
from probebank.results.leaderboard import borda, build_leaderboard, k_curve_auc, load_results
from probebank.results.leaderboard_format import render_csv, render_markdown
from probebank.results.submit import check_folder

CATS = {"d1": "factual", "d2": "factual", "d3": "syntax"}


def _model(folder: Path, model: str, k1: dict[str, float], selectivity: float | None = None) -> Path:
    """Records of one model: on each dataset, layer 2 is best with k=1 F1 = k1[dataset]; other layers 0.3 lower."""
    recs = []
    for ds, top in k1.items():
        recs += sweep(model, ds, "pos", lambda layer, k, top=top: max(0.0, top - (0.0 if layer == 2 else 0.3))
                      + (0.01 if k == 16 else 0.0), selectivity=selectivity)
    return write_folder(folder / model, recs)


@pytest.fixture
def three_models(tmp_path: Path) -> list[Path]:
    # Mean ranks A first (0.6 > 0.5 > 0.425) but Borda ranks B first (3 > 2 > 1): they must disagree.
    return [_model(tmp_path, "A", {"d1": 1.0, "d2": 0.2, "d3": 0.7}, selectivity=0.25),
            _model(tmp_path, "B", {"d1": 0.5, "d2": 0.5, "d3": 0.6}),
            _model(tmp_path, "C", {"d1": 0.4, "d2": 0.45, "d3": 0.9})]


def test_best_layer_scores_and_ranks_by_mean_and_borda(three_models: list[Path]) -> None:
    lb = build_leaderboard(three_models, by="model", categories=CATS)
    a_d1 = next(f for f in lb.features if f.entry == "A" and f.dataset == "d1")
    assert a_d1.best_layer == 2 and a_d1.f1_k1 == pytest.approx(1.0) and a_d1.f1_k16 == pytest.approx(1.01)
    assert a_d1.f1_dense == pytest.approx(0.9) and a_d1.selectivity == pytest.approx(0.25)
    assert next(f for f in lb.features if f.entry == "B").selectivity is None
    factual = next(c for c in lb.rankings if c.category == "factual")
    assert not factual.refused and factual.datasets == ["d1", "d2"]
    rows = {r.entry: r for r in factual.rows}
    assert rows["A"].mean == pytest.approx(0.6) and rows["B"].mean == pytest.approx(0.5)
    assert [rows[e].mean_rank for e in "ABC"] == [1, 2, 3]
    assert [rows[e].borda for e in "ABC"] == [2.0, 3.0, 1.0]
    assert [rows[e].borda_rank for e in "ABC"] == [2, 1, 3]
    syntax = next(c for c in lb.rankings if c.category == "syntax")
    assert [r.entry for r in syntax.rows] == ["C", "A", "B"] and syntax.rows[0].borda == 2.0


def test_best_layer_can_be_picked_on_training_f1(tmp_path: Path) -> None:
    # Layer 2 has the best test F1, layer 0 the best training F1: --layer-by train scores layer 0.
    recs = sweep("A", "d1", "x", lambda layer, k: 0.5 + 0.1 * layer)
    recs = [r.model_copy(update={"train_f1": 0.9 - 0.1 * r.layer}) for r in recs]
    folder = write_folder(tmp_path / "A", recs)
    test_pick = next(f for f in build_leaderboard([folder], categories=CATS, layer_by="test").features)
    train_pick = next(f for f in build_leaderboard([folder], categories=CATS, layer_by="train").features)
    assert test_pick.best_layer == 2 and test_pick.f1_k1 == pytest.approx(0.7)
    assert train_pick.best_layer == 0 and train_pick.f1_k1 == pytest.approx(0.5)
    # the default pick is on val_f1; these records have none (an older folder): training F1, with a note
    lb = build_leaderboard([folder], categories=CATS)
    assert lb.features[0].best_layer == 0 and lb.features[0].picked_on == "train"
    assert "1 of 1 features have no validation F1" in render_markdown(lb)
    old = write_folder(tmp_path / "old", sweep("B", "d1", "x", lambda layer, k: 0.5))  # no train_f1 recorded
    with pytest.raises(ConfigError, match="training F1") as err:
        build_leaderboard([old], categories=CATS, layer_by="train")
    assert err.value.field == "--layer-by"
    with pytest.raises(ConfigError, match="layer choice"):
        build_leaderboard([folder], categories=CATS, layer_by="valid")


def test_leaderboard_ranks_on_the_validation_picked_layer(tmp_path: Path) -> None:
    # Model A is best on test F1 at layer 2, but validation F1 (training rows only) picks layer 0, where A
    # is worse than B: ranked on the validation pick, B comes first; on the test pick, A does.
    def with_val(recs: list, best: int) -> list:
        return [r.model_copy(update={"val_f1": 0.9 if r.layer == best else 0.6}) if r.k == 1 else r for r in recs]

    a = with_val(sweep("A", "d1", "x", lambda layer, k: 0.95 if layer == 2 else 0.55), best=0)
    b = with_val(sweep("B", "d1", "x", lambda layer, k: 0.7), best=1)
    folders = [write_folder(tmp_path / "A", a), write_folder(tmp_path / "B", b)]
    lb = build_leaderboard(folders, categories=CATS)
    scores = {f.entry: f for f in lb.features}
    assert scores["A"].best_layer == 0 and scores["A"].picked_on == "validation"
    assert scores["A"].f1_k1 == pytest.approx(0.55) and scores["B"].best_layer == 1
    factual = next(c for c in lb.rankings if c.category == "factual")
    assert [r.entry for r in factual.rows] == ["B", "A"]
    paper = next(c for c in build_leaderboard(folders, categories=CATS, layer_by="test").rankings
                 if c.category == "factual")
    assert [r.entry for r in paper.rows] == ["A", "B"]
    assert "no validation F1" not in render_markdown(lb) and "picked on validation k=1 F1" in render_markdown(lb)


def test_borda_gives_half_points_for_ties() -> None:
    assert borda({"d": {"x": 0.5, "y": 0.5, "z": 0.1}}) == {"x": 1.5, "y": 1.5, "z": 0.0}


def test_k_curve_auc_is_mean_f1_on_a_log_k_axis() -> None:
    assert k_curve_auc({1: 0.0, 2: 1.0}) == pytest.approx(0.5)
    assert k_curve_auc({1: 0.0, 2: 1.0, 4: 1.0}) == pytest.approx(0.75)  # log2 span 2: (0.5 + 1) / 2
    assert k_curve_auc({1: 0.4}) == pytest.approx(0.4) and k_curve_auc({}) is None


def test_missing_dataset_refuses_the_category_aggregate_and_says_which(tmp_path: Path, three_models) -> None:
    partial = _model(tmp_path / "more", "D", {"d1": 0.99, "d3": 0.1})
    lb = build_leaderboard([*three_models, partial], by="model", categories=CATS)
    factual = next(c for c in lb.rankings if c.category == "factual")
    assert factual.rows == [] and factual.refused == ["D has no results for d2"]
    assert [r.entry for r in next(c for c in lb.rankings if c.category == "syntax").rows][0] == "C"
    md = render_markdown(lb)
    assert "factual: not ranked: D has no results for d2" in md
    assert "refused" in render_csv(lb) and "D has no results for d2" in render_csv(lb)


def test_merge_counts_identical_duplicates_once_and_refuses_conflicts(tmp_path: Path, three_models) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "records.jsonl").write_text((three_models[0] / "records.jsonl").read_text())
    merged = load_results([three_models[0], copy])
    assert merged.duplicates == len(merged.records) > 0
    lines = (copy / "records.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["metrics"]["f1"] = 0.123
    (copy / "records.jsonl").write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    with pytest.raises(ConfigError, match="two results disagree"):
        load_results([three_models[0], copy])


def test_entries_by_method_layer_and_basis_keep_other_varying_fields_apart(tmp_path: Path) -> None:
    recs = (sweep("M", "d1", "pos", lambda layer, k: 0.5 + 0.1 * layer)
            + sweep("M", "d1", "pos", lambda layer, k: 0.4, method="f_stat", dense=None)
            + sweep("N", "d1", "pos", lambda layer, k: 0.7))
    folder = write_folder(tmp_path / "mixed", recs)
    by_method = build_leaderboard([folder], by="method", categories=CATS)
    assert sorted({d.entry for d in by_method.datasets}) == ["f_stat / M", "mean_diff / M", "mean_diff / N"]
    by_model = build_leaderboard([folder], by="model", categories=CATS)
    assert sorted({d.entry for d in by_model.datasets}) == ["M / f_stat", "M / mean_diff", "N / mean_diff"]
    by_layer = build_leaderboard([folder], by="layer", categories=CATS)
    layer2 = next(d for d in by_layer.datasets if d.entry == "layer 2 / M / mean_diff")
    assert layer2.f1_k1 == pytest.approx(0.7)
    pca = write_folder(tmp_path / "pca", sweep("M", "d1", "pos", lambda layer, k: 0.3, basis="pca", dense=None))
    by_basis = build_leaderboard([folder, pca], by="basis", categories=CATS)
    assert {"pca / M / mean_diff", "identity / M / mean_diff"} <= {d.entry for d in by_basis.datasets}


def test_leaderboard_cli_formats_and_bad_options(tmp_path: Path, three_models, capsys) -> None:
    assert main(["leaderboard", *map(str, three_models), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("kind,dataset,category,entry") and ",d1,-,A,1,1.000," in out
    assert main(["leaderboard", *map(str, three_models), "--by", "colour"]) == 2
    assert "cannot rank by 'colour'" in capsys.readouterr().err
    assert main(["leaderboard", *map(str, three_models), "--format", "html"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["leaderboard", str(tmp_path / "nowhere")]) == 2


# ---- submit --check --------------------------------------------------------------------------------
def _tamper(src: Path, dst: Path, edit) -> Path:
    dst.mkdir()
    for name in ("run.json", "alignment.json"):
        (dst / name).write_text((src / name).read_text())
    lines = (src / "records.jsonl").read_text().splitlines()
    (dst / "records.jsonl").write_text("\n".join(edit(lines)) + "\n")
    return dst


def _edit_first(lines: list[str], pred, change) -> list[str]:
    out, done = [], False
    for line in lines:
        rec = json.loads(line)
        if not done and pred(rec):
            change(rec)
            line, done = json.dumps(rec), True
        out.append(line)
    assert done
    return out


def test_submit_check_accepts_a_real_tiny_run(tiny_run: Path, capsys) -> None:
    report = check_folder(tiny_run)
    assert report.ok, [str(r) for r in report.rejections]
    assert set(report.datasets) == {"factual-country-continent", "safety-harmful-requests"}
    assert main(["submit", "--check", str(tiny_run)]) == 0
    assert "accepted" in capsys.readouterr().out


def test_submit_check_rejects_a_changed_dataset_hash_naming_line_and_field(tiny_run: Path, tmp_path: Path,
                                                                          capsys) -> None:
    bad = _tamper(tiny_run, tmp_path / "hash", lambda lines: _edit_first(
        lines, lambda r: True, lambda r: r["provenance"].update(dataset_hash="0" * 64)))
    assert main(["submit", "--check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad / 'records.jsonl'}:1: field 'provenance.dataset_hash'" in err
    assert "has content hash" in err and "the record says 0000000000000000" in err


def test_submit_check_rejects_a_changed_k_grid(tiny_run: Path, tmp_path: Path, capsys) -> None:
    lines = (tiny_run / "records.jsonl").read_text().splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if json.loads(line)["k"] == 16)
    bad = _tamper(tiny_run, tmp_path / "k", lambda ls: _edit_first(ls, lambda r: r["k"] == 16,
                                                                    lambda r: r.update(k=15)))
    assert main(["submit", "--check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"records.jsonl:{line_no}: field 'k': k=15 is not in the canonical k grid" in err
    assert "missing [16]; not canonical [15]" in err
    # A whole run made with another grid is named in run.json too.
    run = json.loads((tiny_run / "run.json").read_text())
    run["config"]["k_grid"] = [1, 2, 4]
    (bad / "run.json").write_text(json.dumps(run))
    assert main(["submit", "--check", str(bad)]) == 2
    assert "run.json: field 'config.k_grid': [1, 2, 4] differs from the canonical" in capsys.readouterr().err


def test_submit_check_rejects_schema_errors_and_unbalanced_probes(tiny_run: Path, tmp_path: Path) -> None:
    bad = _tamper(tiny_run, tmp_path / "schema", lambda lines: _edit_first(
        lines, lambda r: True, lambda r: r.pop("feature")))
    report = check_folder(bad)
    assert any(r.line == 1 and r.field == "feature" and "schema" in r.reason for r in report.rejections)
    unbalanced = _tamper(tiny_run, tmp_path / "bal", lambda lines: _edit_first(
        lines, lambda r: r["method"] != "dense", lambda r: r.update(n_train=r["n_train"] + 10)))
    assert any(r.field == "n_train" and "balances" in r.reason for r in check_folder(unbalanced).rejections)
    unknown = _tamper(tiny_run, tmp_path / "unknown", lambda lines: _edit_first(
        lines, lambda r: True, lambda r: r["provenance"].update(dataset="no-such-dataset")))
    rej = [r for r in check_folder(unknown).rejections if r.line == 1 and r.field == "provenance.dataset"]
    assert rej and "no dataset named 'no-such-dataset'" in rej[0].reason


def test_entries_within_noise_of_the_one_above_share_its_rank(tmp_path: Path) -> None:
    """30 features: A beats B on every one (by 0.1), B and C differ by +-0.01 at random: B and C tie."""
    import numpy as np

    from probebank.results.ties import paired_p_value

    rng = np.random.default_rng(3)
    base = rng.uniform(0.5, 0.8, 30)
    noise = rng.normal(0.0, 0.01, 30)
    scores = {"A": base + 0.1, "B": base + 0.002, "C": base + noise}
    folders = []
    for model, values in scores.items():
        recs = [r for i, v in enumerate(values) for r in sweep(model, "d1", f"f{i}", lambda layer, k, v=v: float(v),
                                                                layers=(0,), ks=(1, 16))]
        folders.append(write_folder(tmp_path / model, recs))
    lb = build_leaderboard(folders, by="model", categories=CATS)
    (factual,) = lb.rankings
    rows = {r.entry: r for r in factual.rows}
    order = [r.entry for r in factual.rows]
    assert order[0] == "A" and rows["A"].shared_rank == 1 and rows["A"].p_above is None
    second, third = factual.rows[1], factual.rows[2]
    assert second.p_above is not None and second.p_above < 0.001 and not second.tied_above
    assert second.shared_rank == 2 and second.n_paired == 30
    assert third.tied_above and third.p_above is not None and third.p_above >= 0.05 and third.shared_rank == 2
    assert third.mean_rank == 3  # the plain mean order is kept; the shared rank says it is no worse than 2
    per_feature = {e: [f.f1_k1 for f in sorted(lb.features, key=lambda f: f.feature) if f.entry == e] for e in "BC"}
    expected = paired_p_value(per_feature[second.entry], per_feature[third.entry])
    assert third.p_above == pytest.approx(expected)
    md = render_markdown(lb)
    assert f"| {third.entry} | 1 | " in md and "| =2 | p " in md and "within noise" in md
    assert ",=2," in render_csv(lb)


def test_a_handful_of_features_cannot_rank_entries_apart() -> None:
    from probebank.results.ties import paired_p_value

    assert paired_p_value([0.9] * 5, [0.1] * 5) > 0.05  # every feature agrees, yet 2/2^5 = 0.0625
    assert paired_p_value([0.9] * 6, [0.1] * 6) == pytest.approx(2 / 2**6)  # exact: 64 sign patterns
    assert paired_p_value([0.5, 0.6], [0.5, 0.6]) == 1.0 and paired_p_value([0.9], [0.1]) == 1.0
    with pytest.raises(ValueError):
        paired_p_value([0.5], [0.5, 0.6])
