"""Model lookup: a model name or path -> the registered provider that loads it.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probebank.contracts import ModelProvider
from probebank.errors import ModelError
from probebank.extract.layouts import layouts_in_effect
from probebank.extract.loaded import LoadedModel
from probebank.extract.runtime import prepare_runtime
from probebank.plugins import get_registered


def resolve_model(name_or_path: str, include: Sequence[Path] = ()) -> tuple[ModelProvider, str]:
    """Find the provider for a model name or path; return (provider, spec for provider.load).

    Rules, in order: an exact registered name ("smollm2-135m", "default"); "PROVIDER:SPEC" with a
    registered provider ("gguf:/x/m.gguf", "hf:org/id", "tiny:llama"); a path ending in .gguf
    (gguf); an existing folder (hf).
    """

    providers = get_registered(include).models
    text = str(name_or_path)
    if text in providers:
        return providers[text], text
    prefix, sep, rest = text.partition(":")
    if sep and prefix in providers and rest:
        return providers[prefix], rest
    if text.lower().endswith(".gguf") and "gguf" in providers:
        return providers["gguf"], text
    if Path(text).expanduser().is_dir() and "hf" in providers:
        return providers["hf"], str(Path(text).expanduser())
    names = ", ".join(sorted(providers)) or "none (is the models plugin installed?)"
    raise ModelError(f"unknown model '{text}'", field="model",
                     fix=f"use a registered name ({names}), a path to a .gguf file, a model folder, "
                         "or PROVIDER:SPEC such as hf:/path/to/folder or gguf:/path/to/model.gguf")


def load_model(name_or_path: str, *, dtype: str = "float32", include: Sequence[Path] = (),
               revision: str | None = None) -> LoadedModel:
    """Resolve a model name or path to its provider and load it (at `revision`, for a provider that takes one)."""
    provider, spec = resolve_model(name_or_path, include)
    extra: dict[str, Any] = {}
    if revision is not None:
        if "revision" not in inspect.signature(provider.load).parameters:
            raise ModelError(f"the model '{name_or_path}' has no revisions to choose from", field="revision",
                             fix="drop --revision, or name a hub model as hf:ORG/NAME")
        extra["revision"] = revision
    prepare_runtime()
    with layouts_in_effect(get_registered(include).layouts):  # families of --include plugins too
        return provider.load(spec, dtype=dtype, **extra)
