"""The summary of a records file is cached by the file's bytes and the summarising code, and read back equal."""
from __future__ import annotations

import json

import pytest
from conftest_models import isolated_cache  # noqa: F401 (fixture)

import probebank.results.summary_cache as summary_cache
from probebank.cache.checksums import seal
from probebank.cache.inventory import forget_checks
from probebank.probing.schema import Controls, Metrics, Provenance, ResultRecord
from probebank.results.records import append_records, read_records
from probebank.results.summary import certificates, summarise


def _records(f1_shift: float = 0.0) -> list[ResultRecord]:
    prov = Provenance(probebank_version="t", model="m", model_revision="r", model_dtype="float32", dataset="d",
                      dataset_version="1", dataset_hash="h")
    out = []
    for layer in (0, 1, 2):
        for seed in (0, 1):
            for k in (1, 8, 16):
                f1 = min(1.0, 0.5 + 0.1 * layer + 0.01 * k + 0.02 * seed + f1_shift)
                out.append(ResultRecord(
                    provenance=prov, feature="f", site="mlp", layer=layer, aggregation="mean", method="f_stat",
                    k=k, seed=seed, n_train=40, n_train_pos=20, n_test=20, n_test_pos=10, units=list(range(k)),
                    metrics=Metrics(f1=f1, accuracy=f1, precision=f1, recall=f1, mcc=0.0),
                    controls=Controls(shuffled_f1=0.5, selectivity=f1 - 0.5), train_f1=f1))
    return out


def test_a_summary_is_made_once_and_read_back_equal_to_summarising_again(isolated_cache, tmp_path):
    path = tmp_path / "records.jsonl"
    append_records(path, _records())
    expected = summarise(read_records(path)), certificates(read_records(path))
    assert summary_cache.summary_of(path) == expected  # made
    assert isinstance(expected[0][0]["gain_1_8_by_layer"], dict) and 0 in expected[0][0]["gain_1_8_by_layer"]

    (entry,) = (isolated_cache / "summaries").iterdir()
    assert summary_cache.summary_of(path) == expected  # read back: int layer keys and all
    # proof that the second call read the entry: mark it (and seal it again, as a writer would)
    saved = json.loads((entry / "summary.json").read_text())
    saved["rows"][0]["feature"] = "from the cache"
    (entry / "summary.json").write_text(json.dumps(saved))
    seal(entry)
    forget_checks()
    assert summary_cache.summary_of(path)[0][0]["feature"] == "from the cache"


def test_other_bytes_or_a_damaged_entry_are_summarised_afresh(isolated_cache, tmp_path):
    path = tmp_path / "records.jsonl"
    append_records(path, _records())
    first = summary_cache.summary_of(path)
    path.write_text("")
    append_records(path, _records(f1_shift=0.05))
    second = summary_cache.summary_of(path)
    assert second[0][0]["f1_k1"] == pytest.approx(first[0][0]["f1_k1"] + 0.05)
    for entry in (isolated_cache / "summaries").iterdir():  # tamper with every cached summary
        saved = json.loads((entry / "summary.json").read_text())
        saved["rows"][0]["f1_k1"] = 0.0
        (entry / "summary.json").write_text(json.dumps(saved))
    forget_checks()
    assert summary_cache.summary_of(path) == second  # the seal catches it: summarised again

