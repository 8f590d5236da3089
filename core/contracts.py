"""The contracts every layer speaks: what a builder yields, and what each kind of plugin provides.

Nothing here does work. `Example` is the dict a dataset builder yields; `Layout` says where a
model family keeps its hook sites; the Protocols say what a plugin registers through each hook
(probebank.hookspecs): a builder, a source fetcher, a model provider, a selection method, a
basis. Types that name objects of a higher layer (a card, a loaded model, the build context) are
imported for type checking only, so this module imports nothing of probebank at run time and a
plugin module that imports it stays cheap to load.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypedDict

from typing_extensions import Required

if TYPE_CHECKING:
    import numpy as np

    from probebank.data.examples import BuildContext
    from probebank.data.schema import DatasetCard, SourcePin
    from probebank.extract.loaded import LoadedModel

Site = Literal["mlp", "resid", "attn"]
SITES: tuple[Site, ...] = ("mlp", "resid", "attn")

# A label as a builder gives it: a class name (or class index) of the card, or a number for a
# regression card.
Label = str | int | float


class Target(TypedDict, total=False):
    """A target span with its own label (per-token data, e.g. part of speech per word)."""

    start: Required[int]   # first character of the span
    end: Required[int]     # one past its last character
    label: Label


# A target as a builder may give it: (start, end), (start, end, label) or a Target dict.
TargetSpan = tuple[int, int] | tuple[int, int, Label] | Target


class Example(TypedDict, total=False):
    """One text a builder yields (probebank.data.examples normalises and validates it).

    `targets` are character spans of `text`; leave them out when the card's target rule is
    `all` or `after`. `label` is the example's class name, or its value for a regression card;
    leave it out when every target has its own label. Examples sharing a `group` stay on one side
    of the train/test split. `id` defaults to <dataset>-<index>.
    """

    text: Required[str]
    targets: list[TargetSpan]
    label: Label
    group: str
    id: str


Builder = Callable[["BuildContext"], Iterable[Example]]
"""A dataset builder: the card's pinned sources and parameters in, examples out."""


class SourceFetcher(Protocol):
    """A source kind: fetch (or find in the cache) the pinned input and return its local folder or file."""

    def __call__(self, pin: SourcePin, card_dir: Path | None = None, /) -> Path: ...


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


@dataclass(frozen=True)
class ModelIdentity:
    """What a model is, known without loading it or importing torch: the fields of a record's provenance
    and of an activation store's key, and the layer count when a config.json or GGUF header says it.
    `complete=False`: only `n_layers` can be trusted yet (e.g. a GGUF whose notes its conversion writes)."""

    name: str
    revision: str
    dtype: str
    notes: str | None
    n_layers: int | None = None
    complete: bool = True


class ModelProvider(Protocol):
    """A model provider: `load(spec, dtype=...)` returns the base transformer with its tokenizer.

    `describe` is one line for `probebank` listings. A provider may also offer
    `load_tokenizer(spec) -> (tokenizer, revision)`, the tokenizer without the weights (the quality
    gates need only that), and `identity(spec, dtype=...) -> ModelIdentity | None`, read without torch:
    with both, a run checks `--layers` before anything loads and a repeated run whose activations are
    all stored never loads the weights (probebank.extract.providers.open_model).
    """

    @property
    def describe(self) -> str: ...  # a class attribute is fine

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel: ...


class SelectionMethod(Protocol):
    """A k-sparse selection method: a scikit-learn estimator (probebank.probing.selection.Selector).

    Its settings are constructor parameters, among them `ks` (the k grid) and `random_state`;
    `fit(X, y)` sets `supports_`, the selected unit indices per k, best first.
    """

    supports_: dict[int, np.ndarray]

    def fit(self, X: Any, y: Any) -> SelectionMethod: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> SelectionMethod: ...


class Basis(Protocol):
    """An unsupervised basis: a scikit-learn transformer from a layer's activations to codes.

    Settings are constructor keywords, stored unchanged (`random_state` where the basis is random;
    a run passes its seed unless the spec sets one), so `get_params`, `clone` and a Pipeline work.
    `fit(X)` learns from activations [n_rows, width], returns self and sets fitted attributes with a
    trailing underscore (`n_features_in_` always); a basis with `trainable = False` needs no data
    and is fitted on an empty array of the layer's width. `transform(X)` gives the codes and, where
    the basis decodes, `inverse_transform(codes)` the reconstruction. A trainable basis also has
    `get_state()` / `set_state(arrays)` (its fitted arrays by name: the basis store saves them as
    safetensors, never pickle), and may have `check_params()`, which a run calls before the model
    loads to reject bad settings. probebank.bases.base.BasisEstimator provides all of this.
    """

    name: ClassVar[str]
    trainable: ClassVar[bool]

    def fit(self, X: Any, y: Any = None) -> Basis: ...

    def transform(self, X: Any) -> np.ndarray: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


class RegisterDataset(Protocol):
    """`register(name, build, card=None)`: `card` (a DatasetCard, or the path of a card.yaml) adds a
    dataset that registry.yaml does not list."""

    def __call__(self, name: str, build: Builder, card: DatasetCard | str | Path | None = None) -> None: ...


RegisterSource = Callable[[str, SourceFetcher], None]
RegisterModel = Callable[[str, ModelProvider], None]
RegisterMethod = Callable[[str, Callable[..., SelectionMethod]], None]
RegisterBasis = Callable[[str, Callable[..., Basis]], None]
RegisterLayout = Callable[[Layout], None]

