"""A model's identity and shapes without its weights: `open_model` defers them to the first forward pass,
a repeated run whose activations are stored never loads them, and `--layers` is checked without torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest_models import TEXTS, isolated_cache, models_registry, write_tiny_llama_gguf  # noqa: F401 (fixtures)

from probebank.errors import ModelError
from probebank.extract.capture import capture
from probebank.extract.describe import known_layers
from probebank.extract.tiny import tiny_model
from probebank.run import RunConfig, run


def _hf_folder(tmp_path: Path, seed: int = 5) -> tuple[Path, object]:
    src = tiny_model("llama", seed=seed)
    folder = tmp_path / "tiny-hf"
    src.model.save_pretrained(folder)
    src.tokenizer.save_pretrained(folder)
    return folder, src


def test_open_model_defers_the_weights_to_the_first_forward_pass(models_registry, isolated_cache, tmp_path):
    import probebank.extract.providers as providers

    folder, src = _hf_folder(tmp_path)
    first = providers.open_model(str(folder))  # nothing remembered yet: a full load, which remembers the shapes
    assert first.weights_loaded
    opened = providers.open_model(str(folder))
    assert not opened.weights_loaded and not opened.tokenizer_loaded
    assert (opened.identity(), opened.shapes()) == (first.identity(), first.shapes())
    assert opened.tokenizer(TEXTS[0])["input_ids"] == first.tokenizer(TEXTS[0])["input_ids"]
    assert opened.tokenizer_loaded and not opened.weights_loaded
    enc = first.encode(TEXTS)
    a = capture(first, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"], layers=[1, 3])
    b = capture(opened, enc["input_ids"], enc["attention_mask"], sites=["mlp", "resid"], layers=[1, 3])
    assert opened.weights_loaded and all(torch.equal(a[k], b[k]) for k in a)


def test_deferred_weights_that_differ_from_the_remembered_shapes_fail(models_registry, isolated_cache, tmp_path):
    import probebank.extract.providers as providers

    folder, _ = _hf_folder(tmp_path)
    providers.load_model(str(folder))
    (memo,) = (isolated_cache / "models" / "shapes").glob("*.json")
    memo.write_text(json.dumps({**json.loads(memo.read_text()), "widths": {"mlp": 1, "resid": 1, "attn": 1}}))
    opened = providers.open_model(str(folder))
    enc = opened.encode(TEXTS)
    with pytest.raises(ModelError, match="differs from the shapes remembered"):
        capture(opened, enc["input_ids"], enc["attention_mask"], sites=["mlp"], layers=[0])


def test_layers_are_known_from_a_gguf_header_and_a_config_json(models_registry, isolated_cache, tmp_path):
    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(tiny_model("llama", seed=7), path)
    assert known_layers(str(path)) == ("tiny", 4)  # read from the header, before any conversion
    folder = tmp_path / "only-config"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 6}))
    assert known_layers(str(folder)) == ("only-config", 6)


def test_a_repeated_run_with_every_activation_stored_never_loads_the_weights(bank, tmp_path, monkeypatch) -> None:
    import probebank.extract.providers as providers
    from probebank_plugins.providers.hf import HFProvider

    model, _ = _hf_folder(tmp_path)
    config = dict(model=str(model), datasets=["toy-words"], include=[bank()], progress=False, seeds=[0])
    first = run(RunConfig(out=tmp_path / "a", **config), log=lambda m: None)

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights were loaded although every activation is stored")

    def no_tokenizer(*args, **kwargs):
        raise AssertionError("the tokenizer was loaded although every activation is stored")

    monkeypatch.setattr(providers, "load_model", no_weights)
    with monkeypatch.context() as patch:  # nor the tokenizer: the stores keep their alignment reports
        patch.setattr(HFProvider, "load_tokenizer", no_tokenizer)
        again = run(RunConfig(out=tmp_path / "b", **config), log=lambda m: None)
    assert again.summary == first.summary and again.n_records == first.n_records > 0
    assert (tmp_path / "a" / "records.jsonl").read_text() == (tmp_path / "b" / "records.jsonl").read_text()
    assert (tmp_path / "a" / "alignment.json").read_text() == (tmp_path / "b" / "alignment.json").read_text()
    # a layer the first run did not extract needs the weights
    with pytest.raises(AssertionError, match="the weights were loaded"):
        run(RunConfig(out=tmp_path / "c", **{**config, "layers": [2]}), log=lambda m: None)


def test_setting_errors_are_answered_before_torch_or_the_engine_is_imported(tmp_path, isolated_cache) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 6}))
    script = ("import sys\nfrom probebank.cli import main\ncode = main(sys.argv[1:])\n"
              "print('heavy:', sorted(m for m in ('torch', 'sklearn', 'transformers', 'probebank.run') "
              "if m in sys.modules))\nsys.exit(code)\n")
    cases = [(["--model", str(folder), "--layers", "0,9"], "layers [9] do not exist in m (6 layers)"),
             (["--model", "/no/such/model"], "no such path: /no/such/model"),
             (["--model", "smollm2-135"], "did you mean smollm2-135m"),
             (["--datasets", "language-udr"], "did you mean: language-udhr"),
             (["--suite", "quik"], "did you mean quick"),
             (["--limit", "0"], "--limit"),
             (["--sites", "mpl"], "did you mean mlp"),
             (["--device", "cdua"], "did you mean cuda"),
             # the default model before its wheel is fetched: the pinned file's layer count, no download
             (["--layers", "99"], "layers [99] do not exist in smollm2-135m (30 layers)")]
    for args, expected in cases:
        proc = subprocess.run([sys.executable, "-c", script, "run", "--out", str(tmp_path / "out"), *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        assert expected in " ".join(proc.stderr.split()), (args, proc.stderr)
        assert "heavy: []" in proc.stdout, (args, proc.stdout)
    assert not (tmp_path / "out").exists()
    assert not any(p.is_file() for p in isolated_cache.rglob("*"))  # nothing was fetched to answer
