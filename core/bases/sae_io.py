"""Read and write SAE weights in the common safetensors layout, from a local folder.

A folder holds one weights file (sae_weights.safetensors, params.safetensors or
model.safetensors, or the only *.safetensors) with W_enc [d_in, d_sae], b_enc [d_sae],
W_dec [d_sae, d_in], b_dec [d_in] and optional threshold [d_sae] (JumpReLU), plus a config
(cfg.json or config.json). Folders saved by SAELens (`save_model`) load as SAELens encodes
them: probebank.bases.sae_cfg holds the config rules, probebank.bases.sae_hooks the check of
the recorded hook against the probed site. Tensors of any float type (bfloat16 and float16
too) are read through torch and computed in float32. Every shape is checked against the
layer's width; errors name the file and the field.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from probebank.bases.sae import SAEWeights
from probebank.bases.sae_cfg import SCALER_FILE, WHITENING_FILE, ScalerFiles, build_weights
from probebank.bases.sae_hooks import check_hook as check_hook_name
from probebank.errors import BasisError
from probebank.hashing import sha256_file

WEIGHT_NAMES = ("sae_weights.safetensors", "params.safetensors", "model.safetensors")
CONFIG_NAMES = ("cfg.json", "config.json")


def _inside(folder: Path, path: Path) -> Path:
    real = path.resolve()
    if folder not in real.parents:
        raise BasisError("file links outside its SAE folder", file=path,
                         fix="copy the weights into the folder instead of linking elsewhere")
    return real


def find_files(folder: str | Path) -> tuple[Path, Path | None]:
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise BasisError("SAE folder not found", file=folder, field="--bases",
                         fix="pass sae:/path/to/folder holding the .safetensors weights and cfg.json")
    weights = [folder / n for n in WEIGHT_NAMES if (folder / n).is_file()]
    if not weights:
        weights = sorted(folder.glob("*.safetensors"))
        if len(weights) != 1:
            raise BasisError(f"expected one weights file in the SAE folder, found {[w.name for w in weights]}",
                             file=folder, fix=f"name the weights file {WEIGHT_NAMES[0]}")
    configs = [folder / n for n in CONFIG_NAMES if (folder / n).is_file()]
    return _inside(folder, weights[0]), (_inside(folder, configs[0]) if configs else None)


def read_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as float32 numpy (torch reads bfloat16, which numpy cannot)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        loaded = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise BasisError(f"cannot read safetensors: {exc}", file=path,
                         fix="save the weights again (SAELens's save_model or safetensors' save_file)") from None
    out = {}
    for name, tensor in loaded.items():
        if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
            raise BasisError(f"tensor '{name}' has type {str(tensor.dtype).removeprefix('torch.')}, not a number type "
                             "probebank reads", file=path, field=name, fix="save it as float32, bfloat16 or float16")
        out[name] = tensor.to(torch.float32).numpy()
    return out


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BasisError(f"config is not valid JSON: {exc}", file=path, fix="fix or remove the file") from None
    if not isinstance(data, dict):
        raise BasisError("config must be a JSON object", file=path)
    return data


def read_scaler_files(folder: Path) -> ScalerFiles:
    """The input statistics SAELens's trainer saves beside a checkpoint, if they are there."""
    stats = ScalerFiles(folder)
    if (folder / SCALER_FILE).is_file():
        stats.scaler = _read_json(_inside(folder, folder / SCALER_FILE))
    if (folder / WHITENING_FILE).is_file() and (stats.scaler or {}).get("has_whitening", True):
        stats.whitening = read_tensors(_inside(folder, folder / WHITENING_FILE))
    return stats


def load_sae_folder(folder: str | Path, width: int | None = None, *, site: str | None = None,
                    layer: int | None = None, check_hook: bool = True) -> tuple[SAEWeights, str]:
    """SAEWeights from a folder, checked against the layer width; also the weights file's sha256.

    With `site` and `layer` (what the run probes), the hook names the config records are checked
    against them (probebank.bases.sae_hooks) unless `check_hook` is false.
    """
    weights_path, cfg_path = find_files(Path(folder))
    cfg: dict = _read_json(cfg_path) if cfg_path is not None else {}
    arrays = read_tensors(weights_path)
    W_enc = arrays.get("W_enc")
    if W_enc is None:
        raise BasisError(f"missing tensor 'W_enc' (found {sorted(arrays)})", file=weights_path, field="W_enc",
                         fix="save W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]")
    if W_enc.ndim != 2:
        raise BasisError(f"W_enc must be 2-D [d_in, d_sae], has shape {W_enc.shape}", file=weights_path, field="W_enc")
    d_in, d_sae = (int(s) for s in W_enc.shape)
    if width is not None and d_in != width:
        hint = " (it looks transposed: W_enc is [d_in, d_sae])" if d_sae == width else ""
        raise BasisError(f"W_enc has shape {tuple(W_enc.shape)}, so d_in={d_in}, but the layer has width {width}{hint}",
                         file=weights_path, field="W_enc",
                         fix="use an SAE trained on this model, site and layer (check --sites and --layers)")
    vector = (d_sae,)
    expected = {"b_enc": vector, "W_dec": (d_sae, d_in), "b_dec": (d_in,), "threshold": vector,
                "log_threshold": vector, "b_gate": vector, "b_mag": vector, "r_mag": vector, "scaling_factor": vector}
    for name, shape in expected.items():
        if name in arrays and tuple(arrays[name].shape) != shape:
            raise BasisError(f"{name} has shape {tuple(arrays[name].shape)}, expected {shape} "
                             f"(from W_enc {tuple(W_enc.shape)})", file=weights_path, field=name,
                             fix="save the tensors in the common layout (W_enc [d_in, d_sae], W_dec [d_sae, d_in])")
    for name, value in (("d_in", d_in), ("d_sae", d_sae)):
        if name in cfg and (isinstance(cfg[name], bool) or cfg[name] != value):
            raise BasisError(f"config says {name}={cfg[name]} but the weights have {value}", file=cfg_path, field=name)
    weights = build_weights(cfg, cfg_path, weights_path, arrays, read_scaler_files(weights_path.parent))
    if check_hook and site is not None and layer is not None:
        check_hook_name(cfg, cfg_path, site, layer)
    return weights, content_hash(weights_path, cfg_path)


def content_hash(weights_path: Path, cfg_path: Path | None) -> str:
    """sha256 of what sets the codes: the weights file alone, or with the config and the trainer's statistics."""
    digest = sha256_file(weights_path)
    folder = weights_path.parent
    others = [p for p in (cfg_path, folder / SCALER_FILE, folder / WHITENING_FILE) if p is not None and p.is_file()]
    if not others:
        return digest
    parts = {"weights": digest, **{p.name: sha256_file(p) for p in others}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def save_sae_folder(weights: SAEWeights, folder: str | Path, extra_config: dict | None = None) -> Path:
    """Write weights in the common layout (sae_weights.safetensors + cfg.json)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights.arrays(), str(folder / WEIGHT_NAMES[0]))
    (folder / CONFIG_NAMES[0]).write_text(json.dumps({**weights.config(), **(extra_config or {})}, indent=1))
    return folder
