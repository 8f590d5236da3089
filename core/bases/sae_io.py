"""Read and write SAE weights in the common safetensors layout, from a local folder.

A folder holds one weights file (sae_weights.safetensors, params.safetensors or
model.safetensors, or the only *.safetensors) with W_enc [d_in, d_sae], b_enc [d_sae],
W_dec [d_sae, d_in], b_dec [d_in] and optional threshold [d_sae] (JumpReLU), plus a config
(cfg.json or config.json) that may give d_in, d_sae, k and activation_fn (topk, relu, jumprelu).
Every shape is checked against the layer's width; errors name the file and the field.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from probebank.bases.sae import SAEWeights
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


def load_sae_folder(folder: str | Path, width: int | None = None) -> tuple[SAEWeights, str]:
    """SAEWeights from a folder, checked against the layer width; also the weights file's sha256."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    weights_path, cfg_path = find_files(Path(folder))
    cfg: dict = {}
    if cfg_path is not None:
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BasisError(f"config is not valid JSON: {exc}", file=cfg_path, fix="fix or remove the file") from None
        if not isinstance(cfg, dict):
            raise BasisError("config must be a JSON object", file=cfg_path)
    try:
        arrays = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise BasisError(f"cannot read safetensors: {exc}", file=weights_path) from None
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        if name not in arrays:
            raise BasisError(f"missing tensor '{name}' (found {sorted(arrays)})", file=weights_path, field=name,
                             fix="save W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]")
    W_enc = arrays["W_enc"]
    if W_enc.ndim != 2:
        raise BasisError(f"W_enc must be 2-D [d_in, d_sae], has shape {W_enc.shape}", file=weights_path, field="W_enc")
    d_in, d_sae = (int(s) for s in W_enc.shape)
    if width is not None and d_in != width:
        hint = " (it looks transposed: W_enc is [d_in, d_sae])" if d_sae == width else ""
        raise BasisError(f"W_enc has shape {tuple(W_enc.shape)}, so d_in={d_in}, but the layer has width {width}{hint}",
                         file=weights_path, field="W_enc",
                         fix="use an SAE trained on this model, site and layer (check --sites and --layers)")
    expected = {"b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,), "threshold": (d_sae,)}
    for name, shape in expected.items():
        if name in arrays and tuple(arrays[name].shape) != shape:
            raise BasisError(f"{name} has shape {tuple(arrays[name].shape)}, expected {shape} "
                             f"(from W_enc {tuple(W_enc.shape)})", file=weights_path, field=name,
                             fix="save the tensors in the common layout (W_enc [d_in, d_sae], W_dec [d_sae, d_in])")
    for name, value in (("d_in", d_in), ("d_sae", d_sae)):
        if name in cfg and int(cfg[name]) != value:
            raise BasisError(f"config says {name}={cfg[name]} but the weights have {value}", file=cfg_path, field=name)
    act = str(cfg.get("activation_fn") or cfg.get("architecture") or "").lower()
    k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
    if "threshold" in arrays or act == "jumprelu":
        if "threshold" not in arrays:
            raise BasisError("a jumprelu SAE needs a 'threshold' tensor", file=weights_path, field="threshold")
        activation = "jumprelu"
    elif act == "topk" or k:
        if not k:
            raise BasisError("a topk SAE needs k in its config", file=cfg_path or weights_path, field="k")
        activation = "topk"
    else:
        activation = "relu"
    f32 = {n: np.asarray(a, dtype=np.float32) for n, a in arrays.items()}
    weights = SAEWeights(f32["W_enc"], f32["b_enc"], f32["W_dec"], f32["b_dec"], activation=activation,
                         k=int(k) if k else None, threshold=f32.get("threshold"))
    return weights, sha256_file(weights_path)


def save_sae_folder(weights: SAEWeights, folder: str | Path, extra_config: dict | None = None) -> Path:
    """Write weights in the common layout (sae_weights.safetensors + cfg.json)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights.arrays(), str(folder / WEIGHT_NAMES[0]))
    (folder / CONFIG_NAMES[0]).write_text(json.dumps({**weights.config(), **(extra_config or {})}, indent=1))
    return folder
