"""SAEs saved by SAELens load through `sae:` and give SAELens's own codes, or are refused naming cfg.json and the field.

The reference is SAELens 6.54.12 itself: tests/fixtures/saelens holds folders it saved and the codes
and reconstructions it computed (make_fixtures.py there; SAELens is not needed here). Each case
turns on one rule (bfloat16 / float16 weights, apply_b_dec_to_input, normalize_activations,
rescale_acts_by_decoder_norm, JumpReLU with negative thresholds, gated, the trainer's scaler).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from probebank.bases.builtin import BUILTIN_BASES
from probebank.bases.sae_cfg import ARCHITECTURES, ENCODING_FIELDS, INERT_FIELDS
from probebank.bases.sae_hooks import NOT_A_SITE, hook_site
from probebank.bases.sae_io import load_sae_folder
from probebank.bases.spec import make_basis, parse_spec
from probebank.bases.store import fit_or_load
from probebank.errors import BasisError

FIXTURES = Path(__file__).parent / "fixtures" / "saelens"
CASES = json.loads((FIXTURES / "cases.json").read_text())["cases"]
ENCODED = [c["name"] for c in CASES if "refuse" not in c]
REFUSED = [(c["name"], c["refuse"]) for c in CASES if "refuse" in c]
SITE = ("resid", 1)  # every fixture records metadata.hook_name blocks.1.hook_resid_post (hook_z: its own)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(FIXTURES / "reference.safetensors"))


def _basis(spec: str, site: tuple[str, int] = SITE):
    basis = make_basis(parse_spec(spec), BUILTIN_BASES)
    basis.set_site(*site)
    fit_or_load(parse_spec(spec), basis, {}, None, width=16)
    return basis


def test_fixtures_are_saelens_6_54_12_and_small() -> None:
    meta = json.loads((FIXTURES / "cases.json").read_text())
    assert meta["sae_lens"] == "6.54.12"
    assert sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file()) < 200_000
    assert {c["dtype"] for c in CASES} >= {"float32", "bfloat16", "float16"}
    assert {c["architecture"] for c in CASES if "refuse" not in c} == set(ARCHITECTURES)


@pytest.mark.parametrize("name", ENCODED)
def test_codes_equal_saelens(name: str, reference: dict[str, np.ndarray]) -> None:
    X, want = reference["inputs"], reference[f"{name}.codes"]
    basis = _basis(f"sae:{FIXTURES / name}")
    codes = basis.transform(X)
    scale = 1.0 + float(np.abs(want).max())
    np.testing.assert_allclose(codes, want, rtol=0, atol=2e-6 * scale * (10 if "whitening" in name else 1))
    assert np.array_equal(codes != 0, want != 0)  # the same latents fire
    recons = reference[f"{name}.recons"]
    if basis.weights_.decodes:
        np.testing.assert_allclose(basis.inverse_transform(codes), recons, rtol=0,
                                   atol=1e-5 * (1.0 + float(np.abs(recons).max())) * (10 if "whitening" in name else 1))
    else:  # a per-row normalisation: the reconstruction needs the input row's statistics
        assert "norm" in name and not hasattr(basis, "inverse_transform")


@pytest.mark.parametrize(("name", "field"), REFUSED)
def test_unsupported_settings_are_refused_naming_cfg_json_and_the_field(name: str, field: str) -> None:
    with pytest.raises(BasisError) as err:
        load_sae_folder(FIXTURES / name, 16)
    msg = str(err.value)
    assert f"{name}/cfg.json" in msg and f"field '{field}'" in msg and "Fix:" in msg, msg


def test_every_saelens_field_of_a_supported_architecture_is_classified() -> None:
    fields = json.loads((FIXTURES / "fields.json").read_text())
    for arch in ARCHITECTURES:
        unknown = set(fields[arch]) - set(ENCODING_FIELDS) - set(INERT_FIELDS)
        assert not unknown, f"{arch}: SAELens has fields probebank neither honours nor knows to be inert: {unknown}"


def _copy(name: str, tmp_path: Path, **cfg_changes) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    for key, value in cfg_changes.items():
        if key.startswith("metadata_"):
            cfg["metadata"][key.removeprefix("metadata_")] = value
        else:
            cfg[key] = value
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


def test_each_setting_changes_the_codes_and_the_content_key(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    X = reference["inputs"]
    base = _basis(f"sae:{FIXTURES / 'topk_training_rescale'}")
    for i, change in enumerate(({"rescale_acts_by_decoder_norm": False}, {"apply_b_dec_to_input": False},
                                {"normalize_activations": "layer_norm"}, {"k": 3})):
        other = _basis(f"sae:{_copy('topk_training_rescale', tmp_path / str(i), **change)}")
        assert not np.allclose(other.transform(X), base.transform(X)), change
        assert other.content_key() != base.content_key(), change  # cached records never mix the two


def test_a_setting_of_the_wrong_type_or_value_is_refused_by_name(tmp_path: Path) -> None:
    for i, (change, field) in enumerate([({"apply_b_dec_to_input": "no"}, "apply_b_dec_to_input"),
                                         ({"normalize_activations": "batch_norm"}, "normalize_activations"),
                                         ({"k": 0}, "k"), ({"k": 33}, "k"),
                                         ({"architecture": "nosuch"}, "architecture")]):
        folder = _copy("topk", tmp_path / str(i), **change)
        with pytest.raises(BasisError, match=rf"cfg\.json: field '{field}'.*Fix:"):
            load_sae_folder(folder, 16)
    folder = _copy("standard", tmp_path / "rescale", rescale_acts_by_decoder_norm=True)
    with pytest.raises(BasisError, match="field 'rescale_acts_by_decoder_norm'"):
        load_sae_folder(folder, 16)
    # The whitening statistics gone: refused, not encoded without them.
    folder = _copy("standard_whitening", tmp_path / "nowhite")
    (folder / "activation_whitening.safetensors").unlink()
    with pytest.raises(BasisError, match="field 'normalize_activations'.*covariance_whitening"):
        load_sae_folder(folder, 16)


def test_a_tensor_the_architecture_does_not_use_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    folder = _copy("standard", tmp_path / "extra")
    arrays = load_file(str(folder / "sae_weights.safetensors"))
    save_file({**arrays, "threshold": np.zeros(32, np.float32)}, str(folder / "sae_weights.safetensors"))
    with pytest.raises(BasisError, match=r"sae_weights\.safetensors: field 'threshold'.*not used by a standard SAE"):
        load_sae_folder(folder, 16)


@pytest.mark.parametrize(("name", "where"), [
    ("blocks.6.hook_resid_post", ("resid", 6)), ("blocks.6.hook_resid_pre", ("resid", 5)),
    ("blocks.0.hook_resid_pre", NOT_A_SITE), ("blocks.3.mlp.hook_post", ("mlp", 3)),
    ("blocks.3.hook_mlp_out", NOT_A_SITE), ("blocks.3.hook_attn_out", ("attn", 3)),
    ("blocks.3.attn.hook_z", NOT_A_SITE), ("blocks.3.hook_resid_mid", NOT_A_SITE), ("hook_embed", NOT_A_SITE),
    ("model.layers.12", ("resid", 12)), ("transformer.h.2", ("resid", 2)), ("gpt_neox.layers.4", ("resid", 4)),
    ("model.layers.12.self_attn.o_proj", ("attn", 12)), ("model.layers.12.mlp", NOT_A_SITE),
    ("something_else", "unknown"),
])
def test_hook_names_map_to_sites(name: str, where: object) -> None:
    assert hook_site(name) == where


def test_the_recorded_hook_must_be_the_probed_site_and_layer(tmp_path: Path) -> None:
    spec = f"sae:{FIXTURES / 'standard'}"
    _basis(spec, ("resid", 1))
    with pytest.raises(BasisError) as err:
        _basis(spec, ("resid", 2))
    msg = str(err.value)
    assert "standard/cfg.json: field 'metadata.hook_name'" in msg and "blocks.1.hook_resid_post" in msg
    assert "--sites resid --layers 1" in msg and "check_hook=false" in msg
    with pytest.raises(BasisError, match="field 'metadata.hook_name'"):
        _basis(spec, ("mlp", 1))
    # Overridden by a setting after the path, or as a keyword: the same codes as at the right layer.
    for override in (f"{spec}:check_hook=false", f"sae:path={FIXTURES / 'standard'}:check_hook=false"):
        assert _basis(override, ("mlp", 7)).content_key() == _basis(spec).content_key()
    with pytest.raises(BasisError, match="check_hook must be true or false"):
        make_basis(parse_spec(f"{spec}:check_hook=maybe"), BUILTIN_BASES)
    # An HF module name recorded beside it is checked too.
    folder = _copy("standard", tmp_path, metadata_hf_hook_name="model.layers.3")
    with pytest.raises(BasisError, match="field 'metadata.hf_hook_name'.*model.layers.3"):
        _basis(f"sae:{folder}")


def test_a_run_checks_the_hook_at_each_site_and_layer() -> None:
    from probebank.bases.run import BasisRun

    def check_layer(layer: int) -> int:
        return layer % 3

    loaded = SimpleNamespace(name="tiny", revision="r", dtype="float32", widths={"resid": 16}, n_layers=3,
                             check_layer=check_layer)
    spec = f"sae:{FIXTURES / 'topk_training_rescale'}"
    run = BasisRun.create([spec], loaded, ["resid"], [-2], BUILTIN_BASES, log=lambda m: None)  # -2 is layer 1
    assert run.fitted[(spec, "resid", -2)].key
    with pytest.raises(BasisError, match="this run probes resid layer 2"):
        BasisRun.create([spec], loaded, ["resid"], [1, 2], BUILTIN_BASES, log=lambda m: None)


def test_a_config_from_before_saelens_6_uses_its_own_names(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    """SAELens < 6 wrote hook_point, activation_fn_str and a boolean normalize_activations at the top level."""
    folder = _copy("standard_no_b_dec", tmp_path / "old")
    cfg = json.loads((folder / "cfg.json").read_text())
    old = {"d_in": 16, "d_sae": 32, "hook_point": "blocks.1.hook_resid_post", "hook_point_layer": 1,
           "activation_fn_str": "relu", "normalize_activations": False, "apply_b_dec_to_input": False,
           "sae_lens_version": "3.11.0", "dtype": cfg["dtype"], "lr": 3e-4, "l1_coefficient": 5.0}
    (folder / "cfg.json").write_text(json.dumps(old))
    basis = _basis(f"sae:{folder}")
    X = reference["inputs"]
    np.testing.assert_allclose(basis.transform(X), reference["standard_no_b_dec.codes"], rtol=0, atol=1e-5)
    with pytest.raises(BasisError, match="field 'hook_point'"):
        _basis(f"sae:{folder}", ("resid", 0))
    (folder / "cfg.json").write_text(json.dumps({**old, "normalize_activations": True}))
    with pytest.raises(BasisError, match="field 'normalize_activations'.*expected_average_only_in"):
        load_sae_folder(folder, 16)


def test_an_older_jumprelu_checkpoint_with_log_threshold_loads(tmp_path: Path, reference: dict[str, np.ndarray]) -> None:
    """SAELens turns log_threshold into threshold = exp(log_threshold) (JumpReLU's process_state_dict_for_loading)."""
    from safetensors.numpy import load_file, save_file

    folder = _copy("jumprelu_training", tmp_path / "old")
    arrays = load_file(str(folder / "sae_weights.safetensors"))
    log_threshold = np.log(np.abs(arrays.pop("threshold")) + 0.05).astype(np.float32)
    save_file({**arrays, "log_threshold": log_threshold}, str(folder / "sae_weights.safetensors"))
    X = reference["inputs"]
    pre = (X - arrays["b_dec"]) @ arrays["W_enc"] + arrays["b_enc"]   # an independent reference of the rule
    want = np.maximum(pre, 0) * (pre > np.exp(log_threshold))
    np.testing.assert_allclose(_basis(f"sae:{folder}").transform(X), want, rtol=0, atol=1e-5)


def test_run_probes_a_saelens_bf16_sae_at_its_hook_and_exits_2_at_another(bank, tmp_path: Path, capsys) -> None:
    """End to end on the tiny llama: a bfloat16 TopK SAE (rescaled) saved in SAELens's layout."""
    import torch
    from safetensors.torch import save_file

    from probebank.cli import main
    from probebank.extract.tiny import tiny_model

    width = tiny_model("llama").widths["resid"]
    gen = torch.Generator().manual_seed(0)
    folder = tmp_path / "sae"
    folder.mkdir()
    save_file({"W_enc": torch.randn(width, 2 * width, generator=gen).bfloat16(), "b_enc": torch.zeros(2 * width).bfloat16(),
               "W_dec": torch.randn(2 * width, width, generator=gen).bfloat16(), "b_dec": torch.zeros(width).bfloat16()},
              str(folder / "sae_weights.safetensors"))
    cfg = json.loads((FIXTURES / "topk_training_rescale" / "cfg.json").read_text())
    cfg.update(d_in=width, d_sae=2 * width, dtype="bfloat16", k=4)
    (folder / "cfg.json").write_text(json.dumps(cfg))  # metadata.hook_name: blocks.1.hook_resid_post
    include = str(bank())

    def run(layer: str, spec: str) -> tuple[int, str]:
        code = main(["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", include, "--out",
                     str(tmp_path / f"out{layer}"), "--no-progress", "--sites", "resid", "--layers", layer,
                     "--seeds", "0", "--no-controls", "--bases", spec])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, text = run("2", f"sae:{folder}")
    assert code == 2 and "cfg.json: field 'metadata.hook_name'" in text and "Traceback" not in text, text
    code, text = run("1", f"sae:{folder}")
    assert code == 0, text
    records = [json.loads(line) for line in (tmp_path / "out1" / "records.jsonl").read_text().splitlines()]
    assert records and {r["basis"] for r in records} == {f"sae:{folder}"} and all(r["basis_key"] for r in records)
