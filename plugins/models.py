"""Model providers and architecture families, registered through `register_models` and `register_layouts`.

The providers live in probebank_plugins.providers (one module each: hf, gguf + the embedded
SmolLM2-135M, gemma, tiny, random-init). Each is registered as a `Deferred` front that imports its
module (torch, transformers: seconds) on first use, so asking which models exist, or what a model is
(`identity`, read from the files by probebank_plugins.providers.identity), costs no torch import: a
bad `--layers` or `--model` is answered before anything heavy loads. Every provider returns a
`probebank.extract.loaded.LoadedModel` holding the base transformer only (no LM head); everything
loads offline: hub ids work only if they are already in the local HF cache.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probebank.contracts import Layout, ModelIdentity, RegisterLayout, RegisterModel
from probebank.hookspecs import hookimpl
from probebank_plugins.providers.identity import SMOLLM2_LAYERS, folder_identity, gguf_identity, smollm2_gguf

# Order matters only when two layouts match the same tree; the first match wins.
BUILTIN_LAYOUTS: tuple[Layout, ...] = (
    # llama, mistral, qwen2/3, gemma/gemma2/gemma3, phi3, olmo/olmo2, smollm: gated MLP + o_proj
    Layout("llama-like", blocks="layers", mlp="mlp.down_proj", attn="self_attn.o_proj"),
    # phi (phi-1, phi-1.5, phi-2): parallel attention and a plain fc1 -> fc2 MLP
    Layout("phi", blocks="layers", mlp="mlp.fc2", attn="self_attn.dense"),
    Layout("gpt_neox", blocks="layers", mlp="mlp.dense_4h_to_h", attn="attention.dense"),
    Layout("gpt2", blocks="h", mlp="mlp.c_proj", attn="attn.c_proj"),
    # bert, roberta, electra, ... (BertLayer: intermediate -> output.dense)
    Layout("bert", blocks="encoder.layer", mlp="output.dense", attn="attention.output.dense", causal=False),
)

Identify = Callable[[str, str], "ModelIdentity | None"]


class Deferred:
    """A provider whose class is imported on first use; `identity` answers without importing it."""

    def __init__(self, target: str, identify: Identify | None = None) -> None:
        self._target = target  # "module:Class"
        self._identify = identify
        self._provider: Any = None

    def _get(self) -> Any:
        if self._provider is None:
            module, _, cls = self._target.partition(":")
            self._provider = getattr(importlib.import_module(module), cls)()
        return self._provider

    @property
    def provider(self) -> Any:
        """The provider object itself (imports its module)."""
        return self._get()

    @property
    def describe(self) -> str:
        return str(self._get().describe)

    def load(self, spec: str, *, dtype: str = "float32", **options: Any) -> Any:  # options: e.g. revision (hf)
        return self._get().load(spec, dtype=dtype, **options)

    def identity(self, spec: str, *, dtype: str = "float32") -> ModelIdentity | None:
        return self._identify(spec, dtype) if self._identify is not None else None

    def __getattr__(self, name: str) -> Any:  # load_tokenizer, gguf_path, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._get(), name)


def _smollm2(spec: str, dtype: str) -> ModelIdentity | None:
    path = smollm2_gguf()
    if path is None:  # not fetched yet: the pinned file's layer count, so --layers is checked before the download
        return ModelIdentity("smollm2-135m", "", dtype, None, n_layers=SMOLLM2_LAYERS, complete=False)
    return gguf_identity(path, "smollm2-135m", dtype)


@hookimpl
def register_layouts(register: RegisterLayout) -> None:
    for layout in BUILTIN_LAYOUTS:
        register(layout)


@hookimpl
def register_models(register: RegisterModel) -> None:
    pkg = "probebank_plugins.providers"
    smollm2 = Deferred(f"{pkg}.gguf:SmolLM2Provider", _smollm2)
    register("hf", Deferred(f"{pkg}.hf:HFProvider", lambda spec, dtype: folder_identity(Path(spec).expanduser(), dtype)))
    register("gguf", Deferred(f"{pkg}.gguf:GGUFProvider",
                              lambda spec, dtype: gguf_identity(Path(spec).expanduser(), None, dtype)))
    register("smollm2-135m", smollm2)
    register("default", smollm2)
    register("gemma3-270m", Deferred(f"{pkg}.gemma:Gemma3Provider"))
    register("tiny", Deferred(f"{pkg}.tiny:TinyProvider"))
    register("random-init", Deferred(f"{pkg}.random_init:RandomInitProvider"))
