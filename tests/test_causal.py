"""Causal checks (probebank.causal): the edit hooks against manual forwards, the replayed prefix, the
matched-variance null and its p-value, the causal records, and `probebank inspect ... --ablate` on a real
tiny run."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from report_fixtures import TINY_DATASETS, tiny_run  # noqa: F401  (tiny_run is a fixture)

from probebank.causal.ablate import (
    UnitEdit,
    ablation_edit,
    check_units,
    clean_prefix,
    edited_logits,
    edits_applied,
)
from probebank.causal.head import output_head
from probebank.causal.null import draw_matched, matched_pools, permutation_p, unit_variances, variance_ratios
from probebank.causal.record import (
    CAUSAL_FILE,
    CausalRecord,
    CausalSettings,
    NullSummary,
    add_causal,
    read_causal,
    unit_checks,
)
from probebank.cli import main
from probebank.errors import ConfigError, ModelError
from probebank.extract.capture import capture
from probebank.extract.tiny import tiny_model

TEXTS = ["The cat saw a dog near Paris in 1999, didn't it?", "x = 42 * 2;", "A quick green painter visited Oslo."]


def _batch(lm):
    enc = lm.tokenizer(TEXTS, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def _zero(k: int) -> torch.Tensor:
    return torch.zeros(k)


# ---- the hooks do what they say ------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_zero_ablating_mlp_neurons_equals_cutting_their_weights(family: str) -> None:
    """Zeroing neurons at the down projection's input is the same model as deleting their column of the
    projection's weight: a manual forward of that edited copy, without hooks, gives the same logits."""
    lm = tiny_model(family)
    ids, mask = _batch(lm)
    layer, units = 1, (3, 17, 40)
    logits = edited_logits(lm, output_head(lm), ids, mask, [UnitEdit("mlp", layer, units, _zero(3))])
    clean = edited_logits(lm, output_head(lm), ids, mask)

    cut = copy.deepcopy(lm)
    proj = cut.site_module("mlp", layer)
    with torch.no_grad():
        if family == "gpt2":  # transformers' Conv1D: weight is (in, out)
            proj.weight[list(units), :] = 0.0
        else:
            proj.weight[:, list(units)] = 0.0
    with torch.inference_mode():
        hidden = cut.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        manual = output_head(cut)(hidden)
    real = mask.bool()
    torch.testing.assert_close(logits[real], manual[real], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits[real], clean[real], atol=1e-4)  # the edit changed the output


def test_zero_ablating_attn_units_equals_cutting_their_rows() -> None:
    lm = tiny_model("llama")
    ids, mask = _batch(lm)
    units = (0, 5, 63)
    logits = edited_logits(lm, output_head(lm), ids, mask, [UnitEdit("attn", 2, units, _zero(3))])
    cut = copy.deepcopy(lm)
    with torch.no_grad():
        cut.site_module("attn", 2).weight[list(units), :] = 0.0  # o_proj has no bias in llama
    with torch.inference_mode():
        manual = output_head(cut)(cut.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state)
    torch.testing.assert_close(logits[mask.bool()], manual[mask.bool()], atol=1e-5, rtol=1e-5)


