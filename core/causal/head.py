"""The LM head of a loaded model: hidden states after the final norm -> next-token logits.

Extraction keeps the base transformer only. A causal check needs the logits, so the head is found
here: the one kept by `LoadedModel.from_module` when the model was built with a head, else the input
embeddings when the config ties them to the output (SmolLM2, Gemma 3 and GPT-2 do). The config's
final-logit soft-capping (Gemma 2) is applied, so probabilities are the model's own.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel

Head = Callable[[torch.Tensor], torch.Tensor]


def _tied_embeddings(loaded: LoadedModel) -> nn.Module | None:
    config = getattr(loaded.model, "config", None)
    if not bool(getattr(config, "tie_word_embeddings", False)):
        return None
    get = getattr(loaded.model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    return emb if isinstance(getattr(emb, "weight", None), torch.Tensor) else None


def output_head(loaded: LoadedModel) -> Head:
    """A function from last hidden states [B, T, d] to logits [B, T, vocab]; a ModelError for an encoder or a
    model whose untied head its provider did not load."""
    loaded.ensure_weights()
    if not loaded.causal:
        raise ModelError(f"{loaded.name} is an encoder: it has no next-token head to measure a causal effect with",
                         field="model", fix="run causal checks on a decoder (a causal LM)")
    config = getattr(loaded.model, "config", None)
    cap = getattr(config, "final_logit_softcapping", None)
    head = loaded.head
    if head is None:
        tied = _tied_embeddings(loaded)
        if tied is None:
            raise ModelError(f"{loaded.name}: its LM head is not tied to the input embeddings and its provider "
                             "loaded the base model only", field="model",
                             fix="load the model through a provider that keeps its head (LoadedModel.from_module "
                                 "of the XForCausalLM), or use a model with tied embeddings")
        weight = tied.weight
        assert isinstance(weight, torch.Tensor)

        def tied_head(hidden: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.linear(hidden, weight)
        project: Head = tied_head
    else:
        project = head

    def logits(hidden: torch.Tensor) -> torch.Tensor:
        out = project(hidden)
        if cap:  # Gemma 2's soft-capping: cap * tanh(logits / cap)
            out = torch.tanh(out / float(cap)) * float(cap)
        return out.float()

    return logits
