"""Exact best-subset ridge least squares (probebank.probing.exact.squares), the default exact objective."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

import probebank.probing.exact.squares as ss
from probebank.errors import ConfigError
from probebank.probing.exact.compare import heuristic_matches, probe_objective
from probebank.probing.exact.selector import MilpSelector
from probebank.probing.exact.squares import SquaresProblem, best_subset_squares
from probebank.probing.problem import balanced_sample_weight


def correlated(n: int, m: int, seed: int, planted: int = 3, noise: float = 1.0):
    """Units sharing a common factor (so subsets interact); label from `planted` of them."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m)) + rng.uniform(0.5, 2.0) * rng.standard_normal((n, 1))
    true = np.sort(rng.choice(m, planted, replace=False))
    score = X[:, true] @ rng.choice([-2.0, -1.0, 1.0, 2.0], planted) + noise * rng.standard_normal(n)
    Z = (X - X.mean(0)) / X.std(0)
    return Z, (score > np.median(score)).astype(np.int64), true


def test_objective_is_the_weighted_ridge_least_squares_fit():
    Z, y, _ = correlated(150, 6, seed=1)
    C = 0.3
    S = [0, 2, 5]
    # direct: minimise C/2 sum sw (y - b - Zw)^2 + |w|^2/2 as one augmented least-squares system
    sw = balanced_sample_weight(y)
    rows = np.sqrt(C * sw)[:, None] * np.hstack([Z[:, S], np.ones((150, 1))])
    aug = np.vstack([rows, np.hstack([np.eye(3), np.zeros((3, 1))])])
    rhs = np.concatenate([np.sqrt(C * sw) * y, np.zeros(3)])
    sol = np.linalg.lstsq(aug, rhs, rcond=None)[0]
    direct = 0.5 * float(np.sum((aug @ sol - rhs) ** 2))
    p = SquaresProblem(Z, y, C)
    assert p.objective(S) == pytest.approx(direct, rel=1e-10)
    w, b = p.coef(S)
    assert np.allclose(np.append(w, b), sol, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_matches_enumeration_of_every_support(seed):
    Z, y, _ = correlated(120, 11 + seed % 3, seed=seed, noise=2.0)
    m = Z.shape[1]
    p = SquaresProblem(Z, y, C=[1.0, 0.05, 50.0][seed % 3])
    for k in range(1, 7):
        objs = {S: p.objective(S) for S in combinations(range(m), k)}
        best_S = min(objs, key=objs.get)
        res = best_subset_squares(Z, y, k, problem=p, tol=0.0, time_limit=30.0)
        assert res.status == "optimal" and not res.time_limited
        assert res.objective == pytest.approx(objs[best_S], rel=1e-9)
        assert res.bound <= objs[best_S] * (1 + 1e-9)
        assert res.solver == "leaps-bnb"


def test_finds_planted_support_with_certificate():
    Z, y, true = correlated(2000, 50, seed=7, planted=4, noise=0.5)
    for k in (4, 6):
        res = best_subset_squares(Z, y, k, tol=1e-4, time_limit=60.0)
        assert res.status == "optimal" and res.gap <= 1e-4
        assert 0 <= res.bound <= res.objective
        if k == 4:
            assert sorted(res.support.tolist()) == true.tolist()
        else:
            assert set(true.tolist()) <= set(res.support.tolist())


@pytest.mark.parametrize("nodes", [1, 2, 5, 40])
def test_time_limit_keeps_a_valid_bound(monkeypatch, nodes):
    # A slice of `nodes` nodes and no time: the search stops there, with a bound below the optimum.
    # Random labels: many near-equal supports, so the full search needs a few hundred nodes.
    Z, _, _ = correlated(300, 30, seed=3)
    y = np.random.default_rng(0).integers(0, 2, 300)
    p = SquaresProblem(Z, y, 1.0)
    k = 7
    optimum = best_subset_squares(Z, y, k, problem=p, tol=0.0).objective  # exact (checked above)
    monkeypatch.setattr(ss, "NODES_PER_SLICE", nodes)
    res = best_subset_squares(Z, y, k, problem=p, tol=0.0, time_limit=1e-9)
    assert res.time_limited and res.status == "time_limit" and res.rounds == nodes
    assert res.bound <= optimum * (1 + 1e-9) and res.objective >= optimum * (1 - 1e-12)
    assert 0 < res.gap <= 1 and res.support.size == k and len(set(res.support.tolist())) == k
    # run in slices to the end, the same search proves the optimum
    monkeypatch.setattr(ss, "NODES_PER_SLICE", 3)
    full = best_subset_squares(Z, y, k, problem=p, tol=0.0, time_limit=60.0)
    assert full.status == "optimal" and full.objective == pytest.approx(optimum, rel=1e-9)


def test_selector_defaults_to_squares_and_certifies_heuristics():
    rng = np.random.default_rng(2)
    Z, y, true = correlated(600, 30, seed=2, planted=3, noise=0.3)
    X = np.hstack([Z, rng.standard_normal((600, 60))])
    sel = MilpSelector(m=40, time_limit=30.0)
    assert sel.objective == "squares"
    sup = sel.set_params(ks=[1, 3, 8]).fit(X, y).supports_
    assert sorted(sup[3].tolist()) == true.tolist()
    for k in (1, 3, 8):
        rep = sel.reports_[k]
        assert rep.solver == "leaps-bnb" and rep.status == "optimal" and rep.gap <= 1e-4 and rep.n_candidates == 40
        # the reported objective is the squares objective of the returned units
        assert rep.objective == pytest.approx(probe_objective(X, y.astype(bool), sup[k], 1.0, "squares"), rel=1e-9)
    cmp = heuristic_matches(X, y, sel, methods=("f_stat", "random"))
    assert not cmp[3]["random"]["as_good"]
    assert cmp[3]["random"]["objective"] > sel.results_[3].objective
    with pytest.raises(ConfigError, match="objective"):
        MilpSelector(m=10, objective="hinge").set_params(ks=[1]).fit(X, y)
