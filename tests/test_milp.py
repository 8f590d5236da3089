"""Exact k-sparse probes (probebank.probing.exact): optimality certificates, time limits, warm starts, wiring."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from bench.hinge_milp import naive_bigm_hinge
from probebank.errors import ConfigError
from probebank.probing.exact.compare import heuristic_matches, probe_objective
from probebank.probing.exact.logistic import best_subset_logistic
from probebank.probing.exact.selector import MilpSelector
from probebank.probing.methods import get_selector
from probebank.probing.probes import SparseProbe
from probebank.probing.schema import SolverReport
from probebank.probing.sweep import sweep_feature


def planted(n: int = 300, d: int = 20, seed: int = 0, noise: float = 0.5):
    """Gaussian units; the label is a noisy linear function of 3 planted units."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    true = np.sort(rng.choice(d, 3, replace=False))
    score = X[:, true] @ np.array([2.0, -1.5, 1.0]) + noise * rng.standard_normal(n)
    return X, (score > 0).astype(np.int64), true


def standardise(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / X.std(0)


def test_finds_planted_support_with_certificate():
    X, y, true = planted(n=400, d=30)
    res = best_subset_logistic(standardise(X), y, 3, tol=1e-4, time_limit=30.0)
    assert sorted(res.support.tolist()) == true.tolist()
    assert res.status == "optimal" and not res.time_limited
    assert res.gap < 1e-4 + 1e-12
    assert res.bound <= res.objective
    # the objective is the logistic probe's own objective on those units
    assert res.objective == pytest.approx(probe_objective(X, y.astype(bool), res.support), rel=1e-9)


def test_matches_enumeration_of_every_support():
    # Small enough to enumerate all 220 supports; the certified optimum must be the best one.
    X, y, _ = planted(n=200, d=12, seed=3, noise=1.5)
    Z = standardise(X)
    yb = y.astype(bool)
    for k in (2, 3):
        objs = {S: probe_objective(X, yb, S) for S in combinations(range(12), k)}
        best_S = min(objs, key=objs.get)
        res = best_subset_logistic(Z, y, k, tol=1e-6, time_limit=30.0)
        assert res.status == "optimal"
        assert res.objective == pytest.approx(objs[best_S], rel=1e-6)
        assert res.bound <= objs[best_S] * (1 + 1e-9)  # the lower bound is valid
        assert sorted(res.support.tolist()) == list(best_S)


def test_time_limit_returns_best_solution_with_gap():
    # Pure-noise units beyond the planted three: proving k=6 takes far longer than 20 ms.
    X, y, _ = planted(n=600, d=40, seed=1)
    res = best_subset_logistic(standardise(X), y, 6, time_limit=0.02)
    assert res.time_limited and res.status == "time_limit"
    assert res.support.size == 6 and len(set(res.support.tolist())) == 6
    assert np.isfinite(res.objective) and 0 < res.gap <= 1.0
    rep = res.report()
    assert isinstance(rep, SolverReport) and rep.time_limited and rep.gap == res.gap


def test_warm_start_is_used():
    X, y, true = planted(n=400, d=30, seed=2)
    Z = standardise(X)
    bad = np.array([0, 1, 2]) if not set(true) & {0, 1, 2} else np.array([27, 28, 29])
    # With no time to search, the answer is the best warm support (the planted one).
    res = best_subset_logistic(Z, y, 3, time_limit=1e-6, warm_supports=[bad, true], local_search=False)
    assert res.warm_start and res.report().warm_start
    assert sorted(res.support.tolist()) == true.tolist()
    cold = best_subset_logistic(Z, y, 3, time_limit=1e-6, local_search=False)
    assert not cold.warm_start


def test_selector_reports_and_probe_wiring():
    rng = np.random.default_rng(5)
    X, y, true = planted(n=400, d=30, seed=5)
    X = np.hstack([X, rng.standard_normal((400, 170))])  # 200 units, top 30 are candidates
    sel = get_selector("milp", m=30, time_limit=20.0)
    assert isinstance(sel, MilpSelector)
    sup = sel.set_params(ks=[3, 12]).fit(X, y).supports_
    assert sorted(sup[3].tolist()) == true.tolist()
    assert set(sel.reports_) == {3}  # 12 > k_max=8 is the filter's ranking, not solved
    assert sel.reports_[3].status == "optimal" and sel.reports_[3].n_candidates == 30
    assert sel.reports_[3].warm_start

    probe = SparseProbe(k=3, method="milp", method_params={"m": 30}).fit(X, y)
    assert sorted(probe.selected_units_.tolist()) == true.tolist()
    assert probe.score(X, y) > 0.9

    points = sweep_feature(X[:300], y[:300], X[300:], y[300:], method="milp", k_grid=[1, 3, 16],
                           method_params={"m": 30, "time_limit": 20.0}, dense=False)
    by_k = {p.k: p for p in points}
    assert isinstance(by_k[3].solver, SolverReport) and by_k[3].solver.gap <= 1e-4 + 1e-12
    assert by_k[1].solver is not None and by_k[16].solver is None
    assert by_k[3].metrics["f1"] > 0.85


def test_heuristic_comparison():
    X, y, true = planted(n=400, d=30, seed=0)
    sel = MilpSelector(m=30, time_limit=20.0)
    sel.set_params(ks=[3]).fit(X, y)
    cmp = heuristic_matches(X, y, sel, methods=("f_stat", "random"))
    assert cmp[3]["f_stat"]["same_support"] and cmp[3]["f_stat"]["certified"]
    assert not cmp[3]["random"]["as_good"] and not cmp[3]["random"]["certified"]
    assert cmp[3]["random"]["objective"] > sel.results_[3].objective
    with pytest.raises(ValueError, match="fit"):
        heuristic_matches(X, y, MilpSelector())
    # a heuristic that ties an unproven MILP is as good but not certified
    hard = MilpSelector(m=30, time_limit=0.01, enumerate_max=0, objective="logistic")
    Xh, yh, _ = planted(n=600, d=30, seed=1)
    hard.set_params(ks=[6]).fit(Xh, yh)
    assert hard.results_[6].time_limited
    for v in heuristic_matches(Xh, yh, hard, methods=("f_stat",))[6].values():
        assert not v["certified"]


def test_naive_bigm_baseline_solves_small_problem():
    X, y, true = planted(n=150, d=10, seed=4, noise=0.2)
    res = naive_bigm_hinge(standardise(X), y, 3, time_limit=30.0)
    assert res.status == "optimal" and res.gap <= 1e-4
    assert sorted(res.support.tolist()) == true.tolist()


def test_bad_parameters():
    X, y, _ = planted(n=100, d=12)
    with pytest.raises(ConfigError, match="k_max"):
        MilpSelector(m=5).set_params(ks=[3]).fit(X, y)  # k_max=8 > m=5
    with pytest.raises(ConfigError, match="m"):
        MilpSelector(m=0).set_params(ks=[1]).fit(X, y)
    with pytest.raises(ConfigError, match="prefilter"):
        MilpSelector(m=10, prefilter="nope").set_params(ks=[1]).fit(X, y)
    with pytest.raises(ConfigError):
        SparseProbe(k=6, method="milp", method_params={"m": 5}).fit(X, y)
    with pytest.raises(ValueError, match="k must be between"):
        best_subset_logistic(standardise(X), y, 13)
    with pytest.raises(ValueError, match="k must be between"):
        best_subset_logistic(standardise(X), y, 0)


def test_branch_and_bound_agrees_with_full_enumeration():
    # Random small problems (noisy labels, correlated units): the branch and bound's certified
    # optimum must be the best of every k-subset, and its bound must be valid, for k = 1..4.
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n, d = 150, 10
        X = rng.standard_normal((n, d)) + 0.7 * rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))
        y = (X[:, :3] @ rng.standard_normal(3) + 1.5 * rng.standard_normal(n) > 0).astype(np.int64)
        Z, yb = standardise(X), y.astype(bool)
        for k in (1, 2, 3, 4):
            objs = {S: probe_objective(X, yb, S) for S in combinations(range(d), k)}
            best_S = min(objs, key=objs.get)
            res = best_subset_logistic(Z, y, k, tol=1e-6, time_limit=30.0, enumerate_max=0, strategy="bnb")
            assert res.solver == "branch_and_bound"
            assert res.status == "optimal" and not res.time_limited
            assert res.objective == pytest.approx(objs[best_S], rel=1e-6)
            assert res.bound <= objs[best_S] * (1 + 1e-9)
            assert sorted(res.support.tolist()) == list(best_S)


