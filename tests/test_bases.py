"""Unsupervised bases: shapes, reconstruction, planted-direction recovery, content-addressed reuse,
the safetensors SAE loader, the train/test overlap flag, and `run --bases` on a tiny model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from probebank.bases.builtin import BUILTIN_BASES
from probebank.bases.corpus import OverlapIndex, passages
from probebank.bases.metrics import fvu, unit_activity
from probebank.bases.sae import TopKTrainConfig, train_topk_sae
from probebank.bases.sae_io import load_sae_folder, save_sae_folder
from probebank.bases.spec import make_basis, parse_spec
from probebank.bases.store import BasisStore, fit_or_load
from probebank.errors import BasisError
from probebank.probing.controls import best_single_unit

SMALL = {"ica": "ica:n_components=8", "dictionary": "dictionary:n_components=12:max_iter=2:nonzero=3:alpha=1",
         "sae-topk": "sae-topk:expansion=2:k=4:epochs=2:batch_size=128"}


def _low_rank(n: int = 1500, width: int = 32, rank: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Laplace sources (non-Gaussian, so ICA has something to find) mixed into `width` dims.
    S = rng.laplace(size=(n, rank))
    A = rng.standard_normal((rank, width))
    return (S @ A + 0.01 * rng.standard_normal((n, width)) + 3.0).astype(np.float32)


def _planted_sparse(n: int, width: int, atoms: int, active: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((atoms, width))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    for i in range(n):
        codes[i, rng.choice(atoms, active, replace=False)] = rng.uniform(1.0, 3.0, active)
    return (codes @ D).astype(np.float32), D


@pytest.mark.parametrize("name", sorted(set(BUILTIN_BASES) - {"sae"}))
def test_each_builtin_fits_encodes_decodes_with_right_shapes(name: str, tmp_path: Path) -> None:
    X = _low_rank()
    spec = parse_spec(SMALL.get(name, name))
    fb = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {"t": name}, lambda: X, BasisStore(tmp_path), width=32)
    codes = fb.basis.transform(X[:50])
    expected_units = {"ica": 8, "dictionary": 12, "sae-topk": 64}.get(name, 32)
    assert codes.shape == (50, expected_units) and codes.dtype == np.float32
    recon = fb.basis.inverse_transform(codes)
    assert recon.shape == (50, 32)
    if name in ("identity", "random-rotation", "pca"):
        assert fvu(X[:50], recon) < 1e-4  # complete bases reconstruct exactly
    if name == "random-rotation":
        Q = fb.basis.rotation_
        assert np.allclose(Q.T @ Q, np.eye(32), atol=1e-4) and not np.allclose(Q, np.eye(32), atol=0.1)
    if name == "sae-topk":
        assert ((codes != 0).sum(1) <= 4).all()


def test_pca_and_ica_explain_low_rank_data_and_more_components_help(tmp_path: Path) -> None:
    X = _low_rank(rank=4)
    for spec in ("pca:n_components=4", "ica:n_components=4"):
        s = parse_spec(spec)
        fb = fit_or_load(s, make_basis(s, BUILTIN_BASES), {}, lambda: X, BasisStore(tmp_path), width=32)
        assert fvu(X, fb.basis.inverse_transform(fb.basis.transform(X))) < 0.01, spec
    s = parse_spec("pca:n_components=2")
    two = fit_or_load(s, make_basis(s, BUILTIN_BASES), {}, lambda: X, BasisStore(tmp_path), width=32).basis
    assert fvu(X, two.inverse_transform(two.transform(X))) > 0.2  # rank 4 data: two components cannot explain it


def test_topk_sae_recovers_planted_sparse_directions_better_than_random() -> None:
    X, D = _planted_sparse(n=6000, width=24, atoms=32, active=2, seed=1)
    weights, report = train_topk_sae(X, TopKTrainConfig(d_sae=64, k=3, epochs=6, batch_size=128, lr=3e-3, seed=0),
                                     progress=False)
    dec = weights.W_dec / np.linalg.norm(weights.W_dec, axis=1, keepdims=True)
    recovered = np.abs(D @ dec.T).max(axis=1)           # best cosine of each planted direction
    rng = np.random.default_rng(5)
    R = rng.standard_normal((64, 24))
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    chance = np.abs(D @ R.T).max(axis=1)
    assert recovered.mean() > 0.9 > chance.mean() + 0.2, (recovered.mean(), chance.mean())
    assert fvu(X, weights.decode(weights.encode(X))) < 0.2
    assert report.steps == 6 * (6000 // 128)


def test_fitted_basis_is_stored_content_addressed_and_reused(tmp_path: Path, monkeypatch) -> None:
    X = _low_rank()
    store = BasisStore(tmp_path)
    spec = parse_spec("sae-topk:expansion=1:k=4:epochs=1:batch_size=256")
    parts = {"model": "m", "revision": "r", "site": "mlp", "layer": 3, "corpus": "abc"}
    first = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), parts, lambda: X, store)
    assert not first.reused and (tmp_path / first.key / "arrays.safetensors").is_file()
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))

    def no_training():
        raise AssertionError("trained again although the key is the same")

    cls = BUILTIN_BASES["sae-topk"]
    monkeypatch.setattr(cls, "fit", lambda self, X, y=None: no_training())
    second = fit_or_load(spec, make_basis(spec, BUILTIN_BASES), parts, no_training, store)
    assert second.reused and second.key == first.key
    assert np.allclose(second.basis.transform(X[:20]), first.basis.transform(X[:20]), atol=1e-5)
    # Another corpus, layer or setting is another key (and would train).
    for change in ({"corpus": "xyz"}, {"layer": 4}):
        with pytest.raises(AssertionError, match="trained again"):
            fit_or_load(spec, make_basis(spec, BUILTIN_BASES), {**parts, **change}, no_training, store)
    other = parse_spec("sae-topk:expansion=1:k=5:epochs=1:batch_size=256")
    with pytest.raises(AssertionError, match="trained again"):
        fit_or_load(other, make_basis(other, BUILTIN_BASES), parts, no_training, store)


def test_safetensors_sae_folder_round_trips_and_rejects_wrong_shapes(tmp_path: Path) -> None:
    X, _ = _planted_sparse(n=1000, width=16, atoms=20, active=2, seed=2)
    weights, _ = train_topk_sae(X, TopKTrainConfig(d_sae=32, k=4, epochs=1, batch_size=100), progress=False)
    folder = save_sae_folder(weights, tmp_path / "my-sae")
    basis = make_basis(parse_spec(f"sae:{folder}"), BUILTIN_BASES)
    fb = fit_or_load(parse_spec(f"sae:{folder}"), basis, {}, None, width=16)
    assert np.allclose(basis.transform(X[:30]), weights.encode(X[:30]), atol=1e-5)
    assert np.allclose(basis.inverse_transform(basis.transform(X[:30])), weights.decode(weights.encode(X[:30])),
                       atol=1e-5)
    assert fb.key and len(fb.key) == 24  # keyed by the weights file's hash

    with pytest.raises(BasisError) as err:  # an SAE of another layer width
        load_sae_folder(folder, width=24)
    msg = str(err.value)
    assert "sae_weights.safetensors" in msg and "W_enc" in msg and "width 24" in msg

    from safetensors.numpy import save_file
    bad = tmp_path / "bad-sae"
    bad.mkdir()
    arrays = weights.arrays()
    arrays["W_dec"] = arrays["W_dec"][:, :8].copy()
    save_file(arrays, str(bad / "sae_weights.safetensors"))
    (bad / "cfg.json").write_text(json.dumps({"k": 4}))
    with pytest.raises(BasisError, match=r"field 'W_dec'.*\(32, 8\).*expected \(32, 16\)"):
        load_sae_folder(bad, width=16)
    del arrays["b_enc"]
    save_file({k: v for k, v in weights.arrays().items() if k != "b_enc"}, str(bad / "sae_weights.safetensors"))
    with pytest.raises(BasisError, match="missing tensor 'b_enc'"):
        load_sae_folder(bad, width=16)
    with pytest.raises(BasisError, match="SAE folder not found"):
        load_sae_folder(tmp_path / "nowhere", width=16)


def test_overlap_index_flags_copied_text_only() -> None:
    corpus = passages(["Call me Ahab the captain. The white whale swims far beyond the grey horizon of the "
                       "restless sea while the crew sleeps below the deck in silence. Then the sun rose."])
    index = OverlapIndex.of(corpus)
    copied = "As the book says, the white whale swims far beyond the grey horizon of the restless sea, indeed."
    assert index.overlaps(copied)
    assert index.overlaps(corpus[0].upper())  # exact text, whatever the case
    assert not index.overlaps("The white whale swims far away from the harbour and the grey city.")
    assert index.count([copied, "unrelated words here"]) == 1


def test_best_single_unit_finds_the_informative_unit_and_activity_counts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    X = rng.standard_normal((400, 50)).astype(np.float32)
    X[:, 17] = -3.0 * y + 0.3 * rng.standard_normal(400)  # negatively tied to the label
    unit, f1_train, f1_test = best_single_unit(X[:200], y[:200], X[200:], y[200:])
    assert unit == 17 and f1_test > 0.95
    codes = np.zeros((100, 4), np.float32)
    codes[:, 1] = 1.0
    codes[:5, 2] = 1.0
    assert unit_activity(codes) == (0.5, 0.25)


def test_spec_parsing_and_unknown_basis() -> None:
    assert parse_spec("sae-topk:k=16:expansion=2").kwargs() == {"expansion": 2, "k": 16}
    assert parse_spec("sae:/a/b").path == "/a/b" and parse_spec("pca").label == "pca"
    with pytest.raises(BasisError, match="unknown basis 'pcaa'"):
        make_basis(parse_spec("pcaa"), BUILTIN_BASES)
    with pytest.raises(BasisError, match="basis 'pca' has no setting 'bogus'.*takes: n_components, random_state"):
        make_basis(parse_spec("pca:bogus=1"), BUILTIN_BASES)


def test_run_with_bases_writes_records_and_metrics_per_basis(bank, tmp_path: Path, monkeypatch) -> None:
    import probebank.bases.corpus as corpus_module
    from probebank.bases.run import BASES_FILE, read_basis_records
    from probebank.cli import main
    from probebank.run import RunConfig, run

    monkeypatch.setattr(corpus_module, "DEFAULT_TOKENS", 1500)  # a short real corpus prefix (Moby-Dick)
    folder = bank()
    bases = ["identity", "random-rotation", "pca", "sae-topk:expansion=1:k=4:epochs=1:batch_size=64"]
    cfg = RunConfig(model="tiny:llama", datasets=["toy-words"], include=[folder], out=tmp_path / "out",
                    progress=False, layers=[1, 2], bases=bases, k_grid=[1, 2, 4])
    outcome = run(cfg, log=lambda m: None)
    records = [json.loads(line) for line in (tmp_path / "out" / "records.jsonl").read_text().splitlines()]
    assert outcome.n_records == len(records)
    assert {r["basis"] for r in records} == set(bases)
    by_basis = {b: [r for r in records if r["basis"] == b] for b in bases}
    assert len({len(v) for v in by_basis.values()}) == 1  # same grid for every basis
    assert all(r["basis_key"] is None for r in by_basis["identity"] + by_basis["random-rotation"])
    assert all(r["basis_key"] and r["basis_flags"] == [] for r in by_basis["pca"])
    metrics = read_basis_records(tmp_path / "out")
    assert {(m.basis, m.layer) for m in metrics} == {(b, layer) for b in bases for layer in (1, 2)}
    for m in metrics:
        assert set(m.f1_at_k) == {1, 2, 4} and 0.0 <= m.coverage_90 <= m.coverage_80 <= 1.0
        assert m.fvu is not None and (m.fvu < 1e-3 if m.basis in ("identity", "pca", "random-rotation") else m.fvu < 1.5)
    assert (tmp_path / "out" / BASES_FILE).is_file()
    # The results command still reads the folder (bases metrics are not *.jsonl result records).
    assert main(["results", str(tmp_path / "out"), "--format", "json"]) == 0
    assert main(["bases", "--compare", str(tmp_path / "out"), "--format", "json"]) == 0


def test_trained_bases_are_flagged_when_training_text_overlaps_a_test_text(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from probebank.bases.run import OVERLAP_FLAG, BasisRun
    from probebank.probing.schema import Metrics, Provenance, ResultRecord

    corpus = ["Queequeg was a native of Rokovoko, an island far away to the West and South, not down in any map."]
    run = BasisRun([parse_spec("identity"), parse_spec("pca")], corpus=corpus)
    run.overlap = OverlapIndex.of(corpus)
    X = _low_rank(n=200)
    for spec in run.specs:
        run.fitted[(spec.label, "mlp", 0)] = fit_or_load(spec, make_basis(spec, BUILTIN_BASES),
                                                         {}, lambda: X, BasisStore(tmp_path), width=32)
    texts = ["He said Queequeg was a native of Rokovoko, an island far away to the West and South.",
             "A clean sentence about something else entirely, written for the test."]
    built = SimpleNamespace(dataset={"text": texts})
    assert run.flags(built, [0, 1]) == [OVERLAP_FLAG]
    assert run.flags(built, [1]) == []  # only the test side counts
    prov = Provenance(probebank_version="0", model="m", model_revision="r", model_dtype="float32", dataset="d",
                      dataset_version="1.0", dataset_hash="h")
    rec = ResultRecord(provenance=prov, feature="f", site="mlp", layer=0, aggregation="last", method="mean_diff", k=1,
                       seed=0, n_train=1, n_test=1, n_train_pos=1, n_test_pos=1,
                       metrics=Metrics(f1=1, accuracy=1, precision=1, recall=1, mcc=1))
    flags = [OVERLAP_FLAG]
    stamped = {r.basis: r for r in run._stamp([rec.model_copy(update={"basis": b}) for b in ("identity", "pca")], flags)}
    assert stamped["pca"].basis_flags == [OVERLAP_FLAG] and stamped["pca"].basis_key == run.fitted[("pca", "mlp", 0)].key
    assert stamped["identity"].basis_flags == [] and stamped["identity"].basis_key is None


def test_training_rows_drop_first_tokens_and_massive_activations() -> None:
    from probebank.bases.run import training_rows

    X = np.ones((6, 4), np.float32)
    X[3] = 500.0  # a massive-activation token
    kept = training_rows(X, np.array([0, 1, 2, 3, 0, 5]))
    assert kept.shape == (3, 4) and kept.max() == 1.0
