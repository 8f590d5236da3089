"""A basis as the command line names it: `pca`, `sae-topk:k=16:expansion=2`, `sae:/path/to/folder`."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from probebank.errors import BasisError
from probebank.specs import Spec, parse_specs


@runtime_checkable
class Basis(Protocol):
    name: str
    trainable: bool

    def encode(self, X: np.ndarray) -> np.ndarray: ...


BasisSpec = Spec  # a `--bases` entry (probebank.specs)


def parse_spec(spec: str) -> Spec:
    """'pca' | 'sae-topk:k=16:expansion=2' | 'sae:/path/to/folder'."""
    return parse_specs([spec], option="--bases", example="identity,pca,sae-topk:k=16")[0]


def make_basis(spec: BasisSpec, factories: Mapping[str, Callable[..., Any]], *, width: int, seed: int = 0) -> Any:
    if spec.name not in factories:
        raise BasisError(f"unknown basis '{spec.name}'", field="--bases",
                         fix=f"use one of: {', '.join(sorted(factories))} (`probebank bases` lists them)")
    try:
        return factories[spec.name](width=width, seed=seed, **spec.kwargs())
    except TypeError as exc:
        raise BasisError(f"basis '{spec.name}' does not take these settings: {exc}", field="--bases",
                         fix=f"see `probebank bases` for the settings of '{spec.name}'") from None