def test_branch_and_bound_proves_planted_optimum_and_agrees_with_oa():
    X, y, true = planted(n=400, d=30, seed=6)
    Z = standardise(X)
    res = best_subset_logistic(Z, y, 3, time_limit=30.0, enumerate_max=0, strategy="bnb")
    assert res.solver == "branch_and_bound" and res.status == "optimal" and res.gap <= 1e-4 + 1e-12
    assert sorted(res.support.tolist()) == true.tolist()
    assert res.rounds > 0  # nodes visited: the proof came from the search, not the warm start alone
    oa = best_subset_logistic(Z, y, 3, time_limit=30.0, enumerate_max=0, strategy="oa")
    assert oa.solver == "highs" and sorted(oa.support.tolist()) == true.tolist()
    assert res.objective == pytest.approx(oa.objective, rel=1e-9)


def test_branch_and_bound_time_limit_keeps_a_valid_gap():
    X, y, _ = planted(n=600, d=40, seed=1)
    res = best_subset_logistic(standardise(X), y, 6, time_limit=0.02, enumerate_max=0, strategy="bnb")
    assert res.time_limited and res.status == "time_limit" and res.report().time_limited
    assert 0 < res.gap <= 1.0 and 0.0 <= res.bound < res.objective
    with pytest.raises(ValueError, match="strategy"):
        best_subset_logistic(standardise(X), y, 2, strategy="nope")
    with pytest.raises(ConfigError, match="strategy"):
        MilpSelector(m=10, strategy="nope").set_params(ks=[1]).fit(X, y)


def test_run_with_milp_reports_certificates(tmp_path) -> None:
    from probebank.results.records import read_records
    from probebank.run import RunConfig, run

    out = run(RunConfig(model="tiny:llama", datasets=["factual-country-continent"], limit=20, methods=["milp"],
                        layers=[1], seeds=[0], k_grid=[1, 2, 4, 16], out=tmp_path / "r", progress=False,
                        controls=False),
              log=lambda m: None)
    solved = [r for r in read_records(out.out) if r.solver is not None]
    assert solved and all(r.solver.solver == "leaps-bnb" and r.solver.status == "optimal" for r in solved)
    assert {r.k for r in solved} == {1, 2, 4} and all(r.solver.gap <= 1e-6 for r in solved)  # 16 > k_max: no proof
    assert out.certificates.startswith(f"exact probes (leaps-bnb): {len(solved)} solves, {len(solved)} proven")
    assert out.certificates in (out.out / "summary.md").read_text()
