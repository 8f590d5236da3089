"""Extension points. Each hook receives a `register` callable; a plugin implements only the hooks it needs.

    from probebank.hookspecs import hookimpl

    @hookimpl
    def register_datasets(register):
        register("my-builder", build)            # cards name their builder

pluggy calls every implementation (built-ins, entry points of group `probebank`, then --include
folders); when two plugins register one name, the later-loaded plugin wins, with a warning
(probebank.plugins). The contracts of what is registered are in probebank.contracts.
"""
from __future__ import annotations

import pluggy

from probebank.contracts import (
    RegisterBasis,
    RegisterDataset,
    RegisterLayout,
    RegisterMethod,
    RegisterModel,
    RegisterSource,
)

hookspec = pluggy.HookspecMarker("probebank")
hookimpl = pluggy.HookimplMarker("probebank")


@hookspec
def register_datasets(register: RegisterDataset) -> None:
    """Register dataset builders: register(name, build, card=None); build(ctx) yields Examples, and
    `card` (a DatasetCard or a card.yaml path) adds a dataset that registry.yaml does not list."""


@hookspec
def register_sources(register: RegisterSource) -> None:
    """Register source kinds: register(kind, fetch), fetch(pin, card_dir) -> Path of the unpacked artifact."""


@hookspec
def register_models(register: RegisterModel) -> None:
    """Register model providers: register(name, provider), provider.load(spec, dtype="float32") -> LoadedModel."""


@hookspec
def register_layouts(register: RegisterLayout) -> None:
    """Register architecture families: register(Layout(name, blocks=..., mlp=..., attn=...)); later plugins'
    layouts are tried first."""


@hookspec
def register_methods(register: RegisterMethod) -> None:
    """Register k-sparse selection methods: register(name, factory), factory(**params) -> a Selector (a
    scikit-learn estimator whose fit(X, y) sets supports_)."""


@hookspec
def register_bases(register: RegisterBasis) -> None:
    """Register unsupervised bases: register(name, factory), factory(**settings) -> a scikit-learn
    transformer (fit / transform / inverse_transform; contracts.Basis), e.g. a BasisEstimator subclass."""
