"""SAELens's cfg.json rules: every field that changes the encoding is honoured or refused by name.

`build_weights(cfg, tensors, ...)` turns a config and its float32 tensors into SAEWeights, following
SAELens 6 (`SAE.load_from_disk` then `encode`); configs from SAELens before 6 are read with its own
renames (`hook_point`, `activation_fn_str`, a boolean `normalize_activations`). Honoured:

- `architecture` standard, topk, jumprelu, gated (also inferred from `activation_fn` and the tensors);
- `k` (topk); `apply_b_dec_to_input`; `rescale_acts_by_decoder_norm` (topk: the decoder norms are
  folded into the encoder, as SAELens's fold_W_dec_norm does, giving the same codes);
- `normalize_activations`: none, layer_norm and constant_norm_rescale per row;
  expected_average_only_in and covariance_whitening with the statistics SAELens's trainer saves
  beside a checkpoint (activation_scaler.json, activation_whitening.safetensors), folded into the
  weights as SAELens's fold_activation_norm_scaling_factor / fold_activation_whitening do;
- JumpReLU's `log_threshold` (older checkpoints) as threshold = exp(log_threshold).

Refused, naming the field: other architectures (batchtopk and matryoshka saves are training SAEs:
save the inference SAE; transcoders map one site to another), `reshape_activations: hook_z`,
`metadata.hook_head_index` (an SAE of one attention head), a non-trivial `scaling_factor` tensor,
any tensor the architecture does not use, and values of the wrong type. Fields that only matter
for training (l1_coefficient, decoder_init_norm, ...) or for placement (device, dtype: weights are
computed in float32 whatever their stored type) do not change the codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probebank.bases.sae import ROW_NORMS, SAEWeights
from probebank.bases.sae_hooks import metadata_of
from probebank.errors import BasisError

ARCHITECTURES = ("standard", "topk", "jumprelu", "gated")
SCALER_FILE = "activation_scaler.json"         # SAELens's trainer writes these beside a checkpoint
WHITENING_FILE = "activation_whitening.safetensors"
# The cfg fields that change the codes and how they are handled; every other SAELens 6.54 field of the
# supported architectures only matters for training or placement (tests/test_sae_lens.py holds this list
# against the fields SAELens's own config classes have).
ENCODING_FIELDS = ("d_in", "d_sae", "architecture", "activation_fn", "k", "apply_b_dec_to_input",
                   "normalize_activations", "rescale_acts_by_decoder_norm", "reshape_activations", "metadata")
INERT_FIELDS = ("dtype", "device", "decoder_init_norm", "use_sparse_activations", "aux_loss_coefficient",
                "l1_coefficient", "lp_norm", "l1_warm_up_steps", "jumprelu_init_threshold", "jumprelu_bandwidth",
                "jumprelu_sparsity_loss_mode", "l0_coefficient", "l0_warm_up_steps", "pre_act_loss_coefficient",
                "jumprelu_tanh_scale", "jumprelu_ste_to_input", "target_l0")
_TENSORS = {"standard": {"W_enc", "b_enc", "W_dec", "b_dec"}, "topk": {"W_enc", "b_enc", "W_dec", "b_dec"},
            "jumprelu": {"W_enc", "b_enc", "W_dec", "b_dec", "threshold", "log_threshold"},
            "gated": {"W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec"}}
_TRAINING_ONLY = ("a training SAE", "save the inference SAE (training_sae.save_inference_model(path)), which SAELens "
                  "writes as jumprelu")
_TRANSCODER = ("a transcoder maps one site to another, and probebank probes the codes of one site's SAE",
               "use an SAE (standard, topk, jumprelu or gated) trained on the site you probe")
_REFUSED_ARCH = {"batchtopk": _TRAINING_ONLY, "matryoshka_batchtopk": _TRAINING_ONLY, "transcoder": _TRANSCODER,
                 "skip_transcoder": _TRANSCODER, "jumprelu_transcoder": _TRANSCODER,
                 "jumprelu_skip_transcoder": _TRANSCODER}


class _Cfg:
    """Typed reads of one config, each error naming the file and the field."""

    def __init__(self, cfg: dict, path: Path | None, weights_path: Path) -> None:
        self.cfg, self.path, self.weights_path = cfg, path, weights_path

    def refuse(self, field: str, message: str, fix: str | None = None) -> BasisError:
        return BasisError(message, file=self.path or self.weights_path, field=field, fix=fix)

    def flag(self, field: str, default: bool) -> bool:
        value = self.cfg.get(field, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.refuse(field, f"{field} must be true or false, got {value!r}", fix=f"write \"{field}\": true")
        return value

    def text(self, field: str, default: str) -> str:
        value = self.cfg.get(field, default)
        return default if value is None else str(value)



def legacy(cfg: dict) -> dict:
    """A config from SAELens before 6 in 6's names (its own handle_pre_6_0_config renames)."""
    meta = metadata_of(cfg)
    version = str(cfg.get("sae_lens_version") or meta.get("sae_lens_version") or "")
    if version[:1].isdigit() and int(version.split(".")[0]) >= 6:
        return cfg
    out = dict(cfg)
    if "activation_fn_str" in out and "activation_fn" not in out:
        out["activation_fn"] = out.pop("activation_fn_str")
    if isinstance(out.get("normalize_activations"), bool):
        out["normalize_activations"] = "expected_average_only_in" if out["normalize_activations"] else "none"
    if "hook_point_head_index" in out and "hook_head_index" not in out:
        out["hook_head_index"] = out.pop("hook_point_head_index")
    return out


