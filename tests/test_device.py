"""Devices, precision, token-budget batches, out-of-memory retries and the 8-bit store, on the CPU path."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from probebank.data.align import AlignedExample
from probebank.errors import ConfigError
from probebank.extract import quantize
from probebank.extract.device import resolve_device, resolve_dtype
from probebank.extract.shard import batch_end


def test_devices_resolve_or_fail_by_name() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else resolve_device("auto").type)
    if not torch.cuda.is_available():  # this machine: a CUDA request is refused, naming --device
        with pytest.raises(ConfigError, match="no CUDA device") as err:
            resolve_device("cuda:0")
        assert err.value.field == "--device"
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("tpu-ish")


def test_dtype_auto_is_float32_on_the_cpu() -> None:
    assert resolve_dtype("auto", torch.device("cpu")) == "float32"
    assert resolve_dtype("bfloat16", torch.device("cpu")) == "bfloat16"
    with pytest.raises(ConfigError, match="not a dtype"):
        resolve_dtype("int4", torch.device("cpu"))


def _examples(lengths: list[int]) -> list[AlignedExample]:
    return [AlignedExample(i, list(range(n)), [(0, 0, 1)], [0]) for i, n in enumerate(lengths)]


def test_batches_by_token_budget() -> None:
    shard = _examples([2, 3, 3, 5, 8, 9])  # sorted by length, as plan_shards leaves them
    ends, lo = [], 0
    while lo < len(shard):
        lo = batch_end(shard, lo, batch_size=16, max_tokens=10)
        ends.append(lo)
    assert ends == [3, 4, 5, 6]  # padded tokens per batch: 3x3=9, 5, 8, 9 (one sequence at least)
    assert batch_end(shard, 0, batch_size=4, max_tokens=None) == 4


def test_uint8_codes_are_within_half_a_step_and_constant_units_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 50, 7)).astype(np.float32) * np.array([1, 10, 1000, 0.01, 5, 5, 5], np.float32)
    x[:, :, 6] = 2.5  # a constant unit
    codes, scale, offset = quantize.encode(x)
    assert codes.dtype == np.uint8 and scale.shape == offset.shape == (3, 7)
    for li in range(3):
        back = quantize.decode(codes[li], scale[li], offset[li])
        assert np.all(np.abs(back - x[li]) <= scale[li] / 2 + 1e-6 * np.abs(x[li]).max(axis=0))
        np.testing.assert_array_equal(back[:, 6], 2.5)


def _extract(tmp_path: Path, store_dtype: str, name: str):
    from test_extract import _toy_built

    from probebank.extract.pipeline import extract
    from probebank.extract.plan import ExtractionPlan
    from probebank.extract.tiny import tiny_model

    loaded = tiny_model("llama")
    built = _toy_built(tmp_path)
    plan = ExtractionPlan(model=loaded.name, dataset=built.name, sites=["mlp", "resid"], aggregation="mean",
                          batch_size=4, shard_rows=16, store_dtype=store_dtype)
    return extract(loaded, built, plan, store_root=tmp_path / name, progress=False)[0]


def test_uint8_store_halves_the_bytes_and_decodes_close(tmp_path: Path) -> None:
    f16, u8 = _extract(tmp_path, "float16", "f16"), _extract(tmp_path, "uint8", "u8")
    assert f16.key != u8.key and u8.store_dtype == "uint8" and u8.meta["dtypes"]["mlp"][0] == "uint8"
    for site in ("mlp", "resid"):
        for layer in u8.meta["layers"]:
            a, b = np.asarray(f16.layer(site, layer), np.float32), u8.layer(site, layer)
            step = (a.max(axis=0) - a.min(axis=0)) / 255  # the coarsest shard's step bounds the error
            assert b.dtype == np.float32 and np.all(np.abs(a - b) <= step + 1e-2 * np.abs(a).max())

    def act_bytes(store) -> int:
        return sum(p.stat().st_size for p in store.path.glob("shards/*/*.npy")
                   if not p.name.startswith("rows_") and ".scale" not in p.name and ".offset" not in p.name)

    ratio = act_bytes(u8) / act_bytes(f16)
    assert 0.45 < ratio < 0.55  # one byte per value instead of two (headers aside)


def test_out_of_memory_halves_the_batch_and_gives_the_same_rows(tmp_path: Path, monkeypatch, capsys) -> None:
    import probebank.extract.shard as shard_module

    clean = _extract(tmp_path, "float16", "clean")
    real = shard_module.capture
    failures = {"n": 0}

    def flaky(loaded, ids, *args, **kwargs):
        if ids.shape[0] > 1 and failures["n"] < 2:
            failures["n"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(loaded, ids, *args, **kwargs)

    monkeypatch.setattr(shard_module, "capture", flaky)
    retried = _extract(tmp_path, "float16", "retried")
    assert failures["n"] == 2 and "out of memory on cpu: batch halved to 2 sequences" in capsys.readouterr().err
    for layer in clean.meta["layers"]:
        np.testing.assert_allclose(np.asarray(retried.layer("mlp", layer), np.float32),
                                   np.asarray(clean.layer("mlp", layer), np.float32), atol=2e-3, rtol=2e-3)


def test_run_records_device_dtype_and_store_dtype(bank, tmp_path: Path) -> None:
    from probebank.run import RunConfig, run

    folder = bank()
    run(RunConfig(model="tiny:llama", datasets=["toy-words"], include=[folder], out=tmp_path / "o", progress=False,
                  device="cpu", dtype="bfloat16", store_dtype="uint8", max_batch_tokens=64, seeds=[0]),
        log=lambda m: None)
    first = json.loads((tmp_path / "o" / "records.jsonl").read_text().splitlines()[0])
    prov = first["provenance"]
    assert (prov["model_dtype"], prov["store_dtype"], prov["device"]) == ("bfloat16", "uint8", "cpu")
    assert prov["versions"]["torch"] == torch.__version__


def test_a_device_this_machine_lacks_is_refused_before_the_model_loads(bank, tmp_path: Path, capsys,
                                                                        monkeypatch) -> None:
    import probebank.run as run_module
    from probebank.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")  # the refusal needs a machine without one (CI has none)

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(run_module, "load_model", no_load)
    code = main(["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(bank()),
                 "--out", str(tmp_path / "o"), "--device", "cuda"])
    assert code == 2 and "--device" in capsys.readouterr().err


def test_the_gpu_benchmark_runs_on_a_cpu(tmp_path: Path) -> None:
    """bench/gpu.py is one prepared script for a lent GPU: it must at least run here, end to end."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu.py"
    proc = subprocess.run([sys.executable, str(script), "--device", "cpu", "--configs", "llama-small",
                           "--examples", "64", "--repeats", "1", "--max-tokens", "32"],
                          env={**os.environ, "PROBEBANK_CACHE": str(tmp_path / "cache")},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0] + " " + line.split()[1]: line for line in proc.stdout.splitlines()
             if line.startswith(("bare forward", "extract float16", "extract uint8"))}
    assert set(lines) == {"bare forward", "extract float16", "extract uint8"}
    f16_mb, u8_mb = float(lines["extract float16"].split()[-1]), float(lines["extract uint8"].split()[-1])
    assert 0 < u8_mb < 0.7 * f16_mb  # one byte a value, plus each shard's scale and offset


