"""Loaded models, their hook sites, and activation capture.

A model provider (a `register_models` plugin) returns a `LoadedModel`: the *base* transformer
module (no LM head), a fast tokenizer with offset mapping, and where the hook sites are.

Hook sites are resolved from the module tree, not from the model's name: a `Layout` says where
the list of blocks is and, inside a block, which module is the MLP output projection and which is
the attention output projection. Three sites exist:

- ``mlp``:   the INPUT of the MLP's output (down) projection, i.e. the neurons after the
             nonlinearity and gating (llama ``mlp.down_proj``, gpt_neox ``mlp.dense_4h_to_h``,
             gpt2 ``mlp.c_proj``, bert ``output.dense``);
- ``resid``: the residual stream after each block (the block's output tensor);
- ``attn``:  the OUTPUT of the attention output projection (llama ``self_attn.o_proj``,
             gpt_neox ``attention.dense``, gpt2 ``attn.c_proj``, bert ``attention.output.dense``).

`capture` runs one forward pass that collects exactly the requested (site, layer) tensors and
stops right after the last block it needs, so later blocks, the final norm and the head never run.

This module imports no plugin; `resolve_model` / `load_model` look providers up in the registry.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import torch
from torch import nn

from .errors import ModelError
from .paths import cache_dir, keep_hub_in_cache

SITES: tuple[str, ...] = ("mlp", "resid", "attn")


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """Where the hook sites live in one architecture family's module tree.

    Paths are dotted attribute paths (as in `nn.Module.get_submodule`): `blocks` from the base
    module to the `nn.ModuleList` of blocks, `mlp` and `attn` from one block to its MLP output
    projection (whose *input* is hooked) and its attention output projection (whose *output* is
    hooked). `causal` is the default for the family (a config's `is_decoder` can override it).
    """

    name: str
    blocks: str
    mlp: str
    attn: str
    causal: bool = True


# Order matters only when two layouts match the same tree; the first match wins.
LAYOUTS: list[Layout] = [
    # llama, mistral, qwen2/3, gemma/gemma2/gemma3, phi3, olmo, smollm: gated MLP + o_proj
    Layout("llama-like", blocks="layers", mlp="mlp.down_proj", attn="self_attn.o_proj"),
    Layout("gpt_neox", blocks="layers", mlp="mlp.dense_4h_to_h", attn="attention.dense"),
    Layout("gpt2", blocks="h", mlp="mlp.c_proj", attn="attn.c_proj"),
    # bert, roberta, electra, ... (BertLayer: intermediate -> output.dense)
    Layout("bert", blocks="encoder.layer", mlp="output.dense", attn="attention.output.dense", causal=False),
]


def register_layout(layout: Layout, *, first: bool = True) -> None:
    """Teach probebank a new architecture family (call it from a `register_models` plugin).

    `first=True` puts it ahead of the built-in layouts so it wins when several match.
    """
    if layout in LAYOUTS:
        return
    if first:
        LAYOUTS.insert(0, layout)
    else:
        LAYOUTS.append(layout)


def _get(module: nn.Module, path: str) -> nn.Module | None:
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


def _describe_tree(base: nn.Module) -> str:
    """A short description of a module tree for error messages: its class and its block lists."""
    lists = []
    for name, mod in base.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0:
            child = mod[0]
            kids = ", ".join(f"{n}: {type(c).__name__}" for n, c in list(child.named_children())[:8])
            lists.append(f"'{name}' = {len(mod)} x {type(child).__name__}({kids})")
    return f"{type(base).__name__} with block lists: " + ("; ".join(lists[:3]) if lists else "none")


def resolve_layout(base: nn.Module) -> Layout:
    """The first layout whose block list and site modules all exist in `base`'s module tree."""
    for layout in LAYOUTS:
        blocks = _get(base, layout.blocks)
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            continue
        if all(_get(b, layout.mlp) is not None and _get(b, layout.attn) is not None for b in blocks):
            return layout
    raise ModelError(
        f"unknown architecture: no known hook-site layout matches {_describe_tree(base)}",
        fix="add a family with probebank.models.register_layout(Layout(name=..., blocks='path.to.ModuleList', "
            "mlp='path.in.block.to.mlp_out_proj', attn='path.in.block.to.attn_out_proj')) from a "
            "register_models plugin (known: " + ", ".join(layout.name for layout in LAYOUTS) + ")")


def base_module(model: nn.Module) -> nn.Module:
    """The base transformer of a model with or without a head (LlamaForCausalLM -> .model, ...).

    Multimodal wrappers (e.g. Gemma3ForConditionalGeneration) keep their text tower in
    `language_model`; that tower is returned.
    """
    base = getattr(model, "base_model", model)
    if not isinstance(base, nn.Module):
        base = model
    lm = getattr(base, "language_model", None)
    if isinstance(lm, nn.Module):
        base = lm
    return base


def _in_features(mod: nn.Module) -> int:
    if isinstance(mod, nn.Linear):
        return mod.in_features
    if hasattr(mod, "nx") and hasattr(mod, "nf"):  # transformers' Conv1D (gpt2): weight is (nx, nf)
        return int(mod.nx)
    weight = getattr(mod, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[1])
    raise ModelError(f"cannot tell the input width of {type(mod).__name__}")


def _out_features(mod: nn.Module) -> int:
    if isinstance(mod, nn.Linear):
        return mod.out_features
    if hasattr(mod, "nx") and hasattr(mod, "nf"):
        return int(mod.nf)
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


# --------------------------------------------------------------------------- LoadedModel


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

    def __post_init__(self) -> None:
        if self.layout is None:
            self.layout = resolve_layout(self.model)
        self.blocks = list(self.model.get_submodule(self.layout.blocks))[: self.n_layers]
        self.model.eval()  # dropout off; capture never trains

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_module(cls, name: str, model: nn.Module, tokenizer: Any, *, revision: str,
                    notes: str | None = None) -> "LoadedModel":
        """Wrap any HF model (with or without a head): find its base module and hook sites."""
        base = base_module(model)
        layout = resolve_layout(base)
        config = getattr(base, "config", None)
        blocks = base.get_submodule(layout.blocks)
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
                   layout=layout)

    # -- helpers ----------------------------------------------------------------------

    def site_module(self, site: str, layer: int) -> nn.Module:
        """The module hooked for (site, layer): the block for resid, the projection otherwise."""
        layer = self.check_layer(layer)
        _check_site(site)
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
        _check_site(site)
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

    def to(self, dtype: str | torch.dtype) -> "LoadedModel":
        """Cast the weights in place (e.g. "bfloat16"); fp32 is the fast path on CPU."""
        torch_dtype = _torch_dtype(dtype)
        self.model.to(torch_dtype)
        self.dtype = str(torch_dtype).removeprefix("torch.")
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


