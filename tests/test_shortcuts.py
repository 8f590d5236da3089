"""Shortcut baselines: a cue that decides the label is found; a useless cue is not."""
from __future__ import annotations

import numpy as np

from probebank.data.shortcuts import categorical_shortcut_f1, categorical_shortcut_predict, numeric_shortcut_f1


def test_token_identity_solves_a_lexical_feature_and_not_a_contextual_one() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=2000)
    lexical = (tokens % 2 == 0).astype(int)           # decided by the token alone
    contextual = rng.integers(0, 2, size=2000)         # independent of the token
    tr, te = slice(0, 1400), slice(1400, None)
    assert categorical_shortcut_f1(tokens[tr], lexical[tr], tokens[te], lexical[te]) == 1.0
    assert categorical_shortcut_f1(tokens[tr], contextual[tr], tokens[te], contextual[te]) < 0.7


def test_unseen_values_fall_back_to_the_training_majority() -> None:
    pred = categorical_shortcut_predict(["a", "a", "b"], np.array([1, 1, 0]), ["c", "a", "b"])
    assert pred.tolist() == [1, 1, 0]


def test_numeric_shortcut_finds_a_band_and_ignores_noise() -> None:
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 64, size=1500)
    band = ((pos >= 8) & (pos < 16)).astype(int)
    noise = rng.integers(0, 2, size=1500)
    assert numeric_shortcut_f1(pos[:1000], band[:1000], pos[1000:], band[1000:]) > 0.99
    assert numeric_shortcut_f1(pos[:1000], noise[:1000], pos[1000:], noise[1000:]) < 0.7