def test_resid_edits_set_and_shift_exactly_the_named_units() -> None:
    lm = tiny_model("llama")
    ids, mask = _batch(lm)
    clean = capture(lm, ids, mask, ["resid"], [1, 2])
    set_to = UnitEdit("resid", 1, (2, 9), torch.tensor([1.5, -4.0]))
    with edits_applied(lm, [set_to]):
        got = capture(lm, ids, mask, ["resid"], [1, 2])
    r1 = got[("resid", 1)]
    assert torch.equal(r1[..., 2], torch.full_like(r1[..., 2], 1.5)) and torch.equal(r1[..., 9], torch.full_like(r1[..., 9], -4.0))
    others = [i for i in range(r1.shape[-1]) if i not in (2, 9)]
    assert torch.equal(r1[..., others], clean[("resid", 1)][..., others])
    assert not torch.allclose(got[("resid", 2)], clean[("resid", 2)])  # later layers see the edit
    per_text = UnitEdit("resid", 1, (4,), torch.tensor([[1.0], [2.0], [3.0]]), add=True)
    with edits_applied(lm, [per_text]):
        shifted = capture(lm, ids, mask, ["resid"], [1])[("resid", 1)]
    torch.testing.assert_close(shifted[..., 4] - clean[("resid", 1)][..., 4],
                               torch.tensor([1.0, 2.0, 3.0])[:, None].expand(3, ids.shape[1]))
    # the hooks are gone afterwards
    assert torch.equal(capture(lm, ids, mask, ["resid"], [1])[("resid", 1)], clean[("resid", 1)])


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3", "gpt_neox", "phi", "qwen3"])
def test_replaying_the_clean_prefix_is_exact(family: str) -> None:
    """Edited passes skip the blocks before the edit (they replay its clean output): same logits, bit for bit."""
    lm = tiny_model(family)
    ids, mask = _batch(lm)
    head = output_head(lm)
    for site, layer in (("mlp", 2), ("resid", 1), ("attn", 3)):
        edit = UnitEdit(site, layer, (1, 7), torch.tensor([0.3, -0.2]))
        full = edited_logits(lm, head, ids, mask, [edit])
        prefix = clean_prefix(lm, ids, mask, layer)
        replayed = edited_logits(lm, head, ids, mask, [edit], prefix)
        assert torch.equal(full, replayed), (family, site, layer)
    assert clean_prefix(lm, ids, mask, 0) is None
    assert "forward" not in lm.blocks[0].__dict__  # the blocks' own forward is back


def test_ablation_values_come_from_the_stored_rows() -> None:
    acts = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    rng = np.random.default_rng(1)
    mean = ablation_edit("mlp", 0, [2, 5], "mean", acts, 4, rng)
    np.testing.assert_allclose(mean.values.numpy(), acts[:, [2, 5]].mean(0), rtol=1e-6)
    assert torch.equal(ablation_edit("mlp", 0, [2, 5], "zero", acts, 4, rng).values, torch.zeros(2))
    res = ablation_edit("mlp", 0, [2, 5], "resample", acts, 4, rng).values.numpy()
    assert res.shape == (4, 2) and all(any(np.allclose(row, a) for a in acts[:, [2, 5]]) for row in res)
    with pytest.raises(ConfigError, match="--mode"):
        ablation_edit("mlp", 0, [2], "noise", acts, 4, rng)


def test_units_heads_and_encoders_are_checked() -> None:
    lm = tiny_model("llama")
    with pytest.raises(ConfigError, match="width 128"):
        check_units(lm, "mlp", 1, [3, 128])
    with pytest.raises(ConfigError, match="twice"):
        check_units(lm, "mlp", 1, [3, 3])
    with pytest.raises(ModelError, match="out of range"):
        check_units(lm, "mlp", 9, [3])
    with pytest.raises(ModelError, match="encoder"):
        output_head(tiny_model("bert"))


# ---- the null and its p-value --------------------------------------------------------------------------
def test_null_units_have_matched_variance() -> None:
    rng = np.random.default_rng(0)
    variances = 10.0 ** rng.uniform(-4, 3, size=1000)  # seven orders of magnitude, as raw MLP units span
    units = [int(np.argmax(variances)), 10, 500]
    draws = draw_matched(variances, units, 300, np.random.default_rng(1))
    pools = matched_pools(variances, units)
    logv = np.log(variances)
    for j, (u, pool) in enumerate(zip(units, pools)):
        assert len(pool) == 20 and not set(pool) & set(units)  # max(16, 2% of 1000) candidates, found units left out
        # the pool is exactly the nearest units in log-variance
        others = np.setdiff1d(np.arange(1000), units)
        radius = np.abs(logv[pool] - logv[u]).max()
        assert np.sum(np.abs(logv[others] - logv[u]) < radius) <= len(pool)
        assert set(draws[:, j]) <= set(pool.tolist())
        assert len(set(draws[:, j])) > 10  # the draws spread over the pool
    assert all(len(set(d)) == len(units) for d in draws)  # no unit twice in a draw
    ratios = variance_ratios(variances, units, draws)
    random_units = rng.integers(0, 1000, size=draws.shape)
    random_ratios = variances[random_units] / variances[units][None, :]
    # matched: every draw within its pool's radius (here ~0.16 in log-variance), random units orders of magnitude away
    radii = [np.abs(logv[pool] - logv[u]).max() for u, pool in zip(units, pools)]
    assert np.all(np.abs(np.log(ratios)) <= np.array(radii)[None, :] + 1e-12)
    assert np.median(np.abs(np.log(ratios[:, 1:]))) < 0.15
    assert np.median(np.abs(np.log(random_ratios))) > 1.0
    assert ratios[:, 0].max() <= 1.0  # the largest unit can only be matched from below


