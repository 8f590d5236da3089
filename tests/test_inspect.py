"""Neuron cards read from the activation stores of a real tiny run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from report_fixtures import TINY_DATASETS, tiny_run  # noqa: F401  (tiny_run is a fixture)

from probebank.cli import main
from probebank.results.neurons import model_stores, neuron_card, render_text


def _k1(folder: Path, dataset: str) -> dict:
    """The k=1 record with the highest F1 of one dataset in a results folder."""
    recs = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return max((r for r in recs if r["k"] == 1 and r["method"] == "f_stat" and r["provenance"]["dataset"] == dataset),
               key=lambda r: r["metrics"]["f1"])


def test_neuron_card_matches_the_store(tiny_run: Path) -> None:
    best = _k1(tiny_run, "factual-country-continent")
    layer, unit = best["layer"], best["units"][0]
    card = neuron_card("tiny-llama", layer, unit, results=[tiny_run], datasets=TINY_DATASETS, top_n=5)
    assert sorted(v.dataset for v in card.datasets) == sorted(TINY_DATASETS)
    view = next(v for v in card.datasets if v.dataset == "factual-country-continent")
    store = next(s for s in model_stores("tiny-llama", "mlp", layer) if s.key == view.store_key)
    acts = np.asarray(store.layer("mlp", layer)[:, unit], dtype=np.float64)
    # histogram: every row counted once, per class, over the full range of the neuron
    assert sum(sum(h.counts) for h in view.histograms) == view.n_rows == acts.size
    assert {h.label for h in view.histograms} == {"Africa", "Asia", "Europe", "North America", "South America", "Oceania"}
    assert view.edges[0] == acts.min() and view.edges[-1] == acts.max()
    # top examples: the largest activations, best first, with a real target span inside the text
    top = [ex.activation for ex in view.top]
    assert top == sorted(top, reverse=True) and top[0] == acts.max()
    assert np.allclose(top, np.sort(acts)[::-1][:5])
    for ex in view.top:
        a, b = ex.span
        assert 0 <= a < b <= len(ex.text) and ex.text[a:b].strip()
    # where else: the probe that chose it (feature, k=1) is listed
    assert any(s.dataset == "factual-country-continent" and s.feature == best["feature"] and s.k == 1 and s.rank == 0
               for s in card.selections)
    text = render_text(card, markup=False)
    assert f"[[{view.top[0].text[view.top[0].span[0]:view.top[0].span[1]]}]]" in text.replace("\n", " ")


def test_inspect_cli_prints_the_card_and_refuses_unknown_models(tiny_run: Path, capsys) -> None:
    best = _k1(tiny_run, "safety-harmful-requests")
    code = main(["inspect", "tiny-llama", str(best["layer"]), str(best["units"][0]), "--results", str(tiny_run),
                 "--datasets", ",".join(TINY_DATASETS)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "activation histogram per class" in out and "harmful" in out and "[[" in out
    assert f"safety-harmful-requests / {best['feature']}: f_stat k=1" in out
    assert main(["inspect", "no-such-model", "0", "0"]) == 2
    assert "no activation store of no-such-model" in capsys.readouterr().err
    assert main(["inspect", "tiny-llama", str(best["layer"]), "100000", "--datasets", TINY_DATASETS[0]]) == 2
    assert "does not exist at mlp" in capsys.readouterr().err


def test_a_single_unit_record_gives_each_unit_its_own_f1() -> None:
    """A single_unit record lists every unit reaching F1 >= 0.9 (best first) and carries the best one's metrics:
    a neuron further down the list is shown with its own F1, not the best unit's."""
    from probebank.probing.schema import Metrics, Provenance, ResultRecord
    from probebank.results.neurons import selections

    prov = Provenance(probebank_version="t", model="m", model_revision="r", model_dtype="float32", dataset="d",
                      dataset_version="1", dataset_hash="h")
    record = ResultRecord(provenance=prov, feature="f", site="mlp", layer=3, aggregation="mean", method="single_unit",
                          k=1, seed=0, n_train=40, n_test=20, n_train_pos=20, n_test_pos=10, units=[7, 345, 12],
                          method_params={"min_f1": 0.9, "n_units": 3, "unit_f1": [1.0, 0.925, 0.9]},
                          metrics=Metrics(f1=1.0, accuracy=1.0, precision=1.0, recall=1.0, mcc=1.0))
    (sel,) = selections("m", "mlp", 3, 345, [record])
    assert (sel.method, sel.rank, sel.score) == ("single_unit", 1, 0.925)
    (best,) = selections("m", "mlp", 3, 7, [record])
    assert best.score == 1.0
