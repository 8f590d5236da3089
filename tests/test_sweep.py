"""The fast sweep's parts give the one-at-a-time results: batched nested solves, factor reuse, shared Gram matrices."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from probebank.probing.batched import fit_nested
from probebank.probing.newton import fit_logistic, gram_matrix
from probebank.probing.problem import balanced_sample_weight, column_scaling
from probebank.probing.sweep import sweep_feature, sweep_features


def problem(n: int = 400, d: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised heavy-tailed columns; the first 30 carry the label with decreasing strength."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int64)
    X = rng.standard_t(4, size=(n, d)) + 0.2 * rng.standard_normal((n, 4)) @ rng.standard_normal((4, d))
    X[:, :30] += y[:, None] * np.linspace(1.5, 0.1, 30)
    mean, scale = column_scaling(X)
    return (X - mean) / scale, y


@pytest.mark.parametrize("C", [1.0, 0.05, 50.0])
def test_fit_nested_equals_one_fit_per_k(C: float) -> None:
    Z, y = problem()
    ks = [1, 2, 3, 5, 8, 12, 16]
    cw = C * balanced_sample_weight(y)
    W, b, n_iter, converged, f = fit_nested(Z[:, :16], ks, y, cw)
    assert converged.all() and W.shape == (len(ks), 16)
    for j, k in enumerate(ks):
        w, b1, _, ok = fit_logistic(Z[:, :k], y, balanced_sample_weight(y), C)
        assert ok
        np.testing.assert_allclose(W[j, :k], w, atol=1e-8 * max(1.0, np.abs(w).max()))
        assert b[j] == pytest.approx(b1, abs=1e-8 * max(1.0, abs(b1)))
        assert not W[j, k:].any()  # the padded coefficients stay exactly zero
        np.testing.assert_allclose(f[j], Z[:, :k] @ W[j, :k] + b[j], atol=1e-9)  # the training scores


def test_fit_nested_warm_start_and_limits() -> None:
    Z, y = problem(seed=1)
    cw = balanced_sample_weight(y)
    cold = fit_nested(Z[:, :8], [2, 8], y, cw)
    warm = fit_nested(Z[:, :8], [2, 8], y, cw, coef_init=cold[0][1], intercept_init=float(cold[1][1]))
    np.testing.assert_allclose(warm[0], cold[0], atol=1e-8)
    assert warm[2][1] <= 1 < cold[2][1]  # started at its optimum: at most one step
    none = fit_nested(Z[:, :8], [2, 8], y, cw, max_iter=0)
    assert not none[0].any() and not none[3].any() and not none[2].any()
    with pytest.raises(ValueError, match="every k"):
        fit_nested(Z[:, :8], [2, 9], y, cw)


@pytest.mark.parametrize("n, k", [(400, 256), (300, 120)])
def test_factor_reuse_reaches_sklearns_optimum(n: int, k: int) -> None:
    # From 64 units on, Newton reuses its Hessian's factor while it converges fast.
    Z, y = problem(n=n, d=k, seed=2)
    w, b, n_iter, ok = fit_logistic(Z, y, balanced_sample_weight(y), 1.0)
    ref = LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=100_000).fit(Z, y)
    assert ok and n_iter < 40
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5 * max(1.0, np.abs(ref.coef_).max()))
    assert b == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_dense_solver_with_a_shared_gram() -> None:
    Z, y = problem(n=150, d=400, seed=3)
    sw = balanced_sample_weight(y)
    alone = fit_logistic(Z, y, sw, 1.0)
    shared = fit_logistic(Z, y, sw, 1.0, gram=gram_matrix(Z))
    np.testing.assert_array_equal(alone[0], shared[0])  # the same Gram, the same path
    ref = LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=100_000).fit(Z, y)
    np.testing.assert_allclose(alone[0], ref.coef_[0], atol=1e-5 * max(1.0, np.abs(ref.coef_).max()))


def test_sweep_features_equals_sweep_feature_per_label() -> None:
    rng = np.random.default_rng(4)
    n, d = 320, 260  # wider than the 224 training rows: the dense probe goes through the shared Gram
    classes = rng.integers(0, 3, n)
    X = rng.standard_t(4, size=(n, d)) * 30.0
    for c in range(3):
        X[:, 10 * c:10 * c + 5] += 100.0 * (classes == c)[:, None]
    X = X.astype(np.float16).astype(np.float32)
    Y = (classes[:, None] == np.arange(3)).astype(np.int64)
    tr, te = np.arange(224), np.arange(224, n)
    grid = [1, 2, 3, 8, 16, 32, 128]
    together = sweep_features(X[tr], list(Y[tr].T), X[te], list(Y[te].T), method="mean_diff", k_grid=grid, C=0.5)
    assert len(together) == 3
    for c, points in enumerate(together):
        alone = sweep_feature(X[tr], Y[tr, c], X[te], Y[te, c], method="mean_diff", k_grid=grid, C=0.5)
        assert [p.k for p in points] == [p.k for p in alone] == grid + [d]
        for p, q in zip(points, alone):
            assert (p.method, p.units, p.metrics, p.train_f1) == (q.method, q.units, q.metrics, q.train_f1)
            np.testing.assert_allclose(p.coef, q.coef, atol=1e-9)
            assert p.intercept == pytest.approx(q.intercept, abs=1e-9)
        assert set(points[2].units) <= {10 * c + u for u in range(5)}  # k=3 finds planted units of its class
        assert points[2].metrics["f1"] > 0.9 and points[-1].metrics["f1"] > 0.5
    assert sweep_features(X[tr], [], X[te], [], method="mean_diff", k_grid=grid) == []
    with pytest.raises(ValueError, match="label vectors"):
        sweep_features(X[tr], [Y[tr, 0]], X[te], [], method="mean_diff", k_grid=grid)


def test_batched_points_score_like_binary_metrics() -> None:
    # The small k's are scored together (one ranking for every ROC-AUC): same numbers as one at a time.
    from probebank.metrics import binary_metrics

    Z, y = problem(n=300, d=40, seed=5)
    points = sweep_feature(Z[:200], y[:200], Z[200:], y[200:], method="f_stat", k_grid=[1, 2, 4, 8, 16], dense=False)
    for p in points:
        mean, scale = column_scaling(Z[:200, p.units])  # the sweep standardises on its training rows
        scores = (Z[200:, p.units] - mean) / scale @ np.asarray(p.coef) + p.intercept
        expected = binary_metrics(y[200:], scores > 0, scores)
        assert p.metrics["f1"] == expected["f1"] and p.metrics["mcc"] == expected["mcc"]
        assert p.metrics["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