def architecture(c: _Cfg, tensors: dict[str, np.ndarray]) -> str:
    cfg = c.cfg
    arch = cfg.get("architecture")
    act = str(cfg.get("activation_fn") or "").lower()
    if arch is None:  # probebank's own folders and older configs name only the activation
        arch = ("gated" if "b_gate" in tensors else "jumprelu" if {"threshold", "log_threshold"} & set(tensors) or
                act == "jumprelu" else "topk" if act == "topk" or cfg.get("k") or
                (cfg.get("activation_fn_kwargs") or {}).get("k") else "standard")
    arch = str(arch).lower()
    if arch == "standard" and act == "topk":  # SAELens < 6: a topk activation on the standard architecture
        arch = "topk"
    if arch in _REFUSED_ARCH:
        why, fix = _REFUSED_ARCH[arch]
        raise c.refuse("architecture", f"architecture '{arch}' is not supported: {why}", fix=fix)
    if arch not in ARCHITECTURES:
        raise c.refuse("architecture", f"architecture '{arch}' is not supported",
                       fix=f"use an SAE of one of: {', '.join(ARCHITECTURES)}")
    if act not in ("", "relu", arch):  # SAELens 6 configs name no activation_fn
        raise c.refuse("activation_fn", f"activation_fn '{act}' is not supported for architecture '{arch}'",
                       fix="use relu (standard, gated), topk or jumprelu")
    return arch


@dataclass
class ScalerFiles:
    """What SAELens's trainer saved beside a checkpoint: activation_scaler.json and the whitening tensors."""

    folder: Path
    scaler: dict[str, Any] | None = None
    whitening: dict[str, np.ndarray] | None = None


def build_weights(cfg: dict, cfg_path: Path | None, weights_path: Path, tensors: dict[str, np.ndarray],
                  stats: ScalerFiles | None = None) -> SAEWeights:
    """SAEWeights that encode as SAELens does, from a config and its tensors (float32, shapes checked)."""
    c = _Cfg(legacy(cfg), cfg_path, weights_path)
    arch = architecture(c, tensors)
    _check_tensors(c, arch, tensors)
    meta = metadata_of(c.cfg)
    head = meta.get("hook_head_index", c.cfg.get("hook_head_index"))
    if head is not None:
        raise c.refuse("metadata.hook_head_index", f"the SAE reads attention head {head} alone, which probebank does "
                       "not capture", fix="use an SAE of a whole site (mlp, resid or attn)")
    reshape = c.text("reshape_activations", "none")
    if reshape != "none":
        raise c.refuse("reshape_activations", f"reshape_activations '{reshape}': the SAE reads the attention heads' "
                       "z vectors (hook_z), which probebank does not capture (its attn site is the output projection's "
                       "output)", fix="use an SAE trained on blocks.L.hook_attn_out for the attn site")
    apply_b_dec = c.flag("apply_b_dec_to_input", True)
    norm = c.text("normalize_activations", "none")
    rescale = c.flag("rescale_acts_by_decoder_norm", False)
    if rescale and arch != "topk":
        raise c.refuse("rescale_acts_by_decoder_norm", f"rescale_acts_by_decoder_norm is a topk setting, but the "
                       f"architecture is '{arch}'", fix="remove the field or set it to false")
    k = _k(c, tensors) if arch == "topk" else None
    t = {n: np.asarray(a, dtype=np.float64) for n, a in tensors.items()}  # folds in float64, then to float32
    if "log_threshold" in t:
        t["threshold"] = np.exp(t.pop("log_threshold"))
    if arch == "gated":
        t["b_enc"] = t.pop("b_gate")
    stats = stats or ScalerFiles((cfg_path or weights_path).parent)
    # The order of SAELens's folds: the scaling factor before the decoder norms, the norms before whitening.
    if norm == "expected_average_only_in":
        _fold_factor(c, stats, t)
    if rescale:  # codes are ReLU(TopK(pre * |W_dec rows|)): fold the norms into the encoder (fold_W_dec_norm)
        n = np.maximum(np.linalg.norm(t["W_dec"], axis=1), 1e-8)
        t["W_dec"], t["W_enc"], t["b_enc"] = t["W_dec"] / n[:, None], t["W_enc"] * n, t["b_enc"] * n
    if norm == "covariance_whitening":
        _fold_whitening(c, stats, t, apply_b_dec, arch)
    if norm in ("expected_average_only_in", "covariance_whitening"):
        norm = "none"
    elif norm not in ROW_NORMS:
        raise c.refuse("normalize_activations", f"normalize_activations '{norm}' is not supported",
                       fix=f"use one of {', '.join(ROW_NORMS)}, expected_average_only_in, covariance_whitening")
    f32 = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in t.items()}
    activation = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu", "gated": "gated"}[arch]
    return SAEWeights(f32["W_enc"], f32["b_enc"], f32["W_dec"], f32["b_dec"], activation=activation, k=k,
                      threshold=f32.get("threshold"), apply_b_dec_to_input=apply_b_dec, normalize=norm,
                      b_mag=f32.get("b_mag"), r_mag=f32.get("r_mag"))


