"""Model loading: a model name or path -> the registered provider that loads it (probebank.extract.describe).

`load_model` loads the weights now; `open_model` gives the model's identity, shapes and tokenizer now
and its weights on the first forward pass, when an earlier load remembered its shapes: a repeated run
whose activations are all stored never reads the weights.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probebank.contracts import ModelIdentity
from probebank.extract.describe import (
    check_revision,
    model_identity,
    remember_shapes,
    remembered_shapes,
    resolve_model,
    takes_option,
)
from probebank.extract.layouts import layouts_in_effect
from probebank.extract.loaded import LoadedModel
from probebank.extract.runtime import prepare_runtime
from probebank.plugins import get_registered

__all__ = ["load_model", "open_model", "resolve_model"]


def load_model(name_or_path: str, *, dtype: str = "float32", include: Sequence[Path] = (),
               revision: str | None = None, device: str | None = None) -> LoadedModel:
    """Resolve a model name or path to its provider and load it (at `revision`, for a provider that takes one);
    its shapes are remembered for open_model. A provider whose `load` takes `device` puts the weights there as
    they load (no copy on the host first); the others load on the host and the caller moves them."""
    provider, spec = resolve_model(name_or_path, include)
    check_revision(name_or_path, revision, include)
    extra: dict[str, Any] = {} if revision is None else {"revision": revision}
    if device is not None and device != "cpu" and takes_option(provider, "device"):
        extra["device"] = device
    prepare_runtime()
    with layouts_in_effect(get_registered(include).layouts):  # families of --include plugins too
        loaded = provider.load(spec, dtype=dtype, **extra)
    identity = model_identity(name_or_path, dtype=dtype, include=include)
    if identity is not None and identity.complete and _named(identity) == _named(loaded.identity()):
        remember_shapes(identity, loaded.shapes())  # only when the provider's identity is the loaded model's
    return loaded


def _named(identity: ModelIdentity) -> tuple:
    return identity.name, identity.revision, identity.dtype, identity.notes


def open_model(name_or_path: str, *, dtype: str = "float32", include: Sequence[Path] = (),
               revision: str | None = None, device: str | None = None) -> LoadedModel:
    """The model with its tokenizer deferred to first use and its weights to the first forward pass, when the
    provider tells its identity and offers `load_tokenizer`, and an earlier load of this very model
    remembered its shapes; else loaded. A --revision is always checked by a full load."""
    provider, spec = resolve_model(name_or_path, include)
    identity = model_identity(name_or_path, dtype=dtype, include=include) if revision is None else None
    shapes = remembered_shapes(identity) if identity is not None else None
    load_tokenizer = getattr(provider, "load_tokenizer", None)
    if identity is None or shapes is None or not callable(load_tokenizer):
        return load_model(name_or_path, dtype=dtype, include=include, revision=revision, device=device)
    return LoadedModel.deferred(identity, lambda: load_tokenizer(spec)[0], shapes,
                                lambda: load_model(name_or_path, dtype=dtype, include=include, device=device))
