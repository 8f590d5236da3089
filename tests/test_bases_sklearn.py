"""Bases as scikit-learn transformers: clone / check_is_fitted, a Pipeline with SparseProbe, the
get_state / set_state round trip, the store's format and code fingerprint in the key, and bad
basis settings refused (exit 2) before the model loads."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from probebank.bases import store as store_module
from probebank.bases.builtin import BUILTIN_BASES
from probebank.bases.sae import TopKTrainConfig, train_topk_sae
from probebank.bases.sae_io import save_sae_folder
from probebank.bases.spec import make_basis, parse_spec
from probebank.bases.store import BasisStore, code_version, fit_or_load
from probebank.errors import BasisError
from probebank.hashing import fingerprint
from probebank.probing.probes import SparseProbe

# dictionary: fewer atoms than the data's 16 dimensions and 3 nonzeros on rank-4 data, so OMP never meets
# linearly dependent atoms; alpha=1 lets every sparse-coding step converge (both would warn otherwise)
SMALL = {"ica": "ica:n_components=8", "dictionary": "dictionary:n_components=12:max_iter=2:nonzero=3:alpha=1",
         "sae-topk": "sae-topk:expansion=2:k=4:epochs=1:batch_size=128"}
WIDTH = 16


def _data(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Low-rank Laplace data with a label carried by one latent direction."""
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(n, 4))
    X = S @ rng.standard_normal((4, WIDTH)) + 0.05 * rng.standard_normal((n, WIDTH)) + 1.0
    return X.astype(np.float32), (S[:, 0] > 0).astype(int)


@pytest.fixture(scope="module")
def sae_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, _ = _data()
    weights, _ = train_topk_sae(X, TopKTrainConfig(d_sae=32, k=4, epochs=1, batch_size=100), progress=False)
    return save_sae_folder(weights, tmp_path_factory.mktemp("sae") / "folder")


def _spec(name: str, sae_folder: Path) -> str:
    return f"sae:{sae_folder}" if name == "sae" else SMALL.get(name, name)


def _fit(basis, X: np.ndarray):
    return basis.fit(X if basis.trainable else np.empty((0, X.shape[1]), np.float32))


@pytest.mark.parametrize("name", sorted(BUILTIN_BASES))
def test_each_builtin_basis_clones_and_reports_whether_it_is_fitted(name: str, sae_folder: Path) -> None:
    X, _ = _data()
    basis = make_basis(parse_spec(_spec(name, sae_folder)), BUILTIN_BASES, random_state=3)
    with pytest.raises(NotFittedError):
        check_is_fitted(basis)
    with pytest.raises(NotFittedError):
        basis.transform(X)
    twin = clone(basis)
    assert type(twin) is type(basis) and twin.get_params() == basis.get_params()
    if "random_state" in basis.get_params():
        assert basis.get_params()["random_state"] == 3
    assert _fit(basis, X) is basis
    check_is_fitted(basis)
    assert basis.n_features_in_ == WIDTH
    codes = basis.transform(X[:40])
    assert codes.dtype == np.float32 and codes.shape[0] == 40
    assert basis.inverse_transform(codes).shape == (40, WIDTH)
    with pytest.raises(NotFittedError):  # a clone is a fresh, unfitted basis with the same settings
        check_is_fitted(clone(basis))
    with pytest.raises(ValueError, match="features"):
        basis.transform(X[:, :5])
    again = _fit(twin, X).transform(X[:40])
    assert np.array_equal(again, codes)  # same settings and seed, same codes


@pytest.mark.parametrize("name", sorted(BUILTIN_BASES))
def test_state_round_trip_gives_the_fitted_basis(name: str, sae_folder: Path) -> None:
    X, _ = _data()
    spec = parse_spec(_spec(name, sae_folder))
    fitted = _fit(make_basis(spec, BUILTIN_BASES), X)
    state = fitted.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    restored = make_basis(spec, BUILTIN_BASES).set_state(state)
    check_is_fitted(restored)
    assert np.array_equal(restored.transform(X), fitted.transform(X))
    assert np.array_equal(restored.inverse_transform(fitted.transform(X[:20])),
                          fitted.inverse_transform(fitted.transform(X[:20])))
    if name != "identity":  # identity has no arrays but n_features_in
        broken = {k: v for k, v in state.items() if k != sorted(set(state) - {"n_features_in"})[0]}
        with pytest.raises(BasisError, match="lacks"):
            make_basis(spec, BUILTIN_BASES).set_state(broken)