def _record_from_pretrained(monkeypatch) -> list[dict]:
    """Note the keyword arguments of every AutoModel.from_pretrained call, then load on the CPU (no GPU here)."""
    import transformers

    asked: list[dict] = []
    original = transformers.AutoModel.from_pretrained

    def recording(*args, **kwargs):
        asked.append(dict(kwargs))
        if "device_map" in kwargs:
            kwargs["device_map"] = {"": "cpu"}
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", recording)
    return asked


def test_an_hf_model_loads_straight_onto_the_device_it_is_asked_for(tmp_path, monkeypatch) -> None:
    """--device cuda:N reaches from_pretrained as device_map={"": "cuda:N"} (the weights are never first
    materialised in host memory); on the CPU nothing is asked, and a provider without the option is not
    passed one. No GPU here: the recorder loads onto the CPU after noting what it was asked."""

    from probebank.extract.providers import load_model
    from probebank.extract.tiny import tiny_model

    src = tiny_model("llama", seed=3)
    folder = tmp_path / "tiny-hf"
    src.model.save_pretrained(folder)
    src.tokenizer.save_pretrained(folder)
    asked = _record_from_pretrained(monkeypatch)
    on_gpu = load_model(str(folder), device="cuda:1")
    assert asked[-1]["device_map"] == {"": "cuda:1"}
    on_cpu = load_model(str(folder), device="cpu")
    assert "device_map" not in asked[-1]
    assert all(torch.equal(a, b) for a, b in zip(on_gpu.model.state_dict().values(), on_cpu.model.state_dict().values()))
    assert load_model("tiny:llama", device="cuda:1").n_layers > 0  # the tiny provider takes no device: not passed


def test_a_converted_gguf_loads_straight_onto_the_device(tmp_path, monkeypatch) -> None:
    """A .gguf whose converted HF folder is in the cache loads that folder with device_map={"": DEVICE}
    (SmolLM2 and Gemma go through this provider); on the CPU nothing is asked. The folder here is a tiny
    model saved and sealed where the provider looks for the conversion of this file's sha256."""
    import json

    from probebank.cache.checksums import seal
    from probebank.extract.tiny import tiny_model
    from probebank.hashing import file_sha256
    from probebank_plugins.providers.gguf import GGUFProvider
    from probebank_plugins.providers.identity import CONVERSION_FORMAT, META_FILE, converted_dir

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 4)  # never parsed: its converted folder exists
    folder = converted_dir(file_sha256(gguf))
    src = tiny_model("llama", seed=5)
    src.model.save_pretrained(folder)
    src.tokenizer.save_pretrained(folder)
    (folder / META_FILE).write_text(json.dumps({"format": CONVERSION_FORMAT, "source": "gguf", "notes": "tiny",
                                                "gguf_file": gguf.name, "revision": "x"}), encoding="utf-8")
    seal(folder)
    asked = _record_from_pretrained(monkeypatch)
    on_gpu = GGUFProvider().load(str(gguf), device="cuda:0")
    assert asked[-1]["device_map"] == {"": "cuda:0"}
    on_cpu = GGUFProvider().load(str(gguf))
    assert "device_map" not in asked[-1]
    assert on_gpu.n_layers == on_cpu.n_layers > 0
