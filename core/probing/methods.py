"""The built-in selection methods by name, and turning a name or a Selector into a fresh, configured selector.

The plugin registry (probebank.plugins) is filled from `BUILTIN_METHODS` by the first-party methods
plugin; a run resolves names against the registry and hands Selector objects down, so nothing in
probing looks the registry up itself.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sklearn.base import clone

from probebank.probing.exact.selector import MilpSelector
from probebank.probing.selection import Adaptive, FStat, L1Path, MeanDiff, MutualInfo, RandomUnits, Selector

BUILTIN_METHODS: dict[str, type[Selector]] = {
    "mean_diff": MeanDiff,
    "f_stat": FStat,
    "mutual_info": MutualInfo,
    "l1": L1Path,
    "adaptive": Adaptive,
    "random": RandomUnits,
    "milp": MilpSelector,  # exact k-sparse probes with a certificate
}


def get_selector(method: str | Selector, /, registry: Mapping[str, Callable[..., Any]] | None = None,
                 **params: Any) -> Selector:
    """A fresh selector: a clone of a given Selector, or the method of that name built with `params`.

    Names are looked up in `registry` (a run passes the plugin registry's methods), by default in
    BUILTIN_METHODS.
    """
    if isinstance(method, Selector):
        sel = clone(method)
        return sel.set_params(**params) if params else sel
    if not isinstance(method, str):
        raise TypeError(f"method must be a registered name or a Selector, got {type(method).__name__}")
    table = BUILTIN_METHODS if registry is None else registry
    if method not in table:
        raise ValueError(f"unknown selection method {method!r}; registered: {', '.join(sorted(table))}")
    sel = table[method](**params)
    if not (hasattr(sel, "fit") and hasattr(sel, "get_params")):
        raise TypeError(f"method {method!r} built a {type(sel).__name__}, which is not a scikit-learn selector "
                        "(fit(X, y) setting supports_)")
    return sel


def method_name(method: str | Selector) -> str:
    """The registry name of a built-in selector class (else its class name)."""
    if isinstance(method, str):
        return method
    for name, cls in BUILTIN_METHODS.items():
        if type(method) is cls:
            return name
    return type(method).__name__