@pytest.mark.parametrize("spec, floor", [("pca:n_components=6", 0.8),  # chance is 0.5; the SAE's codes are ReLUs
                                         ("sae-topk:expansion=2:k=4:epochs=2:batch_size=64", 0.6)])
def test_a_basis_and_sparse_probe_compose_in_a_pipeline(spec: str, floor: float) -> None:
    X, y = _data(n=1200)
    pipe = Pipeline([("basis", make_basis(parse_spec(spec), BUILTIN_BASES)), ("probe", SparseProbe(k=3))])
    pipe.fit(X[:800], y[:800])
    accuracy = float((pipe.predict(X[800:]) == y[800:]).mean())
    assert accuracy > floor, accuracy
    # The same as fitting the steps by hand, and a clone of the pipeline refits to the same predictions.
    basis = make_basis(parse_spec(spec), BUILTIN_BASES).fit(X[:800])
    probe = SparseProbe(k=3).fit(basis.transform(X[:800]), y[:800])
    assert np.array_equal(pipe.predict(X[800:]), probe.predict(basis.transform(X[800:])))
    assert np.array_equal(clone(pipe).fit(X[:800], y[:800]).predict(X[800:]), pipe.predict(X[800:]))
    basis_only = pipe[:-1]  # the basis steps decode: a Pipeline of them has inverse_transform
    assert basis_only.inverse_transform(basis_only.transform(X[:5])).shape == (5, WIDTH)


def test_pipeline_settings_reach_the_basis() -> None:
    X, y = _data()
    pipe = Pipeline([("basis", make_basis(parse_spec("pca"), BUILTIN_BASES)), ("probe", SparseProbe(k=1))])
    pipe.set_params(basis__n_components=3).fit(X, y)
    assert pipe.named_steps["basis"].transform(X).shape == (len(X), 3)


def test_stored_basis_is_refitted_when_the_format_or_the_code_fingerprint_changes(tmp_path: Path, monkeypatch) -> None:
    X, _ = _data()
    spec = parse_spec("pca:n_components=4")
    store = BasisStore(tmp_path)
    calls = []

    def training() -> np.ndarray:
        calls.append(1)
        return X

    first = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"layer": 1}, training, store)
    assert code_version(first.basis) == fingerprint(type(first.basis))[:16]
    assert first.meta["parts"]["code"] == code_version(first.basis)
    assert fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"layer": 1}, training, store).reused
    assert len(calls) == 1
    # A folder written by an older store format under the same key is not read: the basis is fitted again.
    old = tmp_path / first.key / "meta.json"
    old.write_text(old.read_text().replace(f'"format": {store_module.BASIS_STORE_FORMAT}', '"format": 1'))
    again = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"layer": 1}, training, store)
    assert not again.reused and len(calls) == 2 and again.key == first.key
    # The store format is part of the key, and so is the code fingerprint of the basis class.
    monkeypatch.setattr(store_module, "BASIS_STORE_FORMAT", store_module.BASIS_STORE_FORMAT + 1)
    bumped = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"layer": 1}, training, store)
    assert not bumped.reused and bumped.key != first.key and len(calls) == 3
    monkeypatch.undo()
    monkeypatch.setattr(store_module, "_class_fingerprint", lambda cls: "edited-code")
    edited = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"layer": 1}, training, store)
    assert not edited.reused and edited.key not in (first.key, bumped.key) and len(calls) == 4


