"""A model's tokenizer without its weights: what the dataset quality gates need.

The token-identity and position gates ask which token a target ends on and where; that depends
on the tokenizer only. Loading the default model (SmolLM2-135M) would dequantise ~100 MB of
weights; its provider reads tokenizer.json from the converted folder in the cache instead (or,
before the first conversion, the tokenizer tables of the GGUF file, which never touches the
tensors). A provider offers this with `load_tokenizer(spec) -> (tokenizer, revision)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from probebank.extract.providers import load_model, resolve_model
from probebank.extract.runtime import prepare_runtime

DEFAULT_TOKENIZER = "smollm2-135m"


@dataclass(frozen=True)
class LoadedTokenizer:
    name: str
    revision: str  # what decides the token ids: the weights file's sha256, or a fixed tag for tiny ones
    tokenizer: Any = None


@lru_cache(maxsize=4)
def load_tokenizer(name: str = DEFAULT_TOKENIZER) -> LoadedTokenizer:
    """The fast tokenizer of a model by name, without its weights when the provider can (the default
    model, GGUF files, tiny models: `provider.load_tokenizer(spec)`); otherwise the model is loaded."""
    provider, spec = resolve_model(name)
    load = getattr(provider, "load_tokenizer", None)
    if load is not None:
        prepare_runtime()
        tokenizer, revision = load(spec)
        return LoadedTokenizer(name, revision, tokenizer)
    loaded = load_model(name)
    return LoadedTokenizer(name, loaded.revision, loaded.tokenizer)
