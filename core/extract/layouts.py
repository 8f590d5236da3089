"""Where the hook sites live in each architecture family's module tree.

Hook sites are resolved from the module tree, not from the model's name: a `Layout` says where
the list of blocks is and, inside a block, which module is the MLP output projection and which is
the attention output projection. The built-in families are registered by the first-party models
plugin through the `register_layouts` hook; a plugin teaches probebank a new family the same way.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from torch import nn

from probebank.contracts import Layout
from probebank.errors import ModelError
from probebank.plugins import get_registered

_IN_EFFECT: ContextVar[Sequence[Layout] | None] = ContextVar("layouts_in_effect", default=None)


@contextmanager
def layouts_in_effect(layouts: Sequence[Layout]) -> Iterator[None]:
    """Resolve layouts against these families while a provider loads (load_model sets the run's
    registry, so a family registered by an --include plugin is found)."""
    token = _IN_EFFECT.set(tuple(layouts))
    try:
        yield
    finally:
        _IN_EFFECT.reset(token)


def known_layouts() -> Sequence[Layout]:
    """The families in effect: those set by `layouts_in_effect`, else every registered one."""
    current = _IN_EFFECT.get()
    return current if current is not None else get_registered().layouts


def _get(module: nn.Module, path: str) -> nn.Module | None:
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


def _describe_tree(base: nn.Module) -> str:
    """A short description of a module tree for error messages: its class and its block lists."""
    lists = []
    for name, mod in base.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0:
            child = mod[0]
            kids = ", ".join(f"{n}: {type(c).__name__}" for n, c in list(child.named_children())[:8])
            lists.append(f"'{name}' = {len(mod)} x {type(child).__name__}({kids})")
    return f"{type(base).__name__} with block lists: " + ("; ".join(lists[:3]) if lists else "none")


def resolve_layout(base: nn.Module, layouts: Sequence[Layout] | None = None) -> Layout:
    """The first layout (of `layouts`, by default the registered ones) whose block list and site modules
    all exist in `base`'s module tree."""
    layouts = known_layouts() if layouts is None else layouts
    for layout in layouts:
        blocks = _get(base, layout.blocks)
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            continue
        if all(_get(b, layout.mlp) is not None and _get(b, layout.attn) is not None for b in blocks):
            return layout
    raise ModelError(
        f"unknown architecture: no known hook-site layout matches {_describe_tree(base)}",
        fix="teach probebank the family from a plugin: a register_layouts hook that calls register(Layout(name=..., "
            "blocks='path.to.ModuleList', mlp='path.in.block.to.mlp_out_proj', attn='path.in.block.to.attn_out_proj')) "
            "(probebank.contracts.Layout; known: " + ", ".join(layout.name for layout in layouts) + ")")


def block_list(base: nn.Module, layout: Layout) -> nn.ModuleList:
    """The layout's list of blocks in `base` (a ModuleList, else a ModelError)."""
    blocks = base.get_submodule(layout.blocks)
    if not isinstance(blocks, nn.ModuleList):
        raise ModelError(f"'{layout.blocks}' of {type(base).__name__} is a {type(blocks).__name__}, not a list of blocks",
                         fix=f"check the '{layout.name}' layout's `blocks` path")
    return blocks


def base_module(model: nn.Module) -> nn.Module:
    """The base transformer of a model with or without a head (LlamaForCausalLM -> .model, ...).

    Multimodal wrappers (e.g. Gemma3ForConditionalGeneration) keep their text tower in
    `language_model`; that tower is returned.
    """
    base = getattr(model, "base_model", model)
    if not isinstance(base, nn.Module):
        base = model
    lm = getattr(base, "language_model", None)
    if isinstance(lm, nn.Module):
        base = lm
    return base
