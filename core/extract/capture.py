"""Activation capture: one forward pass with hooks that stops after the last needed block.

`capture` collects exactly the requested (site, layer) tensors and stops right after the last
block it needs, so later blocks, the final norm and the head never run.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel, check_site


class _StopForward(Exception):
    """Raised from a hook on the last needed block to end the forward pass early; carries its output."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


@functools.lru_cache(maxsize=64)
def _forward_params(cls: type[nn.Module]) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def _forward_kwargs(loaded: LoadedModel, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor | None) -> dict[str, Any]:
    params = _forward_params(type(loaded.model))  # type: ignore[arg-type]  # classes hash by identity
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "use_cache" in params:
        kwargs["use_cache"] = False  # a KV cache is pure waste for one forward pass
    if attention_mask is not None and loaded.causal and "position_ids" in params:
        # Positions count real tokens only, so left-padded rows get the same positions as unpadded
        # ones (most decoders default to arange(seq), which is only right for right padding).
        kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
    return kwargs


def _block_output(output: Any) -> torch.Tensor:
    # transformers 5 decoder layers return a tensor; older/other blocks return (hidden, ...).
    return output if isinstance(output, torch.Tensor) else output[0]


def hooked_forward(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                   stop_layer: int | None, register: Callable[[list[Any]], None], grad_mode: str = "inference") -> Any:
    """Forward pass with hooks installed by `register(handles)`, stopping after block `stop_layer`.

    Returns the model output, or the stop block's output tensor when stopped early. Hooks are
    removed in all cases. `capture` reads activations this way; probebank.causal edits them.
    """
    loaded.ensure_weights()  # a model opened with deferred weights loads them here, on its first forward pass
    handles: list[Any] = []
    stopped = False

    def stop_hook(module: nn.Module, args: Any, output: Any) -> None:
        raise _StopForward(_block_output(output))

    ctx = torch.inference_mode() if grad_mode == "inference" else torch.no_grad()
    try:
        register(handles)
        if stop_layer is not None:
            # Registered last, so the block's own capture hooks (if any) run before it.
            handles.append(loaded.blocks[stop_layer].register_forward_hook(stop_hook))
        with ctx:
            try:
                out = loaded.model(**_forward_kwargs(loaded, input_ids, attention_mask))
            except _StopForward as stop:
                stopped = True
                out = stop.output
    finally:
        for h in handles:
            h.remove()
    if stop_layer is not None and not stopped:
        raise ModelError(f"{loaded.name}: the forward pass did not stop after layer {stop_layer} "
                         "(the model swallowed the stop signal or never ran that block)")
    return out


def capture(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
            sites: Sequence[str] = ("mlp",), layers: Iterable[int] | None = None, *,
            reduce: Callable[[str, int, torch.Tensor], Any] | None = None,
            verify_inplace: bool = False) -> dict[tuple[str, int], Any]:
    """One forward pass returning {(site, layer): Tensor[batch, seq, width]} for every requested pair.

    The pass stops right after the last requested block (later blocks, the final norm and any head
    never run). Tensors are the model's own (no copy); under inference mode they are inference
    tensors: cast or copy them (e.g. `.to(torch.float16)`) before modifying them in place.

    `reduce(site, layer, tensor)`, if given, is applied inside the hook and its result stored
    instead of the tensor, e.g. to gather target positions or cast to fp16 on the fly so memory
    holds one layer's full activations at a time.

    `verify_inplace=True` (a test aid) runs under no_grad instead of inference mode and checks
    that no captured tensor was modified in place later in the pass.
    """
    sites = list(dict.fromkeys(sites))
    for site in sites:
        check_site(site)
    wanted = sorted({loaded.check_layer(i) for i in (range(loaded.n_layers) if layers is None else layers)})
    if not wanted or not sites:
        return {}
    out: dict[tuple[str, int], Any] = {}
    versions: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}

    def store(key: tuple[str, int], tensor: torch.Tensor) -> None:
        if key in out:
            raise ModelError(f"{loaded.name}: site {key[0]} of layer {key[1]} ran twice in one forward pass "
                             "(shared weights?): capture needs each hooked module to run once")
        if verify_inplace:
            versions[key] = (tensor, tensor._version)
        out[key] = tensor if reduce is None else reduce(key[0], key[1], tensor)

    def make_pre_hook(key: tuple[str, int]) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            store(key, args[0] if args else next(iter(kwargs.values())))
        return hook

    def make_out_hook(key: tuple[str, int], block_output: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            store(key, _block_output(output) if block_output else output)
        return hook

    def register(handles: list[Any]) -> None:
        for layer in wanted:
            for site in sites:
                key = (site, layer)
                mod = loaded.site_module(site, layer)
                if site == "mlp":  # the projection's input: neurons after nonlinearity and gating
                    handles.append(mod.register_forward_pre_hook(make_pre_hook(key), with_kwargs=True))
                else:
                    handles.append(mod.register_forward_hook(make_out_hook(key, site == "resid")))

    hooked_forward(loaded, input_ids, attention_mask, stop_layer=wanted[-1], register=register,
         grad_mode="no_grad" if verify_inplace else "inference")
    missing = [k for k in ((s, i) for i in wanted for s in sites) if k not in out]
    if missing:
        raise ModelError(f"{loaded.name}: hooks for {missing} never fired during the forward pass",
                         fix="the layout's module paths do not match how this model computes its blocks")
    for key, (tensor, version) in versions.items():
        if tensor._version != version:
            raise ModelError(f"{loaded.name}: the {key[0]} activation of layer {key[1]} was modified in place "
                             "after it was captured; capture must clone it for this family")
    return out


def bare_forward(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 last_layer: int | None = None) -> torch.Tensor:
    """The same base-model forward with no capture hooks (the benchmark baseline).

    With `last_layer`, the pass stops after that block exactly as `capture` does (so the two
    compare like with like) and returns that block's output (= resid at last_layer). Without it,
    the whole base model runs, final norm included, and its last hidden state is returned.
    """
    stop = None if last_layer is None else loaded.check_layer(last_layer)
    out = hooked_forward(loaded, input_ids, attention_mask, stop_layer=stop, register=lambda handles: None)
    if isinstance(out, torch.Tensor):
        return out
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
