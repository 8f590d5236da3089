"""`tiny:FAMILY`: tiny random-init models for tests and smoke runs.
"""
from __future__ import annotations

from typing import Any

from probebank.extract.loaded import LoadedModel
from probebank.extract.tiny import TINY_FAMILIES, tiny_model, tiny_tokenizer


class TinyProvider:
    """tiny:FAMILY - a tiny random-init model for tests and smoke runs (one of TINY_FAMILIES)."""

    describe = ("tiny:FAMILY - tiny random-init model (" + ", ".join(TINY_FAMILIES)
                + ") with an in-memory tokenizer; tests only")

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel:
        family, _, seed = spec.partition("@")  # tiny:llama or tiny:llama@3
        loaded = tiny_model(family or "llama", seed=int(seed or 0))
        return loaded.to(dtype) if dtype != "float32" else loaded

    def load_tokenizer(self, spec: str) -> tuple[Any, str]:
        kind = "wordpiece" if spec.startswith("bert") else "bpe"
        return tiny_tokenizer(kind), f"tiny-{kind}"
