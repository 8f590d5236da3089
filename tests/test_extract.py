"""Aggregation math, the content-addressed store, and resumable extraction."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from probebank.data.align import AlignedExample
from probebank.extract.aggregate import aggregate, build_batch_index
from probebank.extract.pipeline import plan_shards
from probebank.extract.store import ActivationStore, store_key


def _batch() -> tuple[list[AlignedExample], torch.Tensor]:
    # two sequences padded to length 5; targets cover tokens [1,3) and [4,5) of the first, [0,2) of the second
    ex0 = AlignedExample(index=0, input_ids=[10, 11, 12, 13, 14], targets=[(0, 1, 3), (1, 4, 5)], labels=[1, 0])
    ex1 = AlignedExample(index=1, input_ids=[20, 21, 22], targets=[(0, 0, 2)], labels=[1])
    acts = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    acts[1, 1] = torch.tensor([-100.0, 500.0, 7.0])  # max must pick per column, not per row
    return [ex0, ex1], acts


@pytest.mark.parametrize("how", ["first", "last", "mean", "max"])
def test_aggregation_matches_direct_computation(how: str) -> None:
    batch, acts = _batch()
    index = build_batch_index(batch, seq_len=5, aggregation=how)
    got = aggregate(acts, index, how)
    expected = []
    for b, ex in enumerate(batch):
        for _, a, e in ex.targets:
            span = acts[b, a:e]
            expected.append({"first": span[0], "last": span[-1], "mean": span.mean(0), "max": span.amax(0)}[how])
    torch.testing.assert_close(got, torch.stack(expected))
    assert index.meta["example"].tolist() == [0, 0, 1]
    assert index.meta["label"].tolist() == [1, 0, 1]
    assert index.meta["token"].tolist() == [12, 14, 21]   # last token id of each target
    assert index.meta["position"].tolist() == [2, 4, 1]


def test_each_gives_one_row_per_target_token() -> None:
    batch, acts = _batch()
    index = build_batch_index(batch, seq_len=5, aggregation="each")
    got = aggregate(acts, index, "each")
    torch.testing.assert_close(got, torch.stack([acts[0, 1], acts[0, 2], acts[0, 4], acts[1, 0], acts[1, 1]]))
    assert index.meta["label"].tolist() == [1, 1, 0, 1, 1]
    assert index.meta["token"].tolist() == [11, 12, 14, 20, 21]


def test_plan_shards_sorted_by_length_and_deterministic() -> None:
    exs = [AlignedExample(i, list(range(n)), [(0, 0, 1)], [0]) for i, n in enumerate([9, 3, 7, 3, 5, 8, 2])]
    shards = plan_shards(exs, "last", shard_rows=3)
    assert [len(s) for s in shards] == [3, 3, 1]
    lengths = [len(ex.input_ids) for s in shards for ex in s]
    assert lengths == sorted(lengths)
    assert [[e.index for e in s] for s in shards] == [[e.index for e in s] for s in plan_shards(exs, "last", 3)]


def test_plan_shards_cuts_by_tokens_too() -> None:
    """The resumable unit is a token budget (about the same work per shard), capped by a row budget."""
    exs = [AlignedExample(i, list(range(n)), [(0, 0, 1)], [0]) for i, n in enumerate([9, 3, 7, 3, 5, 8, 2])]
    shards = plan_shards(exs, "last", shard_rows=100, shard_tokens=10)
    assert [sum(len(e.input_ids) for e in s) for s in shards] == [2 + 3 + 3 + 5, 7 + 8, 9]
    assert [len(s) for s in plan_shards(exs, "last", shard_rows=2, shard_tokens=1000)] == [2, 2, 2, 1]


BASE = {"model": {"name": "m", "revision": "abc", "dtype": "float32"},
        "dataset": {"name": "d", "version": "1.0", "content_hash": "h"}, "sites": ["mlp"], "layers": [0, 1],
        "aggregation": "mean", "max_tokens": 64}


def test_store_key_is_content_addressed() -> None:
    assert store_key(BASE) == store_key(dict(BASE))
    bumped = {**BASE, "dataset": {**BASE["dataset"], "version": "1.1"}}
    assert store_key(bumped) != store_key(BASE)
    for change in ({"aggregation": "max"}, {"layers": [0]}, {"sites": ["resid"]},
                   {"model": {**BASE["model"], "revision": "def"}}):
        assert store_key({**BASE, **change}) != store_key(BASE)


def test_store_roundtrip_fp16_and_overflow_fallback(tmp_path: Path) -> None:
    store = ActivationStore(tmp_path, "k", BASE)
    rng = np.random.default_rng(0)
    a0 = rng.normal(size=(2, 3, 4)).astype(np.float32)
    a1 = rng.normal(size=(2, 2, 4)).astype(np.float32)
    a1[1, 0, 0] = 1e5   # beyond fp16: this shard must stay fp32, and so must the finalised layer
    def rows(n, off):
        return {f: np.arange(off, off + n) for f in ("example", "target", "label", "token", "position")}
    store.write_shard(0, {"mlp": a0}, rows(3, 0))
    store.write_shard(1, {"mlp": a1}, rows(2, 3))
    store.finalise(2, ["mlp"], [0, 1], {})
    again = ActivationStore(tmp_path, "k")
    assert again.complete and again.meta["n_rows"] == 5
    np.testing.assert_allclose(again.layer("mlp", 0), np.concatenate([a0[0], a1[0]]), rtol=1e-3, atol=1e-3)
    assert again.layer("mlp", 1)[3, 0] == 1e5
    assert again.rows()["example"].tolist() == [0, 1, 2, 3, 4]
    assert again.layer("mlp", 0).dtype == np.float32  # one shard overflowed fp16: the layer reads as fp32
    with pytest.raises(KeyError):
        again.layer("resid", 0)


# ---- extraction on a tiny random model ------------------------------------------------------

def _toy_built(tmp_path: Path, aggregation: str = "mean", version: str = "1.0"):
    from probebank.data.examples import build_dataset
    from probebank.data.registry import CatalogEntry
    from probebank.data.schema import DatasetCard

    card = DatasetCard(name="toy-sentences", version=version, category="lexical",
                       description="Tiny sentences about cats or dogs.", citation="test", license="CC0-1.0",
                       builder="toy", labels={"type": "binary", "classes": ["dog", "cat"]},
                       targets={"kind": "all"}, aggregation=aggregation, min_per_class=2)
    words = ["the", "a", "big", "small", "old", "young", "happy", "sad"]

    def build(ctx):
        for i in range(40):
            animal = "cat" if i % 2 else "dog"
            text = " ".join(words[j % 8] for j in range(i % 7 + 2)) + f" {animal} sat here"
            yield {"text": text, "label": animal, "group": str(i)}

    return build_dataset(CatalogEntry(card, None, "test"), builders={"toy": build}, force=True, progress=False)


def test_interrupted_extraction_resumes_without_recomputing(tmp_path: Path, monkeypatch) -> None:
    import probebank.extract.pipeline as ex
    import probebank.extract.shard as shard_module
    from probebank.extract.plan import ExtractionPlan
    from probebank.extract.tiny import tiny_model

    loaded = tiny_model("llama")
    built = _toy_built(tmp_path)
    plan = ExtractionPlan(model=loaded.name, dataset=built.name, sites=["mlp", "resid"], aggregation="mean",
                          batch_size=4, shard_rows=8)
    calls = {"n": 0}
    real_capture = shard_module.capture

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real_capture(*args, **kwargs)

    monkeypatch.setattr(shard_module, "capture", counting)
    with pytest.raises(KeyboardInterrupt):
        ex.extract(loaded, built, plan, store_root=tmp_path / "store", progress=False, stop_after_shards=2)
    first = calls["n"]
    assert first == 4  # 2 shards x 2 batches of 4
    store, report = ex.extract(loaded, built, plan, store_root=tmp_path / "store", progress=False)
    assert calls["n"] - first == 6  # only the 3 unfinished shards (40 rows / 8 per shard = 5)
    assert store.complete and store.meta["n_rows"] == 40
    assert (store.reused_shards, store.n_shards) == (2, 5)  # what the run's line per dataset reports
    # a fresh, uninterrupted extraction gives the same activations
    fresh, _ = ex.extract(loaded, built, plan, store_root=tmp_path / "fresh", progress=False)
    assert fresh.key == store.key
    order_a, order_b = np.argsort(store.rows()["example"]), np.argsort(fresh.rows()["example"])
    for site in ("mlp", "resid"):
        for layer in range(loaded.n_layers):
            np.testing.assert_array_equal(np.asarray(store.layer(site, layer))[order_a],
                                          np.asarray(fresh.layer(site, layer))[order_b])
    # a complete store is reused: no forward pass at all
    before = calls["n"]
    again, again_report = ex.extract(loaded, built, plan, store_root=tmp_path / "store", progress=False)
    assert calls["n"] == before and again.key == store.key
    assert again_report.as_dict() == report.as_dict()  # read back from the store, not tokenised again


def test_changed_card_version_gives_new_store(tmp_path: Path) -> None:
    from probebank.extract.pipeline import extract
    from probebank.extract.plan import ExtractionPlan
    from probebank.extract.tiny import tiny_model

    loaded = tiny_model("gpt2")
    plan = ExtractionPlan(model=loaded.name, dataset="toy-sentences", layers=[0, 1], aggregation="mean")
    a, _ = extract(loaded, _toy_built(tmp_path, version="1.0"), plan, store_root=tmp_path / "s", progress=False)
    b, _ = extract(loaded, _toy_built(tmp_path, version="1.1"), plan, store_root=tmp_path / "s", progress=False)
    assert a.key != b.key


def test_stored_mean_equals_manual_mean_of_captured_tokens(tmp_path: Path) -> None:
    """End to end through alignment and padding: the stored row is the mean over the text's tokens."""
    from probebank.extract.capture import capture
    from probebank.extract.pipeline import extract
    from probebank.extract.plan import ExtractionPlan
    from probebank.extract.tiny import tiny_model

    loaded = tiny_model("gpt_neox")
    built = _toy_built(tmp_path, aggregation="mean")
    plan = ExtractionPlan(model=loaded.name, dataset=built.name, layers=[1], aggregation="mean", batch_size=8)
    store, _ = extract(loaded, built, plan, store_root=tmp_path / "s", progress=False)
    rows = store.rows()
    stored = np.asarray(store.layer("mlp", 1), dtype=np.float32)
    for r in (0, 17, 39):
        text = built.dataset[int(rows["example"][r])]["text"]
        ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
        acts = capture(loaded, ids, torch.ones_like(ids), ["mlp"], [1])[("mlp", 1)][0]
        np.testing.assert_allclose(stored[r], acts.mean(0).numpy(), rtol=2e-2, atol=2e-3)


