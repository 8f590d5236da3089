"""Probes, the Newton solver, metrics and the k sweep."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from probebank.metrics import binary_metrics
from probebank.probing.newton import fit_logistic
from probebank.probing.probes import DenseProbe, SparseProbe
from probebank.probing.problem import balanced_sample_weight, column_scaling
from probebank.probing.selection import Adaptive, FStat, MeanDiff, RandomUnits
from probebank.probing.sweep import SweepPoint, sweep_feature

PLANTED = (11, 40, 90)


def planted(n: int = 500, d: int = 120, seed: int = 0, shift: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Three weakly informative units (together much better than any one), t-distributed noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    X = rng.standard_t(4, size=(n, d)) * 50.0
    for u in PLANTED:
        X[:, u] += shift * 50.0 * y
    X[:, 3] = 7.0  # a constant unit
    return X.astype(np.float16).astype(np.float32), y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return planted()


def sk_reference(Z: np.ndarray, y: np.ndarray, C: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced", tol=1e-10, max_iter=100_000).fit(Z, y)


# ---------------------------------------------------------------- the solver

@pytest.mark.parametrize("n, k, C", [(300, 1, 1.0), (300, 20, 0.1), (300, 120, 1.0), (80, 300, 1.0), (80, 300, 0.01)])
def test_fit_logistic_matches_sklearn(n: int, k: int, C: float) -> None:
    rng = np.random.default_rng(k)
    y = (rng.random(n) < 0.3).astype(np.int64)
    Z = rng.standard_normal((n, k)) + 0.4 * y[:, None] * (rng.random(k) < 0.2)
    w, b, n_iter, ok = fit_logistic(Z, y, balanced_sample_weight(y), C)
    ref = sk_reference(Z, y, C)
    assert ok and n_iter < 30
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-4 * max(1.0, np.abs(ref.coef_).max()))
    assert abs(b - ref.intercept_[0]) < 1e-4 * max(1.0, abs(ref.intercept_[0]))


@pytest.mark.parametrize("n, k", [(300, 100), (100, 400)])
def test_fit_logistic_weak_regularisation_reaches_the_optimum(n: int, k: int) -> None:
    # C = 1e4: the float32 Hessian of the wide solver is too coarse here and must fall back.
    rng = np.random.default_rng(1)
    y = (rng.random(n) < 0.3).astype(np.int64)
    Z = rng.standard_normal((n, k)) + 2.0 * y[:, None] * (rng.random(k) < 0.3)
    sw = balanced_sample_weight(y)
    w, b, _, ok = fit_logistic(Z, y, sw, 1e4, max_iter=1000)
    ref = sk_reference(Z, y, 1e4)

    def objective(coef: np.ndarray, intercept: float) -> float:
        f = Z @ coef + intercept
        return 1e4 * float(np.dot(sw, np.logaddexp(0, f) - y * f)) + 0.5 * float(coef @ coef)

    assert ok and np.abs(w).max() > 0.1
    assert objective(w, b) <= objective(ref.coef_[0], ref.intercept_[0]) * (1 + 1e-9)


def test_fit_logistic_separable_data_converges() -> None:
    y = np.repeat([0, 1], 50)
    Z = (y * 2.0 - 1.0)[:, None] * 5.0 + np.zeros((100, 1))
    w, b, _, ok = fit_logistic(Z, y, balanced_sample_weight(y), C=100.0)
    assert ok and w[0] > 0 and np.isfinite(b)


# ---------------------------------------------------------------- SparseProbe / DenseProbe

def test_sparse_probe_selects_planted_units(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    probe = SparseProbe(k=3).fit(X, y)
    assert set(probe.selected_units_.tolist()) == set(PLANTED)
    assert probe.coef_.shape == (1, 3) and probe.intercept_.shape == (1,)
    assert np.array_equal(probe.classes_, [0, 1])
    proba = probe.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    dec = probe.decision_function(X)
    assert np.array_equal(probe.predict(X), (dec > 0).astype(int))
    assert np.array_equal(proba[:, 1] > 0.5, dec > 0)
    assert skm.f1_score(y, probe.predict(X)) > 0.75


def test_sparse_probe_equals_sklearn_pipeline_on_its_units(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    probe = SparseProbe(k=5, C=0.3).fit(X, y)
    cols = probe.selected_units_
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, class_weight="balanced", tol=1e-10,
                                                             max_iter=100_000)).fit(X[:, cols].astype(np.float64), y)
    np.testing.assert_allclose(probe.coef_[0], ref[-1].coef_[0], atol=1e-4)
    np.testing.assert_allclose(probe.decision_function(X), ref.decision_function(X[:, cols]), atol=1e-3)


def test_sparse_probe_string_labels_and_capped_k(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    labels = np.array(["other", "plural"])[y]
    probe = SparseProbe(k=10_000).fit(X, labels)
    assert probe.selected_units_.size == X.shape[1]
    assert set(probe.predict(X[:20]).tolist()) <= {"other", "plural"}
    assert probe.classes_[1] == "plural"


def test_sparse_probe_rejects_multiclass_and_bad_k(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    with pytest.raises(ValueError, match="Only binary classification"):
        SparseProbe().fit(X, np.arange(X.shape[0]) % 3)
    with pytest.raises(ValueError, match="k must be"):
        SparseProbe(k=0).fit(X, np.arange(X.shape[0]) % 2)


def test_sparse_probe_method_and_seed_params(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    a = SparseProbe(k=4, method="random", random_state=1).fit(X, y).selected_units_
    b = SparseProbe(k=4, method=RandomUnits(), random_state=1).fit(X, y).selected_units_
    c = SparseProbe(k=4, method="random", random_state=2).fit(X, y).selected_units_
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    p = SparseProbe(k=3, method="mutual_info", method_params={"prefilter": 10}).fit(X, y)
    assert set(p.selected_units_.tolist()) == set(PLANTED)


def test_dense_probe_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    probe = DenseProbe(C=0.5).fit(X, y)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", tol=1e-10,
                                                             max_iter=100_000)).fit(X.astype(np.float64), y)
    assert probe.coef_.shape == (1, X.shape[1])
    np.testing.assert_allclose(probe.coef_[0], ref[-1].coef_[0], atol=1e-4)
    assert np.array_equal(probe.predict(X), ref.predict(X))


def test_clone_params_and_pickle(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    probe = SparseProbe(k=2, method=FStat(), C=0.5, method_params=None)
    twin = clone(probe)
    assert twin.get_params()["k"] == 2 and isinstance(twin.get_params()["method"], FStat)
    assert twin.method is not probe.method
    twin.set_params(k=3, method="mean_diff")
    assert twin.k == 3 and probe.k == 2
    fitted = twin.fit(X, y)
    again = copy.deepcopy(fitted)  # the state a joblib/pickle round trip would carry
    np.testing.assert_array_equal(again.decision_function(X), fitted.decision_function(X))
    assert not hasattr(clone(fitted), "coef_")


def test_pipeline_and_grid_search_pick_k(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("probe", SparseProbe())])
    grid = GridSearchCV(pipe, {"probe__k": [1, 3], "probe__method": ["mean_diff", "f_stat"]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0), scoring="f1")
    grid.fit(X, y)
    assert grid.best_params_["probe__k"] == 3
    assert set(grid.best_estimator_[-1].selected_units_.tolist()) == set(PLANTED)
    scores = grid.cv_results_["mean_test_score"]
    assert scores.max() - scores.min() > 0.05  # k=3 is clearly better than k=1


# The array-API check reports itself skipped unless SCIPY_ARRAY_API is set; the probes do
# not claim array-API support, so that one is not counted.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("estimator", [SparseProbe(k=2), SparseProbe(k=3, method="f_stat"), DenseProbe()],
                         ids=["sparse", "sparse-f_stat", "dense"])
def test_sklearn_estimator_checks(estimator: SparseProbe | DenseProbe) -> None:
    results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 50


# ---------------------------------------------------------------- metrics

def test_binary_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _trial in range(30):
        n = int(rng.integers(5, 60))
        y = rng.integers(0, 2, n)
        scores = np.round(rng.standard_normal(n) + y * rng.random(), 1)  # ties on purpose
        pred = (scores > rng.normal(0, 0.5)).astype(int)
        m = binary_metrics(y, pred, scores)
        assert m["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0), abs=1e-12)
        assert m["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0), abs=1e-12)
        assert m["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0), abs=1e-12)
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
        assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
        if 0 < y.sum() < n:
            assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)


def test_binary_metrics_edge_cases() -> None:
    y = np.array([0, 0, 1, 1])
    none_pos = binary_metrics(y, np.zeros(4, dtype=int), np.zeros(4))
    assert none_pos["precision"] == 0.0 and none_pos["f1"] == 0.0 and none_pos["mcc"] == 0.0
    assert none_pos["roc_auc"] == 0.5 and none_pos["accuracy"] == 0.5
    perfect = binary_metrics(y, y, np.array([-2.0, -1.0, 1.0, 2.0]))
    assert perfect == {"f1": 1.0, "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "mcc": 1.0, "roc_auc": 1.0}
    one_class = binary_metrics(np.zeros(3, dtype=int), np.array([0, 1, 0]), np.array([0.1, 0.9, 0.2]))
    assert one_class["roc_auc"] is None and one_class["recall"] == 0.0 and one_class["f1"] == 0.0
    assert one_class["mcc"] == pytest.approx(skm.matthews_corrcoef([0, 0, 0], [0, 1, 0]))
    inverted = binary_metrics(y, 1 - y, np.array([2.0, 1.0, -1.0, -2.0]))
    assert inverted["mcc"] == -1.0 and inverted["roc_auc"] == 0.0
    assert binary_metrics(y.astype(bool), y.astype(bool), None)["roc_auc"] is None
    with pytest.raises(ValueError, match="binary"):
        binary_metrics(np.array([0, 2]), np.array([0, 1]), None)
    with pytest.raises(ValueError, match="empty"):
        binary_metrics(np.array([], dtype=int), np.array([], dtype=int), None)


# ---------------------------------------------------------------- the sweep

def split(X: np.ndarray, y: np.ndarray, n_train: int = 350) -> tuple[np.ndarray, ...]:
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def test_sweep_feature_points(data: tuple[np.ndarray, np.ndarray]) -> None:
    Xtr, ytr, Xte, yte = split(*data)
    d = Xtr.shape[1]
    grid = [16, 1, 2, 3, 3, 8, 120, 256]
    pts = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=grid, seed=0)
    assert [f.name for f in dataclasses.fields(SweepPoint)] == [
        "method", "k", "units", "coef", "intercept", "metrics", "wall_time_s", "solver", "train_f1", "dense_fit"]
    assert all(p.solver is None for p in pts)  # only exact selectors (milp) report a solver
    # train F1 is the probe's own F1 on the training rows: recompute it for k=8 from its coefficients
    p8 = next(p for p in pts if p.k == 8)
    cols = Xtr[:, p8.units]
    z = (cols - cols.mean(0)) / cols.std(0)
    pred = z @ np.asarray(p8.coef) + p8.intercept > 0
    assert p8.train_f1 == pytest.approx(binary_metrics(ytr.astype(bool), pred, None)["f1"], abs=1e-9)
    assert all(0.0 <= p.train_f1 <= 1.0 for p in pts)
    assert [p.k for p in pts] == [1, 2, 3, 8, 16, d]  # k >= d dropped, sorted, unique; dense last
    sparse, dense = pts[:-1], pts[-1]
    assert all(p.method == "mean_diff" for p in sparse)
    assert dense.method == "dense" and dense.units == [] and dense.coef == []
    for p in pts:
        assert set(p.metrics) == {"f1", "accuracy", "precision", "recall", "mcc", "roc_auc"}
        assert p.wall_time_s > 0 and isinstance(p.intercept, float)
    for a, b in zip(sparse, sparse[1:]):
        assert b.units[: a.k] == a.units  # mean_diff supports are nested
    for p in sparse:
        assert len(p.units) == len(p.coef) == p.k
        assert all(isinstance(u, int) for u in p.units)
    assert set(pts[2].units) == set(PLANTED)
    assert pts[2].metrics["f1"] > pts[0].metrics["f1"] + 0.05


def test_sweep_point_equals_sparse_probe(data: tuple[np.ndarray, np.ndarray]) -> None:
    Xtr, ytr, Xte, yte = split(*data)
    pts = sweep_feature(Xtr, ytr, Xte, yte, method=FStat(), k_grid=[2, 5], dense=True, C=0.7)
    assert [p.method for p in pts] == ["f_stat", "f_stat", "dense"]
    for p in pts[:2]:
        probe = SparseProbe(k=p.k, method="f_stat", C=0.7).fit(Xtr, ytr)
        assert probe.selected_units_.tolist() == p.units
        # the sweep warm-starts, the probe starts cold: same optimum up to the tolerance
        np.testing.assert_allclose(probe.coef_[0], p.coef, atol=1e-5)
        expected = binary_metrics(yte, probe.predict(Xte), probe.decision_function(Xte))
        assert p.metrics["f1"] == expected["f1"]
        assert p.metrics["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-6)
    # the dense probe is DenseProbe at the C chosen on an inner split (C=0.7 is the top-k probes' only)
    fit = pts[-1].dense_fit
    assert fit is not None and fit.chosen_on == "rows" and fit.C in fit.C_grid
    dense = DenseProbe(C=fit.C).fit(Xtr, ytr)
    assert pts[-1].metrics == binary_metrics(yte, dense.predict(Xte), dense.decision_function(Xte))
    assert pts[-1].intercept == pytest.approx(dense.intercept_[0], abs=1e-12)
    # one C in the grid: fitted at it, no inner split
    fixed = sweep_feature(Xtr, ytr, Xte, yte, method=FStat(), k_grid=[2], C=0.7, dense_C_grid=[0.7])[-1]
    assert fixed.dense_fit is not None and (fixed.dense_fit.C, fixed.dense_fit.chosen_on) == (0.7, "fixed")
    dense = DenseProbe(C=0.7).fit(Xtr, ytr)
    assert fixed.metrics == binary_metrics(yte, dense.predict(Xte), dense.decision_function(Xte))
    assert fixed.intercept == pytest.approx(dense.intercept_[0], abs=1e-12)


def test_sweep_with_reference_loop_f1(data: tuple[np.ndarray, np.ndarray]) -> None:
    # The straightforward loop: re-rank, standardise, refit sklearn from scratch per k.
    Xtr, ytr, Xte, yte = split(*data)
    grid = [1, 2, 3, 4, 8, 32]
    pts = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=grid, dense=False)
    for p in pts:
        cols = MeanDiff().fit(Xtr, ytr).ranking_[: p.k]
        ref = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
        ref.fit(Xtr[:, cols], ytr)
        assert p.metrics["f1"] == pytest.approx(skm.f1_score(yte, ref.predict(Xte[:, cols])), abs=0.02)


def test_sweep_adaptive_and_params(data: tuple[np.ndarray, np.ndarray]) -> None:
    Xtr, ytr, Xte, yte = split(*data)
    pts = sweep_feature(Xtr, ytr, Xte, yte, method="adaptive", k_grid=[3, 6], dense=False,
                        method_params={"start": 32})
    assert [p.method for p in pts] == ["adaptive", "adaptive"] and [p.k for p in pts] == [3, 6]
    assert set(pts[0].units) == set(PLANTED)
    pts = sweep_feature(Xtr, ytr, Xte, yte, method=Adaptive(start=32), k_grid=[3], dense=False)
    assert pts[0].method == "adaptive"


def test_sweep_seed_drives_random_control(data: tuple[np.ndarray, np.ndarray]) -> None:
    Xtr, ytr, Xte, yte = split(*data)
    a = sweep_feature(Xtr, ytr, Xte, yte, method="random", k_grid=[4], dense=False, seed=1)
    b = sweep_feature(Xtr, ytr, Xte, yte, method="random", k_grid=[4], dense=False, seed=1)
    c = sweep_feature(Xtr, ytr, Xte, yte, method="random", k_grid=[4], dense=False, seed=2)
    assert a[0].units == b[0].units and a[0].units != c[0].units


def test_sweep_edge_cases(data: tuple[np.ndarray, np.ndarray]) -> None:
    Xtr, ytr, Xte, yte = split(*data)
    narrow = sweep_feature(Xtr[:, :4], ytr, Xte[:, :4], yte, method="mean_diff", k_grid=[1, 4, 8])
    assert [p.k for p in narrow] == [1, 4] and narrow[-1].method == "dense"
    assert sweep_feature(Xtr[:, :4], ytr, Xte[:, :4], yte, method="mean_diff", k_grid=[4], dense=False) == []
    single_class_test = sweep_feature(Xtr, ytr, Xte, np.zeros_like(yte), method="mean_diff", k_grid=[1])
    assert single_class_test[0].metrics["roc_auc"] is None
    with pytest.raises(ValueError, match="columns"):
        sweep_feature(Xtr, ytr, Xte[:, :5], yte, method="mean_diff", k_grid=[1])
    with pytest.raises(ValueError, match="binary"):
        sweep_feature(Xtr, ytr * 2, Xte, yte, method="mean_diff", k_grid=[1])
    with pytest.raises(ValueError, match="unknown selection method"):
        sweep_feature(Xtr, ytr, Xte, yte, method="nope", k_grid=[1])


def test_column_scaling_matches_standard_scaler(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    mean, scale = column_scaling(X)
    ref = StandardScaler().fit(X.astype(np.float64))
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-10)
    np.testing.assert_allclose(scale, ref.scale_, rtol=1e-10)
    assert scale[3] == 1.0  # constant unit
