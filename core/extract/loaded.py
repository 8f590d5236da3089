"""A loaded model: the base transformer (no LM head), its tokenizer, its hook sites and provenance.

Extraction never runs a head. A model built with one (the tiny models, any `from_module` of an
XForCausalLM) keeps a reference to it in `head`, unused by capture, so causal checks
(probebank.causal) can run the full model; tied heads are found from the input embeddings there.

A model provider (a `register_models` plugin) returns a `LoadedModel`. Three sites exist:

- ``mlp``:   the INPUT of the MLP's output (down) projection, i.e. the neurons after the
             nonlinearity and gating (llama ``mlp.down_proj``, gpt_neox ``mlp.dense_4h_to_h``,
             gpt2 ``mlp.c_proj``, bert ``output.dense``);
- ``resid``: the residual stream after each block (the block's output tensor);
- ``attn``:  the OUTPUT of the attention output projection (llama ``self_attn.o_proj``,
             gpt_neox ``attention.dense``, gpt2 ``attn.c_proj``, bert ``attention.output.dense``).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probebank.contracts import Layout, ModelIdentity
from probebank.errors import ModelError
from probebank.extract.layouts import base_module, block_list, resolve_layout

SITES: tuple[str, ...] = ("mlp", "resid", "attn")


def _in_features(mod: nn.Module) -> int:
    if isinstance(mod, nn.Linear):
        return mod.in_features
    if hasattr(mod, "nx") and hasattr(mod, "nf"):  # transformers' Conv1D (gpt2): weight is (nx, nf)
        return int(mod.nx)  # type: ignore[arg-type]
    weight = getattr(mod, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[1])
    raise ModelError(f"cannot tell the input width of {type(mod).__name__}")


def _out_features(mod: nn.Module) -> int:
    if isinstance(mod, nn.Linear):
        return mod.out_features
    if hasattr(mod, "nx") and hasattr(mod, "nf"):
        return int(mod.nf)  # type: ignore[arg-type]
    weight = getattr(mod, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[0])
    raise ModelError(f"cannot tell the output width of {type(mod).__name__}")


def _family(config: Any, layout: Layout) -> str:
    """Family label from the config's model_type (gemma3_text -> gemma3), else the layout's name."""
    model_type = str(getattr(config, "model_type", "") or "")
    if model_type.endswith("_text"):
        model_type = model_type[: -len("_text")]
    return model_type or layout.name


@dataclass
class LoadedModel:
    """A base transformer ready for capture, with its tokenizer and provenance.

    Build one with `LoadedModel.from_module`, which resolves the layout and fills in family,
    causal, n_layers, widths and max_positions from the module tree and config.
    """

    name: str
    model: nn.Module = field(repr=False)
    tokenizer: Any = field(repr=False)
    family: str
    causal: bool
    n_layers: int
    widths: dict[str, int]
    revision: str
    dtype: str
    notes: str | None = None
    max_positions: int = 512
    layout: Layout | None = field(default=None, repr=False)
    blocks: list[nn.Module] = field(default_factory=list, init=False, repr=False)
    # set by `deferred`: loads the full model on first use of the weights (ensure_weights)
    weights: Callable[[], LoadedModel] | None = field(default=None, repr=False)
    device: str | torch.device | None = field(default=None, repr=False)  # set by to_device
    head: nn.Module | None = field(default=None, repr=False)  # the LM head of a model built with one (not run by capture)
    _tokenizer_loader: Callable[[], Any] | None = field(default=None, init=False, repr=False)  # set by `deferred`

    def __post_init__(self) -> None:
        if self.weights is not None:  # deferred: `model` is an empty placeholder until ensure_weights
            return
        if self.layout is None:
            self.layout = resolve_layout(self.model)
        self.blocks = list(block_list(self.model, self.layout))[: self.n_layers]
        self.model.eval()  # dropout off; capture never trains

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_module(cls, name: str, model: nn.Module, tokenizer: Any, *, revision: str,
                    notes: str | None = None) -> LoadedModel:
        """Wrap any HF model (with or without a head): find its base module and hook sites."""
        base = base_module(model)
        get_head = getattr(model, "get_output_embeddings", None) if model is not base else None
        head = get_head() if callable(get_head) else None
        layout = resolve_layout(base)
        config = getattr(base, "config", None)
        blocks = block_list(base, layout)
        n_layers = min(len(blocks), int(getattr(config, "num_hidden_layers", len(blocks)) or len(blocks)))
        block = blocks[0]
        mlp, attn = block.get_submodule(layout.mlp), block.get_submodule(layout.attn)
        resid = int(getattr(config, "hidden_size", 0) or _out_features(attn))
        causal = layout.causal or bool(getattr(config, "is_decoder", False))
        if getattr(config, "use_bidirectional_attention", False):
            causal = False
        max_pos = (getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
                   or getattr(tokenizer, "model_max_length", None) or 512)
        dtype = str(next(base.parameters()).dtype).removeprefix("torch.")
        _check_tokenizer(name, tokenizer)
        vocab = getattr(config, "vocab_size", None)
        if vocab and len(tokenizer) > vocab:
            warnings.warn(f"{name}: the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only "
                          f"{vocab}; ids >= {vocab} will fail in the embedding", stacklevel=2)
        return cls(name=name, model=base, tokenizer=tokenizer, family=_family(config, layout), causal=causal,
                   n_layers=n_layers, widths={"mlp": _in_features(mlp), "resid": resid, "attn": _out_features(attn)},
                   revision=revision, dtype=dtype, notes=notes, max_positions=int(min(max_pos, 10**7)),
                   layout=layout, head=head if isinstance(head, nn.Module) else None)

    @classmethod
    def deferred(cls, identity: ModelIdentity, tokenizer: Callable[[], Any], shapes: dict[str, Any],
                 load: Callable[[], LoadedModel]) -> LoadedModel:
        """Identity and the shapes an earlier load remembered (probebank.extract.describe) now; the tokenizer
        on first use of `.tokenizer` (alignment, a batch) and `load()` on the first forward pass (capture
        calls ensure_weights). A repeated run whose activations are all stored needs neither."""
        loaded = cls(name=identity.name, model=nn.Module(), tokenizer=None, family=shapes["family"],
                     causal=bool(shapes["causal"]), n_layers=int(shapes["n_layers"]), widths=dict(shapes["widths"]),
                     revision=identity.revision, dtype=identity.dtype, notes=identity.notes,
                     max_positions=int(shapes["max_positions"]), weights=load)
        del loaded.tokenizer  # so that __getattr__ loads it on first use
        loaded._tokenizer_loader = tokenizer
        return loaded

    def __getattr__(self, name: str) -> Any:
        """Only for a deferred tokenizer (attributes that exist never come here)."""
        loader = self.__dict__.get("_tokenizer_loader")
        if name != "tokenizer" or loader is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        tokenizer = loader()
        _check_tokenizer(self.name, tokenizer)
        self.tokenizer, self._tokenizer_loader = tokenizer, None
        return tokenizer

    @property
    def tokenizer_loaded(self) -> bool:
        return "tokenizer" in self.__dict__

    def to_device(self, device: str | torch.device) -> LoadedModel:
        """Move the weights to `device`; deferred weights go there when they load."""
        self.device = device
        if self.weights is None:
            self.model.to(device)
            if self.head is not None:
                self.head.to(device)
        return self

    @property
    def weights_loaded(self) -> bool:
        return self.weights is None

    def ensure_weights(self) -> None:
        """Load the deferred weights; the loaded model must be the one the identity and shapes described."""
        if self.weights is None:
            return
        full = self.weights()
        if (full.identity(), full.shapes()) != (self.identity(), self.shapes()):
            raise ModelError(f"{self.name}: the loaded model differs from the shapes remembered for it "
                             f"({full.shapes()} vs {self.shapes()})",
                             fix="delete the cache's models/shapes folder and run again")
        self.model, self.layout, self.blocks, self.weights = full.model, full.layout, full.blocks, None
        self.head = full.head
        if self.device is not None:
            self.to_device(self.device)

    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.name, self.revision, self.dtype, self.notes, self.n_layers)

    def shapes(self) -> dict[str, Any]:
        """What open_model needs to know of a model before loading it (probebank.extract.describe.SHAPE_FIELDS)."""
        return {"family": self.family, "causal": self.causal, "n_layers": self.n_layers, "widths": dict(self.widths),
                "max_positions": self.max_positions}

    # -- helpers ----------------------------------------------------------------------

    def site_module(self, site: str, layer: int) -> nn.Module:
        """The module hooked for (site, layer): the block for resid, the projection otherwise."""
        self.ensure_weights()
        layer = self.check_layer(layer)
        check_site(site)
        block = self.blocks[layer]
        assert self.layout is not None
        if site == "resid":
            return block
        return block.get_submodule(self.layout.mlp if site == "mlp" else self.layout.attn)

    def check_layer(self, layer: int) -> int:
        """Normalise a layer index (negative counts from the end) and check its range."""
        if not -self.n_layers <= layer < self.n_layers:
            raise ModelError(f"layer {layer} is out of range for {self.name} ({self.n_layers} layers: 0..{self.n_layers - 1})",
                             field="layers", fix=f"pick layers in 0..{self.n_layers - 1} (or negative from the end)")
        return layer % self.n_layers

    def width(self, site: str) -> int:
        check_site(site)
        return self.widths[site]

    def encode(self, texts: Sequence[str], max_length: int | None = None, padding: bool | str = True,
               padding_side: str | None = None, trim_offsets: bool = True) -> Any:
        """Tokenise a batch into torch tensors with `offset_mapping` (char spans of each token).

        Padding follows the tokenizer (right for most; `capture` gives left-padded rows the right
        position ids too). Truncation at max_length (default: max_positions).

        `trim_offsets`: byte-level BPE tokenizers disagree on whether the span of " world"
        includes its leading space (HF gpt2 trims it, tokenizers rebuilt from GGUF such as
        SmolLM2's do not). With trimming on, every token's span starts at its first non-space
        character (all-space tokens keep theirs), so char-span alignment is the same everywhere.
        """
        texts = list(texts)
        kwargs: dict[str, Any] = {}
        if padding_side is not None:
            kwargs["padding_side"] = padding_side
        enc = self.tokenizer(texts, return_tensors="pt", padding=padding, truncation=True,
                             max_length=max_length or self.max_positions, return_offsets_mapping=True, **kwargs)
        if trim_offsets:
            enc["offset_mapping"] = _trim_leading_space(texts, enc["offset_mapping"])
        return enc

    def provenance(self) -> dict[str, Any]:
        """The fields a ResultRecord's provenance needs about the model."""
        return {"model": self.name, "model_revision": self.revision, "model_dtype": self.dtype,
                "model_notes": self.notes}

    def to(self, dtype: str | torch.dtype) -> LoadedModel:
        """Cast the weights in place (e.g. "bfloat16"); fp32 is the fast path on CPU."""
        self.ensure_weights()
        wanted = torch_dtype(dtype)
        self.model.to(wanted)
        if self.head is not None:
            self.head.to(wanted)
        self.dtype = str(wanted).removeprefix("torch.")
        return self


def _trim_leading_space(texts: Sequence[str], offsets: torch.Tensor) -> torch.Tensor:
    """Move each token's start past leading whitespace unless the token is all whitespace."""
    rows = offsets.tolist()
    changed = False
    for text, row in zip(texts, rows):
        for pair in row:
            start, end = pair
            if end > start and text[start].isspace() and not text[start:end].isspace():
                while text[start].isspace():
                    start += 1
                pair[0] = start
                changed = True
    return torch.tensor(rows, dtype=offsets.dtype) if changed else offsets


def check_site(site: str) -> None:
    if site not in SITES:
        raise ModelError(f"unknown site '{site}'", field="sites", fix=f"use one of: {', '.join(SITES)}")


def _check_tokenizer(name: str, tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"the tokenizer of {name} is not a fast tokenizer (no offset mapping)",
                         fix="provide a tokenizer.json (tokenizers library) next to the model")
    if tokenizer.pad_token is None:
        # Causal LMs often have no pad token; any id works since padded positions are masked out.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise ModelError(f"the tokenizer of {name} has no pad, eos or unk token to pad batches with")


def torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype '{dtype}'", field="dtype", fix="use float32, bfloat16 or float16")
    return value
