"""Controls: shuffled labels, random rotation, token identity and single units, on planted features."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic_store import planted

from probebank.probing.controls import grouped_shuffle, random_rotation, single_unit_f1, token_identity_f1
from probebank.probing.evaluate import evaluate_store
from probebank.probing.schema import ProbeConfig

CFG = ProbeConfig(methods=["mean_diff"], k_grid=[1, 2, 4, 8], seeds=[0, 1, 2])


def _records(p, controls: bool = True, cfg: ProbeConfig = CFG):
    return list(evaluate_store(p.store, p.built, p.provenance, cfg, ["mlp"], [0, 1], progress=False,
                               controls=controls))


def test_every_record_carries_its_controls() -> None:
    recs = _records(planted())
    sparse = [r for r in recs if r.method == "mean_diff"]
    assert len(sparse) == 2 * 3 * 4  # layers x seeds x k
    for r in sparse:
        c = r.controls
        assert None not in (c.shuffled_f1, c.selectivity, c.rotation_f1, c.token_identity_f1)
        assert c.selectivity == pytest.approx(r.metrics.f1 - c.shuffled_f1)
    dense = [r for r in recs if r.method == "dense"]
    assert len(dense) == 6 and all(r.controls.token_identity_f1 is not None and r.controls.shuffled_f1 is None
                                   for r in dense)
    singles = [r for r in recs if r.method == "single_unit"]
    assert len(singles) == 6
    # the planted unit alone reaches F1 >= 0.9 in layer 0; nothing does in the noise layer
    assert all(r.units[0] == 5 and r.method_params["n_units"] >= 1 for r in singles if r.layer == 0)
    assert all(r.method_params["n_units"] == 0 for r in singles if r.layer == 1)
    assert all(r.controls is None for r in _records(planted(), controls=False))


def test_mean_pooled_rows_have_no_token_identity_baseline() -> None:
    recs = _records(planted(aggregation="mean"))
    assert all(r.controls.token_identity_f1 is None for r in recs if r.controls)


def test_planted_feature_is_selective_and_shuffled_labels_are_not() -> None:
    real = [r for r in _records(planted()) if r.method == "mean_diff" and r.layer == 0 and r.k == 1]
    assert np.mean([r.metrics.f1 for r in real]) > 0.9
    assert np.mean([r.controls.selectivity for r in real]) > 0.35
    fake = [r for r in _records(planted(shuffled=True)) if r.method == "mean_diff"]
    sel = [r.controls.selectivity for r in fake]
    assert abs(np.mean(sel)) < 0.1
    assert np.mean([r.metrics.f1 for r in fake]) < 0.65


def test_rotation_hides_a_single_neuron_feature() -> None:
    recs = [r for r in _records(planted()) if r.method == "mean_diff" and r.layer == 0 and r.k == 1]
    neuron = np.mean([r.metrics.f1 for r in recs])
    rotated = np.mean([r.controls.rotation_f1 for r in recs])
    assert neuron - rotated > 0.15


def test_random_rotation_is_orthogonal_seeded_and_shared() -> None:
    X = np.random.default_rng(1).standard_normal((10, 24)).astype(np.float32)
    R = random_rotation(X, 0)
    np.testing.assert_allclose(np.linalg.norm(R, axis=1), np.linalg.norm(X, axis=1), rtol=1e-4)
    Q = random_rotation(np.eye(24, dtype=np.float32), 0)
    np.testing.assert_allclose(Q.T @ Q, np.eye(24), atol=1e-5)
    np.testing.assert_array_equal(random_rotation(X, 0), R)
    assert not np.allclose(random_rotation(X, 1), R)


def test_grouped_shuffle_keeps_groups_and_balance() -> None:
    groups = np.repeat(np.arange(20), 3)
    y = np.repeat(np.tile([0, 1], 10), 3)
    ytr, yte = grouped_shuffle(y, y[:30], groups, groups[:30], seed=0)
    assert ytr.sum() == y.sum() and not np.array_equal(ytr, y)
    assert all(len(set(ytr[groups == g])) == 1 for g in range(20))  # one label per group still
    # labels varying inside groups (per-token data): a row permutation, balance kept
    y_mixed = np.tile([0, 1, 1], 20)
    ytr, _ = grouped_shuffle(y_mixed, y_mixed, groups, groups, seed=0)
    assert ytr.sum() == y_mixed.sum() and sorted(ytr) == sorted(y_mixed)


def test_single_unit_f1_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    Xtr, Xte = rng.standard_normal((40, 6)), rng.standard_normal((30, 6))
    ytr, yte = rng.integers(0, 2, 40), rng.integers(0, 2, 30)
    Xtr[:, 2] += 2 * ytr
    Xte[:, 2] += 2 * yte
    Xtr[:, 4] -= 3 * ytr
    Xte[:, 4] -= 3 * yte
    got = single_unit_f1(Xtr, ytr, Xte, yte)

    def f1(y, p):
        tp = np.sum(y & p)
        return 0.0 if tp == 0 else 2 * tp / (2 * tp + np.sum(~y.astype(bool) & p) + np.sum(y.astype(bool) & ~p))

    for u in range(6):
        xs = np.unique(Xtr[:, u])
        cuts = (xs[1:] + xs[:-1]) / 2
        up_f1 = [f1(ytr.astype(bool), Xtr[:, u] > t) for t in cuts]
        down_f1 = [f1(ytr.astype(bool), Xtr[:, u] < t) for t in cuts]
        up = max(up_f1) >= max(down_f1)  # same tie rule: upward first, then the lowest cut
        t = cuts[int(np.argmax(up_f1 if up else down_f1))]
        assert got.test_f1[u] == pytest.approx(f1(yte.astype(bool), Xte[:, u] > t if up else Xte[:, u] < t))
        assert got.train_f1[u] == pytest.approx(max(up_f1 if up else down_f1))
        assert bool(got.upward[u]) == up and got.threshold[u] == pytest.approx(t)
    assert got.test_f1[2] > 0.7 and got.test_f1[4] > 0.7
    assert got.best_on_train() in (2, 4)


def test_token_identity_baseline() -> None:
    tokens = np.array([1, 1, 2, 2, 1, 2, 3, 3])
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    assert token_identity_f1(tokens, np.arange(4), y[:4], np.arange(4, 8), y[4:]) == 1.0
    assert token_identity_f1(None, np.arange(4), y[:4], np.arange(4, 8), y[4:]) is None
