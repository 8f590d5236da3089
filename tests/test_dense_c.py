"""The dense probe's C: chosen on an inner split of the training rows, recorded, and explained when dense trails k=1."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from report_fixtures import sweep
from synthetic_store import ArrayStore, planted

import probebank.probing.evaluate as evaluate
from probebank.data.splits import FeatureSplit
from probebank.metrics import f1_score
from probebank.probing.dense import validation_f1s
from probebank.probing.newton import fit_logistic, fit_logistic_dual, gram_matrix
from probebank.probing.problem import balanced_sample_weight, column_scaling
from probebank.probing.schema import DEFAULT_DENSE_C_GRID, DenseFit, ProbeConfig
from probebank.probing.sweep import sweep_feature
from probebank.results.summary import summarise


def wide_factors(seed: int, n_train: int = 120, d: int = 600) -> tuple[np.ndarray, ...]:
    """More units than rows: three shared factors over every unit (as in real layers), unit 7 alone carries
    the label. The L2 probe must use large coefficients to cancel the factors; a strong penalty cannot."""
    rng = np.random.default_rng(seed)
    n = n_train + 400
    y = rng.random(n) < 0.5
    X = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d)) + 0.05 * rng.standard_normal((n, d))
    X[:, 7] = 3.0 * y + rng.standard_normal(n)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@pytest.mark.parametrize("seed", [0, 1])
def test_chosen_c_avoids_a_fixed_c_far_below_k1(seed: int) -> None:
    Xtr, ytr, Xte, yte = wide_factors(seed)
    fixed = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=[1], dense_C_grid=[0.001])
    chosen = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=[1])
    k1 = chosen[0].metrics["f1"]
    assert fixed[0].metrics["f1"] == k1 > 0.85  # the top-k probe keeps its own C
    assert fixed[-1].metrics["f1"] < k1 - 0.25  # this C leaves the dense probe far below one unit
    fit = chosen[-1].dense_fit
    assert fit is not None and fit.chosen_on == "rows" and fit.C > 0.001 and len(fit.val_f1) == len(fit.C_grid)
    assert chosen[-1].metrics["f1"] >= k1 - 0.05  # the inner split's choice is not
    assert fit.val_f1[fit.C_grid.index(fit.C)] == max(fit.val_f1)  # the best inner-validation F1 (ties: nearest 1)


def test_inner_path_matches_cold_fits_on_the_inner_rows() -> None:
    # The warm-started path on the Gram's submatrix scores the validation rows as fit_logistic on those rows.
    Xtr, ytr, _, _ = wide_factors(2)
    mean, scale = column_scaling(Xtr)
    Z = (Xtr - mean) / scale
    tr, va = np.arange(90), np.arange(90, 120)
    grid = list(DEFAULT_DENSE_C_GRID)
    path = validation_f1s(Z, ytr, grid, (tr, va), max_iter=1000, gram=gram_matrix(Z))
    alone = validation_f1s(Z, ytr, grid, (tr, va), max_iter=1000)  # no Gram given: formed on these rows
    sw = balanced_sample_weight(ytr[tr])
    cold_f1 = []
    for C in grid:  # each C alone, from zero, to fit_logistic's tight tolerance
        w, b, _, ok = fit_logistic(Z[tr], ytr[tr], sw, C, max_iter=1000)
        assert ok
        cold_f1.append(f1_score(ytr[va], Z[va] @ w + b > 0))
    assert path == alone == cold_f1
    a, b, _, ok = fit_logistic_dual(gram_matrix(Z[tr]), ytr[tr], sw, 1.0)
    w, b1, _, _ = fit_logistic(Z[tr], ytr[tr], sw, 1.0)
    assert ok and np.allclose(Z[tr].T @ a, w, atol=1e-4 * np.abs(w).max()) and b == pytest.approx(b1, abs=1e-4)


CFG = ProbeConfig(methods=["mean_diff"], k_grid=[1, 2], seeds=[0], dense=True)


def _records(p, store=None) -> list:
    return list(evaluate.evaluate_store(store or p.store, p.built, p.provenance, CFG, ["mlp"], [0, 1], progress=False))


def test_dense_records_carry_the_choice() -> None:
    p = planted(n=200, d=300)  # ~140 training rows, 300 units: the row-span solver and its Gram
    recs = _records(p)
    dense = [r for r in recs if r.method == "dense"]
    assert len(dense) == 2 and all(r.dense_fit is None for r in recs if r.method != "dense")
    (sp,) = evaluate.feature_splits(p.built, p.store.rows(), seeds=[0])
    inner = evaluate.validation_split(p.built, p.store.rows(), sp)
    assert inner is not None
    for r in dense:
        fit = r.dense_fit
        assert isinstance(fit, DenseFit) and fit.C_grid == list(DEFAULT_DENSE_C_GRID) and fit.C in fit.C_grid
        assert fit.chosen_on == "validation" and fit.n_val == inner[1].size  # the val_f1 pick's split
        assert (fit.n_units, fit.n_train) == (300, r.n_train) and len(fit.val_f1) == 5
    assert "dense_C_grid" in ProbeConfig.model_fields and ProbeConfig().dense_C_grid == list(DEFAULT_DENSE_C_GRID)
    with pytest.raises(ValidationError):
        ProbeConfig(dense_C_grid=[0.1, 0.0])
    with pytest.raises(ValidationError):
        ProbeConfig(dense_C_grid=[])


def test_probe_key_changes_with_the_dense_grid() -> None:
    # a cached records file of another grid (or of older code, without the field) is not reused
    p = planted()
    selectors = evaluate.resolve_methods(CFG.methods)
    key = lambda cfg: evaluate.probe_key("s", p.provenance, cfg, ["mlp"], [0], p.built.card, selectors)  # noqa: E731
    assert key(CFG) != key(CFG.model_copy(update={"dense_C_grid": [1.0]}))
    legacy = CFG.model_dump(mode="json")
    legacy.pop("dense_C_grid")
    assert "dense_C_grid" in CFG.model_dump(mode="json") and legacy != CFG.model_dump(mode="json")


def test_dense_c_never_reads_the_test_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Test labels permuted and test activations replaced by noise: the dense test F1 may move, its C must not.
    p = planted(n=200, d=300)
    real_splits = evaluate.feature_splits
    before = _records(p)
    rng = np.random.default_rng(3)

    def scrambled(*args, **kwargs) -> list[FeatureSplit]:
        return [FeatureSplit(sp.feature, sp.seed, sp.train, sp.test, sp.y_train, rng.permutation(sp.y_test))
                for sp in real_splits(*args, **kwargs)]

    monkeypatch.setattr(evaluate, "feature_splits", scrambled)
    rows = p.store.rows()
    (split,) = real_splits(p.built, rows, seeds=[0])
    layers = {}
    for layer in (0, 1):
        X = np.array(p.store.layer("mlp", layer), copy=True)
        X[split.test] = rng.standard_normal((split.test.size, X.shape[1]))
        layers[layer] = X
    after = _records(p, ArrayStore(layers, rows["label"], rows["token"]))
    fits_before = {r.layer: r.dense_fit for r in before if r.method == "dense"}
    fits_after = {r.layer: r.dense_fit for r in after if r.method == "dense"}
    assert len(fits_before) == 2 and fits_after == fits_before
    f1_before = {r.layer: r.f1 for r in before if r.method == "dense"}
    assert any(abs(f1_before[r.layer] - r.f1) > 0.05 for r in after if r.method == "dense")  # the test side did move


def _with_fit(recs: list, C: float, width: int = 1536, n_train: int = 120) -> list:
    fit = DenseFit(C=C, C_grid=list(DEFAULT_DENSE_C_GRID), chosen_on="validation", val_f1=[0.5] * 5, n_val=30,
                   n_units=width, n_train=n_train)
    return [r.model_copy(update={"dense_fit": fit, "n_train": n_train}) if r.method == "dense" else r for r in recs]


def test_summary_gives_the_reason_when_dense_trails_k1(tmp_path) -> None:
    from rich.console import Console

    from probebank.results.summary import write_summary_markdown
    from probebank.results.summary_table import render_table

    low = _with_fit(sweep("A", "d1", "noun", lambda layer, k: 0.9, dense=0.5, width=1536), C=0.01)
    close = _with_fit(sweep("A", "d1", "verb", lambda layer, k: 0.9, dense=0.87, width=1536), C=1.0)
    old = sweep("A", "d1", "perl", lambda layer, k: 0.9, dense=0.55, width=1536)  # written before dense_fit
    rows = {r["feature"]: r for r in summarise(low + close + old)}
    assert rows["verb"]["dense_note"] is None  # within 0.05 of k=1: nothing to explain
    assert rows["noun"]["dense_note"] == ("dense below k=1: 1536 units > 120 training rows (L2 spreads its weight "
                                          "over all units); C chosen 0.01 on an inner split of the training rows")
    assert "C fixed" in rows["perl"]["dense_note"] and "re-run" in rows["perl"]["dense_note"]
    md = tmp_path / "summary.md"
    write_summary_markdown(list(rows.values()), md)
    line = next(x for x in md.read_text().splitlines() if "| noun |" in x)
    assert "C chosen 0.01 on an inner split" in line  # beside the dense F1, in its row
    console = Console(width=100, record=True)
    console.print(render_table(list(rows.values())))
    text = console.export_text()
    assert "0.50†" in text and "† d1 / noun: dense below k=1: 1536 units > 120 training rows" in text
    assert "0.87†" not in text


def test_an_end_of_the_grid_is_said() -> None:
    recs = _with_fit(sweep("A", "d1", "x", lambda layer, k: 0.9, dense=0.6, width=64, layers=(0,)), C=0.001,
                     width=64, n_train=400)
    (row,) = summarise(recs)
    assert row["dense_note"] == ("dense below k=1: 64 units, 400 training rows; C chosen 0.001 (an end of the grid) "
                                 "on an inner split of the training rows")
