"""Selection methods: planted units are recovered, outputs are valid, the sklearn contract holds."""
from __future__ import annotations

import warnings

import numpy as np
import pluggy
import pytest
from sklearn.base import clone

from probebank import hookspecs
from probebank.probing.methods import BUILTIN_METHODS, get_selector
from probebank.probing.selection import Adaptive, FStat, L1Path, MeanDiff, MutualInfo, RandomUnits, Selector

PLANTED = (7, 123, 180)


def planted(n: int = 400, d: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tailed units (t, df=5) on an fp16-like scale; three units shift with the label.

    Column 5 is constant, column 6 all zero; values pass through float16 like the store.
    """
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int64)
    X = rng.standard_t(5, size=(n, d))
    for shift, u in zip((3.0, 2.5, 2.0), PLANTED):
        X[:, u] += shift * y
    X[:, 5] = 3.0
    X[:, 6] = 0.0
    X *= 100.0  # MLP neurons reach |x| ~ 3000
    return X.astype(np.float16).astype(np.float32), y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return planted()


RECOVERING = [MeanDiff(), FStat(), MutualInfo(), L1Path(), Adaptive(start=64)]


@pytest.mark.parametrize("selector", RECOVERING, ids=lambda s: type(s).__name__)
def test_recovers_planted_units(selector: Selector, data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    sup = selector.set_params(ks=[1, 2, 3, 10], random_state=0).fit(X, y).supports_
    assert set(sup[3].tolist()) == set(PLANTED)
    assert sup[1][0] in PLANTED
    assert set(sup[3].tolist()) <= set(sup[10].tolist())


ALL = [MeanDiff(), FStat(), MutualInfo(), L1Path(), Adaptive(start=64), RandomUnits()]


@pytest.mark.parametrize("selector", ALL, ids=lambda s: type(s).__name__)
def test_outputs_are_valid_and_capped(selector: Selector, data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    d = X.shape[1]
    ks = [1, 4, 16, d + 50]
    sup = selector.set_params(ks=ks, random_state=3).fit(X, y).supports_
    assert sorted(sup) == sorted(ks)
    for k, units in sup.items():
        assert units.dtype.kind == "i"
        assert units.size == min(k, d)
        assert np.unique(units).size == units.size
        assert units.min() >= 0 and units.max() < d
    assert sorted(sup[d + 50].tolist()) == list(range(d))
    if selector.nested:
        assert np.array_equal(sup[4], sup[16][:4])


@pytest.mark.parametrize("selector", [MeanDiff(), FStat(), MutualInfo(), L1Path()], ids=lambda s: type(s).__name__)
def test_rank_is_a_permutation_with_constant_units_last(selector: Selector, data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    order = selector.set_params(random_state=0).fit(X, y).ranking_
    assert sorted(order.tolist()) == list(range(X.shape[1]))
    # the constant and the all-zero column carry no information: never in the top half
    pos = {u: i for i, u in enumerate(order.tolist())}
    assert pos[5] >= X.shape[1] // 2 and pos[6] >= X.shape[1] // 2


def test_mean_diff_is_on_raw_activations(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    X = X.copy()
    # unit 50: a perfect separator on a tiny scale. F-stat (scale-free) puts it first;
    # the raw mean difference (the paper's default) does not see it.
    X[:, 50] = (y * 0.02 + 0.001 * np.random.default_rng(1).standard_normal(y.size)).astype(np.float32)
    expected = np.abs(X[y == 1].astype(np.float64).mean(0) - X[y == 0].astype(np.float64).mean(0))
    np.testing.assert_allclose(MeanDiff().fit(X, y).scores_, expected, rtol=1e-12)
    assert FStat().fit(X, y).ranking_[0] == 50
    assert 50 not in MeanDiff().fit(X, y).ranking_[:10].tolist()


def test_f_stat_is_nan_safe_and_silent(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = FStat().fit(X, y).scores_
    assert np.isfinite(scores).all() and (scores >= 0).all()
    # constant units score exactly 0 (sklearn's one-pass f_classif gives garbage on float32 here)
    assert scores[5] == 0.0 and scores[6] == 0.0


def test_f_stat_matches_sklearn_on_well_conditioned_data() -> None:
    from sklearn.feature_selection import f_classif

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    X = rng.standard_normal((300, 30)) + y[:, None] * rng.random(30)
    np.testing.assert_allclose(FStat().fit(X, y).scores_, f_classif(X, y)[0], rtol=1e-9)
    # within-class constant but different between classes: a perfect separator ranks first
    X[:, 4] = y * 2.0
    assert FStat().fit(X, y).ranking_[0] == 4


def test_large_fp16_values_do_not_break_sums() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 300)
    X = (rng.standard_normal((600, 40)) * 10 + 30000).astype(np.float16).astype(np.float32)
    X[:, 11] += y.astype(np.float32) * 64  # one fp16 step at 30000 is 16
    for sel in (MeanDiff(), FStat(), L1Path()):
        assert sel.fit(X, y).ranking_[0] == 11, type(sel).__name__


def test_random_is_seeded() -> None:
    X, y = planted(n=60)
    sel = RandomUnits()
    a = sel.set_params(ks=[5, 50], random_state=1).fit(X, y).supports_
    b = sel.set_params(ks=[5, 50], random_state=1).fit(X, y).supports_
    c = sel.set_params(ks=[5, 50], random_state=2).fit(X, y).supports_
    assert np.array_equal(a[50], b[50])
    assert not np.array_equal(a[50], c[50])
    assert np.array_equal(a[5], a[50][:5])


def test_seeded_methods_are_deterministic(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    for sel in (MutualInfo(), Adaptive(start=32)):
        a = sel.set_params(ks=[2, 8], random_state=4).fit(X, y).supports_
        b = sel.set_params(ks=[2, 8], random_state=4).fit(X, y).supports_
        assert all(np.array_equal(a[k], b[k]) for k in a), type(sel).__name__


def test_mutual_info_prefilter_and_row_cap(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    sel = MutualInfo(prefilter=20, max_rows=150)
    order = sel.set_params(random_state=0).fit(X, y).ranking_
    assert sorted(order.tolist()) == list(range(X.shape[1]))
    assert set(order[:3].tolist()) == set(PLANTED)
    # units outside the prefilter follow in F-statistic order
    by_f = FStat().fit(X, y).ranking_
    assert np.array_equal(order[20:], by_f[np.isin(by_f, order[:20], invert=True)])


def test_adaptive_supports_shrink_through_the_grid(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    sup = Adaptive(start=64).set_params(ks=[64, 16, 4, 3], random_state=0).fit(X, y).supports_
    # each support is drawn from the one above it in the grid
    assert set(sup[16].tolist()) <= set(sup[64].tolist())
    assert set(sup[4].tolist()) <= set(sup[16].tolist())
    assert set(sup[3].tolist()) <= set(sup[4].tolist())
    assert not Adaptive.nested


def test_adaptive_fits_once_per_support_like_the_paper(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    sizes: list[int] = []

    class Counting(Adaptive):
        def _fit_abs_coef(self, Z: np.ndarray, yb: np.ndarray) -> np.ndarray:
            sizes.append(Z.shape[1])
            return super()._fit_abs_coef(Z, yb)

    Counting(start=64).set_params(ks=[64, 16, 4, 3], random_state=0).fit(X, y)
    # fit on the start set (ranks k=64 and picks 16), then on each pruned support but the last
    assert sizes == [64, 16, 4]


def test_l1_entry_order_starts_with_the_strongest_unit(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    order = L1Path(prefilter=None).fit(X, y).ranking_
    assert order[0] == PLANTED[0]


@pytest.mark.parametrize("bad_y, msg", [
    (np.zeros(400, dtype=int), "both classes"),
    (np.arange(400) % 3, "binary"),
])
def test_invalid_labels_raise(bad_y: np.ndarray, msg: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    with pytest.raises(ValueError, match=msg):
        MeanDiff().set_params(ks=[1]).fit(X, bad_y)


def test_non_finite_input_raises(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    X = X.copy()
    X[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        FStat().set_params(ks=[1]).fit(X, y)
    with pytest.raises(ValueError, match="positive integer"):
        MeanDiff().set_params(ks=[0]).fit(data[0], y)


# ---------------------------------------------------------------- sklearn contract and lookup

@pytest.mark.parametrize("cls", list(BUILTIN_METHODS.values()), ids=lambda c: c.__name__)
def test_estimator_contract(cls: type[Selector]) -> None:
    sel = cls()
    params = sel.get_params()
    twin = clone(sel)
    assert type(twin) is cls and twin.get_params() == params and twin is not sel
    if params:
        name = sorted(params)[0]
        sel.set_params(**{name: params[name]})
        assert sel.get_params() == params
    repr(sel)


def test_set_params_changes_behaviour(data: tuple[np.ndarray, np.ndarray]) -> None:
    sel = MutualInfo().set_params(prefilter=5)
    assert sel.prefilter == 5 and clone(sel).prefilter == 5
    with pytest.raises(ValueError):
        MeanDiff().set_params(nonsense=1)


def test_get_selector_by_name_and_instance() -> None:
    sel = get_selector("mutual_info", prefilter=12)
    assert isinstance(sel, MutualInfo) and sel.prefilter == 12
    inst = L1Path(growth=2.0)
    copy = get_selector(inst, max_fits=3)
    assert copy is not inst and copy.growth == 2.0 and copy.max_fits == 3 and inst.max_fits == 40
    with pytest.raises(ValueError, match="unknown selection method 'nope'"):
        get_selector("nope")


def test_methods_plugin_registers_the_builtins() -> None:
    import probebank_plugins.methods as methods_plugin
    from probebank.probing.exact.selector import MilpSelector

    pm = pluggy.PluginManager("probebank")
    pm.add_hookspecs(hookspecs)
    pm.register(methods_plugin)
    table: dict[str, object] = {}
    pm.hook.register_methods(register=lambda name, obj: table.__setitem__(name, obj))
    assert table == {"mean_diff": MeanDiff, "f_stat": FStat, "mutual_info": MutualInfo, "l1": L1Path,
                     "adaptive": Adaptive, "random": RandomUnits, "milp": MilpSelector}


def test_registry_lookup_resolves_builtins() -> None:
    # Goes through probebank.plugins.get_registered (every built-in plugin module).
    from probebank.plugins import get_registered

    methods = get_registered().methods
    for name, cls in BUILTIN_METHODS.items():
        assert methods[name] is cls
        assert type(get_selector(name)) is cls