def _check_site(site: str) -> None:
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


def _torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype '{dtype}'", field="dtype", fix="use float32, bfloat16 or float16")
    return value


# --------------------------------------------------------------------------- capture


class _StopForward(Exception):
    """Raised from a hook on the last needed block to end the forward pass early; carries its output."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


@functools.lru_cache(maxsize=64)
def _forward_params(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def _forward_kwargs(loaded: LoadedModel, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor | None) -> dict[str, Any]:
    params = _forward_params(type(loaded.model))
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "use_cache" in params:
        kwargs["use_cache"] = False  # a KV cache is pure waste for one forward pass
    if attention_mask is not None and loaded.causal and "position_ids" in params:
        # Positions count real tokens only, so left-padded rows get the same positions as unpadded
        # ones (most decoders default to arange(seq), which is only right for right padding).
        kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
    return kwargs


def _block_output(output: Any) -> torch.Tensor:
    # transformers 5 decoder layers return a tensor; older/other blocks return (hidden, ...).
    return output if isinstance(output, torch.Tensor) else output[0]


def _run(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
         stop_layer: int | None, register: Callable[[list[Any]], None], grad_mode: str = "inference") -> Any:
    """Forward pass with hooks installed by `register(handles)`, stopping after block `stop_layer`.

    Returns the model output, or the stop block's output tensor when stopped early. Hooks are
    removed in all cases.
    """
    handles: list[Any] = []
    stopped = False

    def stop_hook(module: nn.Module, args: Any, output: Any) -> None:
        raise _StopForward(_block_output(output))

    ctx = torch.inference_mode() if grad_mode == "inference" else torch.no_grad()
    try:
        register(handles)
        if stop_layer is not None:
            # Registered last, so the block's own capture hooks (if any) run before it.
            handles.append(loaded.blocks[stop_layer].register_forward_hook(stop_hook))
        with ctx:
            try:
                out = loaded.model(**_forward_kwargs(loaded, input_ids, attention_mask))
            except _StopForward as stop:
                stopped = True
                out = stop.output
    finally:
        for h in handles:
            h.remove()
    if stop_layer is not None and not stopped:
        raise ModelError(f"{loaded.name}: the forward pass did not stop after layer {stop_layer} "
                         "(the model swallowed the stop signal or never ran that block)")
    return out


def capture(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
            sites: Sequence[str] = ("mlp",), layers: Iterable[int] | None = None, *,
            reduce: Callable[[str, int, torch.Tensor], Any] | None = None,
            verify_inplace: bool = False) -> dict[tuple[str, int], Any]:
    """One forward pass returning {(site, layer): Tensor[batch, seq, width]} for every requested pair.

    The pass stops right after the last requested block (later blocks, the final norm and any head
    never run). Tensors are the model's own (no copy); under inference mode they are inference
    tensors: cast or copy them (e.g. `.to(torch.float16)`) before modifying them in place.

    `reduce(site, layer, tensor)`, if given, is applied inside the hook and its result stored
    instead of the tensor, e.g. to gather target positions or cast to fp16 on the fly so memory
    holds one layer's full activations at a time.

    `verify_inplace=True` (a test aid) runs under no_grad instead of inference mode and checks
    that no captured tensor was modified in place later in the pass.
    """
    sites = list(dict.fromkeys(sites))
    for site in sites:
        _check_site(site)
    wanted = sorted({loaded.check_layer(i) for i in (range(loaded.n_layers) if layers is None else layers)})
    if not wanted or not sites:
        return {}
    out: dict[tuple[str, int], Any] = {}
    versions: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}

    def store(key: tuple[str, int], tensor: torch.Tensor) -> None:
        if key in out:
            raise ModelError(f"{loaded.name}: site {key[0]} of layer {key[1]} ran twice in one forward pass "
                             "(shared weights?): capture needs each hooked module to run once")
        if verify_inplace:
            versions[key] = (tensor, tensor._version)
        out[key] = tensor if reduce is None else reduce(key[0], key[1], tensor)

    def make_pre_hook(key: tuple[str, int]) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            store(key, args[0] if args else next(iter(kwargs.values())))
        return hook

    def make_out_hook(key: tuple[str, int], block_output: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            store(key, _block_output(output) if block_output else output)
        return hook

    def register(handles: list[Any]) -> None:
        for layer in wanted:
            for site in sites:
                key = (site, layer)
                mod = loaded.site_module(site, layer)
                if site == "mlp":  # the projection's input: neurons after nonlinearity and gating
                    handles.append(mod.register_forward_pre_hook(make_pre_hook(key), with_kwargs=True))
                else:
                    handles.append(mod.register_forward_hook(make_out_hook(key, site == "resid")))

    _run(loaded, input_ids, attention_mask, stop_layer=wanted[-1], register=register,
         grad_mode="no_grad" if verify_inplace else "inference")
    missing = [k for k in ((s, i) for i in wanted for s in sites) if k not in out]
    if missing:
        raise ModelError(f"{loaded.name}: hooks for {missing} never fired during the forward pass",
                         fix="the layout's module paths do not match how this model computes its blocks")
    for key, (tensor, version) in versions.items():
        if tensor._version != version:
            raise ModelError(f"{loaded.name}: the {key[0]} activation of layer {key[1]} was modified in place "
                             "after it was captured; capture must clone it for this family")
    return out


def bare_forward(loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 last_layer: int | None = None) -> torch.Tensor:
    """The same base-model forward with no capture hooks (the benchmark baseline).

    With `last_layer`, the pass stops after that block exactly as `capture` does (so the two
    compare like with like) and returns that block's output (= resid at last_layer). Without it,
    the whole base model runs, final norm included, and its last hidden state is returned.
    """
    stop = None if last_layer is None else loaded.check_layer(last_layer)
    out = _run(loaded, input_ids, attention_mask, stop_layer=stop, register=lambda handles: None)
    if isinstance(out, torch.Tensor):
        return out
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


# --------------------------------------------------------------------------- runtime, hashing


def runtime_threads() -> int:
    """Threads for the forward passes: OMP_NUM_THREADS when set to a positive integer (the user's
    choice, e.g. on a shared machine), else every core (torch's default may be fewer)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def prepare_runtime() -> None:
    """Keep hub files in our cache and set torch's thread count (runtime_threads)."""
    keep_hub_in_cache()
    n = runtime_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime) so large weights hash once."""
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir("models", "hashes") / (hashlib.sha1(str(path).encode()).hexdigest()[:20] + ".json")
    stamp = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if {k: saved.get(k) for k in stamp} == stamp and len(saved.get("sha256", "")) == 64:
            return str(saved["sha256"])
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**stamp, "sha256": digest}), encoding="utf-8")
    tmp.replace(memo)
    return digest


# --------------------------------------------------------------------------- providers


class ModelProvider(Protocol):
    """What a `register_models` plugin registers: `describe` and `load(spec, dtype=...)`."""

    describe: str

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel: ...


def resolve_model(name_or_path: str, include: Sequence[Path] = ()) -> tuple[ModelProvider, str]:
    """Find the provider for a model name or path; return (provider, spec for provider.load).

    Rules, in order: an exact registered name ("smollm2-135m", "default"); "PROVIDER:SPEC" with a
    registered provider ("gguf:/x/m.gguf", "hf:org/id", "tiny:llama"); a path ending in .gguf
    (gguf); an existing folder (hf).
    """
    from .plugins import get_registered  # the registry, not a plugin module

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


def load_model(name_or_path: str, *, dtype: str = "float32", include: Sequence[Path] = ()) -> LoadedModel:
    """Resolve a model name or path to its provider and load it."""
    provider, spec = resolve_model(name_or_path, include)
    prepare_runtime()
    return provider.load(spec, dtype=dtype)