def test_permutation_p_values_are_in_the_unit_interval() -> None:
    null = np.array([0.1, 0.2, 0.2, 0.3])
    assert permutation_p(0.5, null) == 1 / 5                  # beyond every draw: the smallest possible
    assert permutation_p(-1.0, null) == 1.0                   # below every draw
    assert permutation_p(0.2, null) == 4 / 5                  # ties count as extreme
    assert permutation_p(0.15, null, "less") == 2 / 5
    rng = np.random.default_rng(3)
    for _ in range(50):
        values = rng.normal(size=int(rng.integers(1, 40)))
        obs = float(rng.normal())
        for alt in ("greater", "less"):
            p = permutation_p(obs, values, alt)
            assert 0 < p <= 1
            brute = (1 + sum((v >= obs) if alt == "greater" else (v <= obs) for v in values)) / (1 + len(values))
            assert p == brute
    with pytest.raises(ValueError):
        permutation_p(0.0, [])
    with pytest.raises(ConfigError, match="--draws"):
        draw_matched(np.ones(10), [1], 0, rng)


def test_unit_variances_are_per_column() -> None:
    acts = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], dtype=np.float16)
    np.testing.assert_allclose(unit_variances(acts), [8 / 3, 0.0])


# ---- records -------------------------------------------------------------------------------------------
def _record(key: str = "k1", units: list[int] | None = None) -> CausalRecord:
    from probebank.probing.schema import Provenance

    null = NullSummary(observed=0.2, mean=0.01, sd=0.02, p_value=1 / 11, alternative="greater", draws=10,
                       values=[0.01] * 10)
    prov = Provenance(probebank_version="t", model="m", model_revision="r", model_dtype="float32", dataset="d",
                      dataset_version="1", dataset_hash="h")
    return CausalRecord(key=key, provenance=prov, feature="f", site="mlp", layer=3, units=units or [7],
                        source_method="mean_diff", source_k=1, source_seed=0, source_f1=0.9,
                        settings=CausalSettings(draws=10), ablation_values=[0.5], n_feature_texts=4,
                        n_control_texts=4, clean_loss_feature=2.0, clean_loss_control=2.1,
                        ablated_loss_feature=2.3, ablated_loss_control=2.1, loss=null,
                        relevant=null.model_copy(update={"alternative": "less", "observed": -0.3}),
                        variance_ratio=[0.9, 1.0, 1.1])


def test_causal_records_round_trip_and_keep_out_of_the_probe_records(tmp_path: Path) -> None:
    from report_fixtures import record, write_folder

    from probebank.results.records import read_records

    folder = write_folder(tmp_path / "run", [record("m", "d", "f", 3, 1, 0.9)])
    path = folder / CAUSAL_FILE
    assert add_causal(path, [_record("a"), _record("b", [7, 8])]) == 2
    assert add_causal(path, [_record("a")]) == 0  # one line per check key
    back = read_causal(folder)
    assert back == [_record("a"), _record("b", [7, 8])]
    assert json.loads(path.read_text().splitlines()[0])["kind"] == "causal"
    assert len(read_records(folder)) == 1  # causal.jsonl is not read as probe records
    assert [r.key for r in unit_checks(back, "m", "mlp", 3, 7)] == ["a", "b"]
    assert unit_checks(back, "m", "mlp", 3, 8)[0].key == "b" and not unit_checks(back, "m", "mlp", 2, 7)
    with pytest.raises(ValueError):
        NullSummary(observed=0, mean=0, sd=0, p_value=0.0, alternative="greater", draws=1)  # p is never 0
    path.write_text(path.read_text() + '{"kind": "causal"}\n')
    with pytest.raises(ConfigError, match=f"{CAUSAL_FILE}:3"):
        read_causal(folder)


