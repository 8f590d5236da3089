"""`random-init:MODEL`: a model's architecture and tokenizer with freshly drawn weights (the random-init control).
"""
from __future__ import annotations

import re

import torch

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel
from probebank_plugins.providers.hf import apply_dtype


class RandomInitProvider:
    """random-init:MODEL - MODEL's architecture and tokenizer with freshly initialised weights (a control).

    Every Linear and Embedding weight is redrawn from N(0, initializer_range) (the config's value, 0.02
    if absent), biases set to 0, normalisation weights to 1 and their biases to 0: the initialisation
    transformers uses for Llama-style models, done here with a seeded torch.Generator so the copy is
    the same on every machine. MODEL is any model name this bank resolves; "@SEED" picks another seed.
    Probes on it tell what the architecture and the tokens alone make linearly decodable.
    """

    describe = ("random-init:MODEL[@SEED] - MODEL with re-initialised weights (same architecture and "
                "tokenizer; seed 0 by default): the random-init control of `probebank run --random-init`")

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel:
        from probebank.extract.providers import load_model

        inner, _, seed_text = spec.rpartition("@") if re.fullmatch(r".+@\d+", spec) else (spec, "", "0")
        if not inner:
            raise ModelError("random-init needs a model to copy", field="model", fix="use random-init:smollm2-135m")
        loaded = load_model(inner, dtype="float32")
        seed = int(seed_text)
        reinitialise(loaded.model, seed)
        loaded.model = apply_dtype(loaded.model, dtype)
        name = f"random-init-{loaded.name}" + (f"@{seed}" if seed else "")
        return LoadedModel.from_module(name, loaded.model, loaded.tokenizer,
                                       revision=f"random-init(seed={seed}) of {loaded.revision}",
                                       notes=f"weights re-initialised (seed {seed}) from the architecture of "
                                             f"{loaded.name}; {loaded.notes or ''}".rstrip("; "))


def reinitialise(model: torch.nn.Module, seed: int) -> None:
    """Redraw every weight of `model` in place, deterministically (see RandomInitProvider)."""
    config = getattr(model, "config", None)
    std = float(getattr(config, "initializer_range", 0.02) or 0.02)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _name, module in sorted(model.named_modules(), key=lambda item: item[0]):
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                bias = getattr(module, "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.zero_()
            elif "norm" in type(module).__name__.lower():
                for pname, param in module.named_parameters(recurse=False):
                    param.fill_(1.0 if pname == "weight" else 0.0)