def test_code_fingerprint_follows_the_basis_code() -> None:
    from probebank.bases.linear import PCABasis

    class Tweaked(PCABasis):
        def _fit(self, X: np.ndarray) -> None:
            super()._fit(X * 1.0)

    assert code_version(PCABasis()) != code_version(Tweaked())
    assert code_version(PCABasis()) == code_version(PCABasis(n_components=3))  # settings are keyed apart


@pytest.mark.parametrize("spec, message", [
    ("pca:nosuch=1", "basis 'pca' has no setting 'nosuch'"),
    ("pca:n_components=0", "n_components must be a positive integer or none, got 0"),
    ("sae-topk:k=abc", "k must be a positive integer, got 'abc'"),
    ("ica:tol=-1", "tol must be a positive number, got -1"),
    ("dictionary:random_state=-2", "random_state must be a non-negative integer"),
    ("identity:k=1", "basis 'identity' has no setting 'k'"),
    ("pca:/some/folder", "basis 'pca' takes no folder path"),
    ("sae:/no/such/folder", "SAE folder not found"),
])
def test_bad_basis_settings_exit_2_before_the_model_loads(bank, tmp_path: Path, capsys, monkeypatch,
                                                          spec: str, message: str) -> None:
    import probebank.run as run_module
    from probebank.cli import main

    def no_loading(*a, **k):
        raise AssertionError("the model was loaded although a basis setting is bad")

    monkeypatch.setattr(run_module, "load_model", no_loading)
    out = tmp_path / "out"
    code = main(["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(bank()), "--out",
                 str(out), "--no-progress", "--bases", f"identity,{spec}"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert message in text and "--bases" in text, text
    assert "Traceback" not in text
    assert not out.exists()  # nothing written


def test_importing_the_bases_plugin_loads_neither_sklearn_nor_torch() -> None:
    code = ("import sys, probebank_plugins.bases; "
            "print(sorted(m for m in ('sklearn', 'torch', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["pca", "ica", "dictionary"])
def test_trainable_bases_pass_scikit_learns_estimator_checks(name: str) -> None:
    from sklearn.utils.estimator_checks import check_estimator

    settings = {"ica": {"n_components": 3}, "dictionary": {"n_components": 6, "nonzero": 2, "max_iter": 2}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' tiny random data trips convergence warnings
        results = check_estimator(BUILTIN_BASES[name](**settings.get(name, {})), on_fail=None)
    # Bases compute in float32: with rows in another order BLAS blocks the product differently and a code
    # may differ in the last bit, beyond that check's rtol of 1e-7 (it failed now and then for every basis).
    # The test below checks the same invariance at a float32 tolerance.
    known = {"check_methods_sample_order_invariance"}
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed" and r["check_name"] not in known]
    assert len(results) > 40 and failed == []


@pytest.mark.parametrize("name", ["pca", "ica", "dictionary"])
def test_codes_do_not_depend_on_row_order(name: str) -> None:
    settings = {"ica": {"n_components": 3}, "dictionary": {"n_components": 6, "nonzero": 2, "max_iter": 2}}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        basis = BUILTIN_BASES[name](**settings.get(name, {})).fit(X)
    order = rng.permutation(len(X))
    np.testing.assert_allclose(basis.transform(X[order]), basis.transform(X)[order], rtol=1e-4, atol=1e-5)


def test_dictionary_fit_does_not_flood_convergence_warnings() -> None:
    """Coordinate descent on float32 stalls just above its duality-gap tolerance and warned on about every
    sparse-coding step (over 1,100 ConvergenceWarnings for this fit); the fit runs in float64 now."""
    from sklearn.exceptions import ConvergenceWarning

    X, _ = _data()
    for settings, at_most in (({"n_components": 12, "max_iter": 2, "nonzero": 3}, 10),
                              ({"n_components": 12, "max_iter": 2, "nonzero": 3, "alpha": 1.0}, 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            basis = BUILTIN_BASES["dictionary"](**settings).fit(X)
        assert sum(issubclass(w.category, ConvergenceWarning) for w in caught) <= at_most, settings
        assert basis.D_.dtype == np.float32  # stored and encoded in float32 as before
