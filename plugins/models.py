"""Model providers and architecture families, registered through `register_models` and `register_layouts`.

The providers live in probebank_plugins.providers (one module each: hf, gguf + the embedded
SmolLM2-135M, gemma, tiny, random-init); they are imported when a command first asks for a model,
so loading the plugins costs no torch import. Every provider returns a
`probebank.extract.loaded.LoadedModel` holding the base transformer only (no LM head); everything
loads offline: hub ids work only if they are already in the local HF cache.
"""
from __future__ import annotations

from probebank.contracts import Layout, RegisterLayout, RegisterModel
from probebank.hookspecs import hookimpl

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


@hookimpl
def register_layouts(register: RegisterLayout) -> None:
    for layout in BUILTIN_LAYOUTS:
        register(layout)


@hookimpl
def register_models(register: RegisterModel) -> None:
    # torch and transformers load with the providers, on first use of a model
    from probebank_plugins.providers.gemma import Gemma3Provider
    from probebank_plugins.providers.gguf import GGUFProvider, SmolLM2Provider
    from probebank_plugins.providers.hf import HFProvider
    from probebank_plugins.providers.random_init import RandomInitProvider
    from probebank_plugins.providers.tiny import TinyProvider

    smollm2 = SmolLM2Provider()
    register("hf", HFProvider())
    register("gguf", GGUFProvider())
    register("smollm2-135m", smollm2)
    register("default", smollm2)
    register("gemma3-270m", Gemma3Provider())
    register("tiny", TinyProvider())
    register("random-init", RandomInitProvider())