def _k(c: _Cfg, tensors: dict[str, np.ndarray]) -> int:
    k = c.cfg.get("k", (c.cfg.get("activation_fn_kwargs") or {}).get("k"))
    d_sae = int(tensors["W_enc"].shape[1])
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d_sae:
        raise c.refuse("k", f"a topk SAE needs k, a whole number from 1 to d_sae={d_sae}, got {k!r}",
                       fix="set k in the config")
    return k


def _check_tensors(c: _Cfg, arch: str, tensors: dict[str, np.ndarray]) -> None:
    allowed = _TENSORS[arch] | {"scaling_factor"}
    missing = sorted(_TENSORS[arch] - {"threshold", "log_threshold"} - set(tensors))
    if arch == "jumprelu" and not {"threshold", "log_threshold"} & set(tensors):
        missing.append("threshold")
    for name in missing:
        raise BasisError(f"missing tensor '{name}', which a {arch} SAE needs (found {sorted(tensors)})",
                         file=c.weights_path,
                         field=name, fix="save the SAE with SAELens's save_model, or in the common layout")
    for name in sorted(set(tensors) - allowed):
        raise BasisError(f"tensor '{name}' is not used by a {arch} SAE, so its codes would differ", file=c.weights_path,
                         field=name, fix="check the config's architecture, or remove the tensor if it is unused")
    scale = tensors.get("scaling_factor")
    if scale is not None and not np.allclose(scale, 1.0):
        raise BasisError("a finetuning scaling_factor (SAELens < 6) is not supported", file=c.weights_path,
                         field="scaling_factor", fix="fold it into W_dec (W_dec * scaling_factor[:, None]) and remove it")
    tensors.pop("scaling_factor", None)  # all ones: SAELens drops it too


def _scaler_fix(norm: str) -> str:
    return ("fold the statistics into the weights in SAELens (sae.fold_activation_norm_scaling_factor(f) or "
            "sae.fold_activation_whitening(...), then save_model), or put the trainer's " + SCALER_FILE
            + (f" and {WHITENING_FILE}" if norm == "covariance_whitening" else "") + " beside cfg.json")


def _fold_factor(c: _Cfg, stats: ScalerFiles, t: dict[str, np.ndarray]) -> None:
    """The trainer's input scaling factor, folded as SAELens's fold_activation_norm_scaling_factor does."""
    factor = (stats.scaler or {}).get("scaling_factor")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
        raise c.refuse("normalize_activations", "normalize_activations 'expected_average_only_in' scales the input "
                       f"by a factor estimated in training, and no {SCALER_FILE} with a positive scaling_factor is "
                       "beside the config", fix=_scaler_fix("expected_average_only_in"))
    t["W_enc"], t["W_dec"], t["b_dec"] = t["W_enc"] * factor, t["W_dec"] / factor, t["b_dec"] / factor


def _fold_whitening(c: _Cfg, stats: ScalerFiles, t: dict[str, np.ndarray], apply_b_dec: bool, arch: str) -> None:
    """The trainer's whitening z = (x - mean) M, folded as SAELens's fold_activation_whitening does."""
    w = stats.whitening
    wpath = stats.folder / WHITENING_FILE
    if w is None:
        raise c.refuse("normalize_activations", "normalize_activations 'covariance_whitening' whitens the input with "
                       f"statistics estimated in training, and no {WHITENING_FILE} is beside the config",
                       fix=_scaler_fix("covariance_whitening"))
    d_in = t["W_enc"].shape[0]
    for name, shape in (("mean", (d_in,)), ("matrix", (d_in, d_in)), ("inverse_matrix", (d_in, d_in))):
        if name not in w or tuple(w[name].shape) != shape:
            raise BasisError(f"needs '{name}' of shape {shape} (has {({k: v.shape for k, v in w.items()})})",
                             file=wpath, field=name, fix="save the trainer's whitening statistics again")
    mean, M, Minv = (np.asarray(w[n], np.float64) for n in ("mean", "matrix", "inverse_matrix"))
    t["W_enc"] = M @ t["W_enc"]
    shift = mean @ t["W_enc"]
    if not apply_b_dec:  # else the folded b_dec below already takes the mean off the input
        t["b_enc"] = t["b_enc"] - shift
        if arch == "gated":
            t["b_mag"] = t["b_mag"] - shift * np.exp(t["r_mag"])
    t["W_dec"] = t["W_dec"] @ Minv
    t["b_dec"] = t["b_dec"] @ Minv + mean