def test_shard_buffers_keep_fp16_and_upgrade_on_overflow() -> None:
    from probebank.extract.shard import ShardBuffers

    buf = ShardBuffers(["mlp", "resid"], [3, 7], {"mlp": 4, "resid": 2}, n_rows=5)
    small = torch.linspace(-3, 3, 12).reshape(3, 4)
    buf.put("mlp", 3, small)
    buf.put("mlp", 7, small * 2)
    buf.put("resid", 3, torch.ones(3, 2))
    buf.put("resid", 7, torch.tensor([[1.0, 2.0], [7e4, 3.0], [4.0, 5.0]]))  # beyond fp16's 65,504
    buf.advance(3)
    buf.put("mlp", 3, torch.zeros(2, 4))
    assert buf.arrays["mlp"].dtype == np.float16 and buf.arrays["resid"].dtype == np.float32
    np.testing.assert_allclose(buf.arrays["mlp"][0, :3], small.numpy(), atol=2e-3)
    np.testing.assert_allclose(buf.arrays["mlp"][1, :3], 2 * small.numpy(), atol=4e-3)
    assert buf.arrays["resid"][1, 1, 0] == 7e4 and buf.arrays["resid"][0, 0, 0] == 1.0
    np.testing.assert_array_equal(buf.arrays["mlp"][0, 3:], 0)