# ---- end to end on a real tiny run ---------------------------------------------------------------------
def _best_k1(folder: Path, dataset: str) -> dict:
    recs = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return max((r for r in recs if r["k"] == 1 and r["method"] not in ("dense", "single_unit") and r["seed"] == 0
                and r["provenance"]["dataset"] == dataset and r["layer"] < 3), key=lambda r: r["metrics"]["f1"])


def test_inspect_ablate_on_a_tiny_run(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the session's folder stays as other tests expect it
    best = _best_k1(run, "safety-harmful-requests")
    layer, unit = best["layer"], best["units"][0]
    args = ["inspect", "tiny-llama", str(layer), str(unit), "--results", str(run), "--datasets", TINY_DATASETS[1],
            "--ablate", "--draws", "6", "--texts", "4", "--max-tokens", "24", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Causal check: tiny-llama mlp layer" in out and "loss effect" in out and "p = " in out
    (rec,) = read_causal(run)
    assert rec.units == [unit] and rec.feature == best["feature"] and rec.provenance.model == "tiny-llama"
    assert rec.provenance.dataset_hash == best["provenance"]["dataset_hash"]
    assert 0 < rec.loss.p_value <= 1 and 0 < rec.relevant.p_value <= 1 and len(rec.loss.values) == 6
    assert rec.n_feature_texts == rec.n_control_texts == 4 and rec.settings.mode == "mean"
    assert rec.steering is not None and rec.steering.probe_layer > layer
    assert rec.steering.probe_f1_reproduced == pytest.approx(rec.steering.probe_f1, abs=1e-9)  # probe rebuilt exactly
    # the same check again: read from the cache, not run
    assert main(args) == 0
    assert "reused from the cache" in capsys.readouterr().out
    # the neuron card shows it, in the terminal and in the report's neuron page
    from probebank.report.html import neuron_html
    from probebank.results.neurons import neuron_card, render_text

    card = neuron_card("tiny-llama", layer, unit, results=[run], datasets=TINY_DATASETS)
    assert card.causal == [rec]
    assert "causal checks" in render_text(card, markup=False) and f"p = {rec.loss.p_value:.3g}" in render_text(card)
    assert "<h2>Causal checks</h2>" in neuron_html(card)
    # the cache entry is sealed: `cache verify` checks it like any other
    from probebank.cache.inventory import entries, verdict
    from probebank.paths import cache_root

    (entry,) = [e for e in entries(cache_root()) if e.kind == "causal" and e.path.name == rec.key]
    assert verdict(entry).state == "ok"


def test_inspect_ablate_refuses_bad_input_with_exit_code_2(tiny_run: Path, capsys) -> None:
    best = _best_k1(tiny_run, "safety-harmful-requests")
    layer, unit = str(best["layer"]), str(best["units"][0])
    base = ["inspect", "tiny-llama", layer, unit, "--results", str(tiny_run), "--datasets", TINY_DATASETS[1], "--ablate"]
    cases = [
        (["inspect", "tiny-llama", layer, "100000", "--results", str(tiny_run), "--ablate"], "does not exist at mlp"),
        (["inspect", "tiny-llama", "17", unit, "--results", str(tiny_run), "--ablate"], "no activation store"),
        (base + ["--mode", "noise"], "--mode"),
        (base + ["--draws", "0"], "--draws"),
        (base + ["--feature", "harmful"], "DATASET/FEATURE"),
        (base + ["--feature", f"{TINY_DATASETS[1]}/no-such-class"], "no seed-0"),
    ]
    other = (best["units"][0] + 1) % 128  # not the unit of that k=1 probe
    cases.append((["inspect", "tiny-llama", layer, str(other), "--results", str(tiny_run), "--ablate", "--k", "1",
                   "--feature", f"{TINY_DATASETS[1]}/{best['feature']}"], "with k=1 selected unit"))
    for args, message in cases:
        assert main(args) == 2, args
        assert message in capsys.readouterr().err, args


def test_the_probe_and_its_downstream_probe_are_found_in_the_records() -> None:
    from report_fixtures import sweep

    from probebank.causal.check import find_target

    recs = sweep("m", "d", "f", lambda layer, k: 0.5 + 0.1 * layer, layers=(0, 1, 2, 3), ks=(1, 2, 4), dense=0.9)
    recs += sweep("m", "d", "g", lambda layer, k: 0.7, layers=(1,), ks=(1, 2, 4), dense=None)
    one = find_target(recs, "m", "mlp", 1, 8, feature="d/f")  # unit 8 first enters at k=2 (units 7, 8)
    assert (one.record.k, one.units, one.record.feature) == (2, [8], "f")
    assert one.downstream is not None and (one.downstream.layer, one.downstream.k) == (2, 1)
    kset = find_target(recs, "m", "mlp", 1, 8, feature="d/f", k=4, probe_layer=3)
    assert kset.units == [7, 8, 9, 10] and kset.downstream is not None
    assert (kset.downstream.layer, kset.downstream.k) == (3, 4)
    last = find_target(recs, "m", "mlp", 3, 7, feature="d/f", layers_stored=[3])
    assert last.downstream is None and "later layer" in (last.downstream_note or "")
    assert find_target(recs, "m", "mlp", 1, 7).record.feature in ("f", "g")  # any feature: smallest k, best F1
    with pytest.raises(ConfigError, match="selected unit 500"):
        find_target(recs, "m", "mlp", 1, 500)


@pytest.mark.parametrize("mode", ["zero", "resample"])
def test_other_ablations_run_end_to_end(tiny_run: Path, tmp_path: Path, mode: str) -> None:
    from probebank.results.causal import run_causal

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = _best_k1(run, "factual-country-continent")
    rec, reused, target = run_causal("tiny-llama", "mlp", best["layer"], best["units"][0],
                                     CausalSettings(mode=mode, draws=3, texts=3, max_tokens=16), results=[run],
                                     feature=f"factual-country-continent/{best['feature']}", progress=False)
    assert not reused and rec.settings.mode == mode and target.record.feature == best["feature"]
    assert rec.ablated_loss_feature != rec.clean_loss_feature  # the units were really changed
    assert all(0 < s.p_value <= 1 for s in (rec.loss, rec.relevant))
    if mode == "zero":
        assert rec.ablation_values == [0.0]
    assert read_causal(run) == [rec]


def test_the_same_units_found_by_two_methods_are_ablated_once(tmp_path: Path, monkeypatch) -> None:
    """The cache entry of a check does not depend on the method or k that found the units (they do not change its
    numbers), so `replicate`'s f_stat and mean_diff picks of one neuron run one ablation; each gets a record that
    names its own source probe. Another seed (other test texts) is another check."""
    from types import SimpleNamespace

    from report_fixtures import record

    from probebank.causal import check

    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))

    def fake_check(loaded, target, built, store, settings, *, key="", progress=False):
        return _record(key=key, units=target.units).model_copy(update={"source_method": target.record.method})

    monkeypatch.setattr(check, "causal_check", fake_check)
    monkeypatch.setattr(check, "fingerprint", lambda fn: "code")  # the stand-in's code is not what is keyed here
    runs: list[str] = []  # the model is loaded only when a check really runs

    def loader(method: str):
        return lambda: runs.append(method)

    store = SimpleNamespace(key="s", digest="d")
    settings = CausalSettings(draws=10)
    by_mean = check.Target(record("m", "d", "f", 3, 1, 0.9, method="mean_diff", units=[7]), [7])
    by_f = check.Target(record("m", "d", "f", 3, 2, 0.8, method="f_stat", units=[7, 8]), [7])
    other_seed = check.Target(record("m", "d", "f", 3, 1, 0.9, method="f_stat", units=[7], seed=1), [7])
    first, reused_first = check.cached_check(by_mean, None, store, settings, loader("mean_diff"))  # type: ignore[arg-type]
    second, reused_second = check.cached_check(by_f, None, store, settings, loader("f_stat"))  # type: ignore[arg-type]
    assert runs == ["mean_diff"] and not reused_first and reused_second
    assert (first.source_method, first.source_k) == ("mean_diff", 1)
    assert (second.source_method, second.source_k, second.source_f1) == ("f_stat", 2, 0.8)
    assert first.key == second.key and first.loss == second.loss
    check.cached_check(other_seed, None, store, settings, loader("f_stat, seed 1"))  # type: ignore[arg-type]
    assert runs == ["mean_diff", "f_stat, seed 1"]
