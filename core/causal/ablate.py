"""Edit chosen units of one site and layer during the forward pass, and run the passes that need it.

An edit sets units to values (ablation: mean, zero or resample) or adds values to them (steering),
at every token position. It sits on the same modules extraction reads (LoadedModel.site_module):

- ``mlp``: a pre-hook on the MLP's output projection rewrites its input (the neurons after the
  nonlinearity and gating), so the edited neurons are what the projection writes to the residual;
- ``resid``: a hook on the block rewrites its output (the residual stream after the block);
- ``attn``: a hook on the attention output projection rewrites its output.

Nothing before the edited block depends on the edit, so a batch's clean pass through blocks
0..layer-1 is kept (`clean_prefix`) and every edited pass of that batch replays it instead of
computing it again (`prefix_reused`): the many passes of a null distribution run only the blocks
from the edited one on. The replay is exact (tests compare it with the full pass).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from probebank.causal.head import Head
from probebank.errors import ConfigError
from probebank.extract.capture import hooked_forward
from probebank.extract.loaded import LoadedModel, check_site

ABLATIONS: tuple[str, ...] = ("mean", "zero", "resample")


@dataclass(frozen=True)
class UnitEdit:
    """Set (add=False) or shift (add=True) `units` of (site, layer) by `values`: [k] for every text, or
    [batch, k] for one row of values per text of the batch."""

    site: str
    layer: int
    units: tuple[int, ...]
    values: torch.Tensor
    add: bool = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of the [batch, seq, width] activations `x` with the edit made at every position."""
        idx = torch.tensor(self.units, dtype=torch.long, device=x.device)
        vals = self.values.to(device=x.device, dtype=x.dtype)
        if vals.ndim == 2:  # one row per text: broadcast over positions
            vals = vals[:, None, :]
        out = x.clone()  # never in place: under inference mode the input may be shared
        if self.add:
            out[..., idx] = out[..., idx] + vals
        else:
            out[..., idx] = vals.expand(*out.shape[:-1], len(self.units))
        return out


def check_units(loaded: LoadedModel, site: str, layer: int, units: Sequence[int]) -> tuple[int, ...]:
    """The units as a tuple, checked against the site's width (ConfigError naming the bad ones)."""
    check_site(site)
    layer = loaded.check_layer(layer)
    width = loaded.width(site)
    bad = [u for u in units if not 0 <= int(u) < width]
    if not units or bad:
        raise ConfigError(f"units {bad or list(units)} do not exist at {site} of {loaded.name} (width {width})",
                          field="units", fix=f"use units in 0..{width - 1}")
    if len(set(units)) != len(units):
        raise ConfigError(f"units {list(units)} name a unit twice", field="units", fix="give each unit once")
    return tuple(int(u) for u in units)


def ablation_edit(site: str, layer: int, units: Sequence[int], mode: str, acts: np.ndarray, n_texts: int,
                  rng: np.random.Generator) -> UnitEdit:
    """The ablation of `units` from a layer's stored rows `acts` [rows, width]: their mean over the rows
    (mean), 0 (zero), or per text the row of a randomly drawn example (resample)."""
    cols = np.asarray(acts[:, list(units)], dtype=np.float64)
    if mode == "mean":
        values = torch.tensor(cols.mean(axis=0), dtype=torch.float32)
    elif mode == "zero":
        values = torch.zeros(len(units))
    elif mode == "resample":
        values = torch.tensor(cols[rng.integers(0, cols.shape[0], size=n_texts)], dtype=torch.float32)
    else:
        raise ConfigError(f"unknown ablation '{mode}'", field="--mode", fix=f"use one of: {', '.join(ABLATIONS)}")
    return UnitEdit(site, layer, tuple(int(u) for u in units), values)


def _edit_output(output: Any, edit: UnitEdit) -> Any:
    # transformers 5 blocks return a tensor; older or other blocks a tuple (hidden, ...)
    if isinstance(output, torch.Tensor):
        return edit.apply(output)
    return (edit.apply(output[0]), *output[1:])


@contextmanager
def edits_applied(loaded: LoadedModel, edits: Sequence[UnitEdit]) -> Iterator[None]:
    """Hooks that make `edits` during every forward pass of the block; removed on exit."""
    handles = []
    try:
        for edit in edits:
            module = loaded.site_module(edit.site, edit.layer)
            if edit.site == "mlp":
                def pre(module: nn.Module, args: tuple, kwargs: dict, edit: UnitEdit = edit) -> tuple:
                    if args:
                        return (edit.apply(args[0]), *args[1:]), kwargs
                    name = next(iter(kwargs))
                    return args, {**kwargs, name: edit.apply(kwargs[name])}
                handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(module: nn.Module, args: Any, output: Any, edit: UnitEdit = edit) -> Any:
                    return _edit_output(output, edit)
                handles.append(module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class Prefix:
    """The clean output of block `layer - 1` for one batch: what block `layer` reads."""

    layer: int
    output: Any


def clean_prefix(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                 layer: int) -> Prefix | None:
    """Run blocks 0..layer-1 once, unedited, and keep the last one's output (None for layer 0)."""
    layer = loaded.check_layer(layer)
    if layer == 0:
        return None
    kept: list[Any] = []

    def register(handles: list[Any]) -> None:
        handles.append(loaded.blocks[layer - 1].register_forward_hook(lambda m, a, out: kept.append(out)))

    hooked_forward(loaded, input_ids, attention_mask, stop_layer=layer - 1, register=register)
    return Prefix(layer, kept[0])


@contextmanager
def prefix_reused(loaded: LoadedModel, prefix: Prefix | None) -> Iterator[None]:
    """Blocks 0..prefix.layer-1 return the kept output instead of computing it (the embeddings, masks and
    position encodings still run); the blocks' own forward is back on exit."""
    if prefix is None:
        yield
        return
    blocks = loaded.blocks[: prefix.layer]
    saved = [b.__dict__.get("forward") for b in blocks]  # e.g. accelerate's hooks live on the instance

    def replay(*args: Any, **kwargs: Any) -> Any:
        return prefix.output

    try:
        for b in blocks:
            b.forward = replay
        yield
    finally:
        for b, old in zip(blocks, saved):
            if old is None:
                del b.forward
            else:
                b.forward = old


def edited_logits(loaded: LoadedModel, head: Head, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  edits: Sequence[UnitEdit] = (), prefix: Prefix | None = None) -> torch.Tensor:
    """Next-token logits [B, T, vocab] of the full model (final norm and head) with `edits` made."""
    with ExitStack() as stack:
        stack.enter_context(edits_applied(loaded, edits))
        stack.enter_context(prefix_reused(loaded, prefix))
        out = hooked_forward(loaded, input_ids, attention_mask, stop_layer=None, register=lambda handles: None)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        with torch.inference_mode():
            return head(hidden)
