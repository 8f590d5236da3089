"""Which probebank site and layer an SAE's recorded hook names, and the check against the site being probed.

SAELens records where an SAE was trained in its cfg.json: `metadata.hook_name` (a TransformerLens
hook, e.g. `blocks.6.hook_resid_post`), sometimes `metadata.hf_hook_name` (a module of the HF model,
e.g. `model.layers.6`), and in configs before SAELens 6 a top-level `hook_name` or `hook_point`. The
hooks that are one of probebank's sites (probebank.extract.loaded) are:

| hook | site, layer |
|---|---|
| `blocks.L.hook_resid_post`, or an HF block's output (`model.layers.L`, `transformer.h.L`, `gpt_neox.layers.L`, ...) | resid, L |
| `blocks.L.hook_resid_pre` (L >= 1) | resid, L - 1 |
| `blocks.L.mlp.hook_post` (the neurons, the input of the MLP's output projection) | mlp, L |
| `blocks.L.hook_attn_out`, or an HF attention output projection (`...L.self_attn.o_proj`, ...) | attn, L |

Other hooks (`hook_mlp_out`, `hook_resid_mid`, `attn.hook_z`, embeddings, ...) are activations
probebank does not capture: an SAE trained there does not fit any site.
"""
from __future__ import annotations

import re
from pathlib import Path

from probebank.errors import BasisError

# HF module paths of the attention output projection, per family (probebank_plugins.models' layouts).
_HF_ATTN = ("self_attn.o_proj", "attention.dense", "attn.c_proj", "attention.output.dense", "self_attention.dense",
            "attn.out_proj")
_TL = re.compile(r"^blocks\.(\d+)\.(.+)$")
_TL_SITES = {"hook_resid_post": ("resid", 0), "hook_resid_pre": ("resid", -1), "mlp.hook_post": ("mlp", 0),
             "hook_attn_out": ("attn", 0)}
_HF_BLOCK = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(?:layers|h|layer|blocks)\.(\d+)(?:\.(.+))?$")

HOOK_FIELDS = ("metadata.hook_name", "metadata.hf_hook_name", "hook_name", "hook_point")
NOT_A_SITE = "not a site probebank captures"


def metadata_of(cfg: dict) -> dict:
    """The config's metadata object ({} when there is none)."""
    meta = cfg.get("metadata")
    return meta if isinstance(meta, dict) else {}


def hook_site(name: str) -> tuple[str, int] | str:
    """(site, layer) of a hook name, or a reason it is none (NOT_A_SITE, or 'unknown')."""
    m = _TL.match(name)
    if m:
        hit = _TL_SITES.get(m.group(2))
        if hit is None:
            return NOT_A_SITE
        layer = int(m.group(1)) + hit[1]
        return (hit[0], layer) if layer >= 0 else NOT_A_SITE
    if name.startswith(("hook_embed", "hook_pos_embed", "ln_final", "unembed", "embed")):
        return NOT_A_SITE
    m = _HF_BLOCK.match(name)
    if m:
        rest = m.group(2)
        if rest is None:
            return ("resid", int(m.group(1)))
        return ("attn", int(m.group(1))) if rest in _HF_ATTN else NOT_A_SITE
    return "unknown"


def recorded_hooks(cfg: dict) -> list[tuple[str, str]]:
    """(field, hook name) for every hook name the config records."""
    meta = metadata_of(cfg)
    out = []
    for fld in HOOK_FIELDS:
        value = meta.get(fld.split(".", 1)[1]) if fld.startswith("metadata.") else cfg.get(fld)
        if isinstance(value, str) and value:
            out.append((fld, value))
    return out


def check_hook(cfg: dict, cfg_path: Path | None, site: str, layer: int) -> None:
    """Raise BasisError unless every hook name the config records is `site` at `layer` (none recorded: no check)."""
    override = "or, if it is the same activation under another name, write sae:PATH:check_hook=false"
    for fld, name in recorded_hooks(cfg):
        where = hook_site(name)
        if where == (site, layer):
            continue
        if isinstance(where, tuple):
            raise BasisError(f"the SAE was trained on hook '{name}' ({where[0]}, layer {where[1]}), but this run "
                             f"probes {site} layer {layer} with it", file=cfg_path, field=fld,
                             fix=f"probe it with --sites {where[0]} --layers {where[1]}, {override}")
        if where == NOT_A_SITE:
            raise BasisError(f"the SAE was trained on hook '{name}', which is {NOT_A_SITE} (mlp: the MLP's "
                             "neurons, blocks.L.mlp.hook_post; resid: blocks.L.hook_resid_post; attn: "
                             f"blocks.L.hook_attn_out), so its codes of {site} layer {layer} mean nothing",
                             file=cfg_path, field=fld, fix=f"use an SAE trained on one of those hooks, {override}")
        raise BasisError(f"cannot tell which site and layer the hook '{name}' is (probed here: {site} layer {layer})",
                         file=cfg_path, field=fld,
                         fix=f"check that the SAE was trained on {site} layer {layer} and write sae:PATH:check_hook=false")
