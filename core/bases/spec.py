"""A basis as the command line names it (`pca`, `sae-topk:k=16:expansion=2`, `sae:/path/to/folder`),
and turning a spec into a configured, checked basis."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from probebank.contracts import Basis
from probebank.errors import BasisError
from probebank.specs import Spec, parse_specs

BasisSpec = Spec  # a `--bases` entry (probebank.specs)


def parse_spec(spec: str) -> Spec:
    """'pca' | 'sae-topk:k=16:expansion=2' | 'sae:/path/to/folder'."""
    return parse_specs([spec], option="--bases", example="identity,pca,sae-topk:k=16")[0]


def settings_of(factory: Callable[..., Any]) -> list[inspect.Parameter]:
    """The keyword settings a basis factory (class) takes, in order."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values() if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]


def make_basis(spec: BasisSpec, factories: Mapping[str, Callable[..., Basis]], *, random_state: int = 0) -> Basis:
    """The basis a spec names, built with its settings and checked (`check_params`), not yet fitted.

    `random_state` is the run's seed, used unless the spec sets its own. Everything here is cheap
    (no data, no model): a run calls it for every spec before the model loads, so a bad name or
    setting exits 2 before anything is written.
    """
    if spec.name not in factories:
        raise BasisError(f"unknown basis '{spec.name}'", field="--bases",
                         fix=f"use one of: {', '.join(sorted(factories))} (`probebank bases` lists them)")
    factory = factories[spec.name]
    kwargs = spec.kwargs()
    params = settings_of(factory)
    names = [p.name for p in params]
    unknown = [k for k in kwargs if k not in names]
    takes = ", ".join(names) or "no settings"
    if unknown and not _takes_any(factory):
        what = "takes no folder path" if unknown == ["path"] else f"has no setting {', '.join(map(repr, unknown))}"
        raise BasisError(f"basis '{spec.name}' {what}", field="--bases",
                         fix=f"'{spec.name}' takes: {takes} (`probebank bases` lists them)")
    if "random_state" in names and "random_state" not in kwargs:
        kwargs["random_state"] = random_state
    try:
        basis = factory(**kwargs)
    except TypeError as exc:
        raise BasisError(f"basis '{spec.name}' does not take these settings: {exc}", field="--bases",
                         fix=f"'{spec.name}' takes: {takes} (`probebank bases` lists them)") from None
    check = getattr(basis, "check_params", None)
    if callable(check):
        check()
    return basis


def _takes_any(factory: Callable[..., Any]) -> bool:
    try:
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return True
