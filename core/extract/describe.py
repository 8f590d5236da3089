"""Which provider serves a model, and what the model is, without importing torch or reading weights.

`resolve_model` maps a name or path to its provider; `model_identity` asks the provider's optional
`identity(spec, dtype=...)` (name, revision, dtype, notes, layer count from a config.json or GGUF
header). A full load remembers the model's shapes (layers, widths, causal, positions) in the cache,
keyed by that identity (`remember_shapes`), so a later run knows them before anything loads: it checks
`--layers` at once and, when every activation is stored, never loads the weights
(probebank.extract.providers.open_model).
"""
from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probebank.contracts import ModelIdentity, ModelProvider
from probebank.errors import ConfigError, ModelError
from probebank.paths import cache_dir
from probebank.plugins import get_registered

SHAPE_FIELDS = ("family", "causal", "n_layers", "widths", "max_positions")


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or os.sep in text or text.lower().endswith(".gguf")


def resolve_model(name_or_path: str, include: Sequence[Path] = ()) -> tuple[ModelProvider, str]:
    """Find the provider for a model name or path; return (provider, spec for provider.load).

    Rules, in order: an exact registered name ("smollm2-135m", "default"); "PROVIDER:SPEC" with a
    registered provider ("gguf:/x/m.gguf", "hf:org/id", "tiny:llama"); a path ending in .gguf
    (gguf); an existing folder (hf). Anything else that looks like a path is named as a missing path.
    """
    providers = get_registered(include).models
    text = str(name_or_path)
    if text in providers:
        return providers[text], text
    prefix, sep, rest = text.partition(":")
    if sep and prefix in providers and rest:
        return providers[prefix], rest
    path = Path(text).expanduser()
    if text.lower().endswith(".gguf") and "gguf" in providers:
        return providers["gguf"], text
    if path.is_dir() and "hf" in providers:
        return providers["hf"], str(path)
    names = ", ".join(sorted(providers)) or "none (is the models plugin installed?)"
    if _looks_like_path(text):
        raise ModelError(f"no such path: {text}", field="--model",
                         fix=f"give an existing .gguf file or model folder, or a registered model ({names})")
    close = difflib.get_close_matches(text, list(providers), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ModelError(f"unknown model '{text}'", field="--model",
                     fix=f"{hint}use a registered name ({names}), a path to a .gguf file, a model folder, "
                         "or PROVIDER:SPEC such as hf:/path/to/folder or gguf:/path/to/model.gguf")


def takes_option(provider: ModelProvider, option: str) -> bool:
    """Whether a provider's `load` takes `option` (revision, device; imports a deferred provider's module)."""
    target = getattr(provider, "provider", provider)  # plugins.models.Deferred wraps the provider
    return option in inspect.signature(target.load).parameters


def check_revision(name_or_path: str, revision: str | None, include: Sequence[Path] = ()) -> None:
    """A --revision for a model whose provider has none to choose from is a ModelError."""
    if revision is not None and not takes_option(resolve_model(name_or_path, include)[0], "revision"):
        raise ModelError(f"the model '{name_or_path}' has no revisions to choose from", field="--revision",
                         fix="drop --revision, or name a hub model as hf:ORG/NAME")


def check_model(name_or_path: str, include: Sequence[Path] = ()) -> tuple[ModelProvider, str]:
    """`resolve_model`, and a model path that does not exist (a .gguf file too) is named as such."""
    text = str(name_or_path)
    if text not in get_registered(include).models and _looks_like_path(text) and not Path(text).expanduser().exists():
        raise ModelError(f"no such path: {text}", field="--model",
                         fix="give an existing .gguf file or model folder, or a registered model name")
    return resolve_model(text, include)


def model_identity(name_or_path: str, *, dtype: str = "float32", include: Sequence[Path] = ()) -> ModelIdentity | None:
    """What the provider can say about the model without loading it (None: nothing)."""
    provider, spec = resolve_model(name_or_path, include)
    identify = getattr(provider, "identity", None)
    return identify(spec, dtype=dtype) if callable(identify) else None


def _shapes_file(identity: ModelIdentity) -> Path:
    key = json.dumps([identity.name, identity.revision, identity.dtype, identity.notes])
    return cache_dir("models", "shapes") / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def remember_shapes(identity: ModelIdentity, shapes: dict[str, Any]) -> None:
    """Keep a loaded model's shapes (SHAPE_FIELDS) under its identity; written atomically."""
    path = _shapes_file(identity)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({k: shapes[k] for k in SHAPE_FIELDS}), encoding="utf-8")
    tmp.replace(path)


def remembered_shapes(identity: ModelIdentity) -> dict[str, Any] | None:
    """The shapes an earlier full load of this very model (same name, revision, dtype, notes) found."""
    if not identity.complete or not identity.revision:
        return None
    try:
        shapes = json.loads(_shapes_file(identity).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return shapes if isinstance(shapes, dict) and all(k in shapes for k in SHAPE_FIELDS) else None


def known_layers(name_or_path: str, *, include: Sequence[Path] = ()) -> tuple[str, int] | None:
    """(model name, layer count) when known without loading: from remembered shapes or the model's header."""
    identity = model_identity(name_or_path, include=include)
    if identity is None:
        return None
    shapes = remembered_shapes(identity)
    n_layers = int(shapes["n_layers"]) if shapes else identity.n_layers
    return None if n_layers is None else (identity.name, n_layers)


def check_layers(layers: Sequence[int], model: str, n_layers: int) -> list[int]:
    """The layers of a run (negative counts from the end), sorted; a ConfigError names any that do not exist."""
    out = sorted({(n_layers + layer) if layer < 0 else layer for layer in layers})
    bad = [layer for layer in out if not 0 <= layer < n_layers]
    if bad:
        raise ConfigError(f"layers {bad} do not exist in {model} ({n_layers} layers)",
                          field="--layers", fix=f"use 0..{n_layers - 1} (negative counts from the end)")
    return out
