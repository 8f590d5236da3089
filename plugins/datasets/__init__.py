"""First-party dataset builders. Every module of this package that has a `BUILDERS = {name: build}` dict
registers them; modules without one are shared helpers.

Modules are found with pkgutil (in name order), so a new dataset is a new module
(`probebank new` writes `<snake_name>.py`): no list to edit, and no other module changes.
"""
from __future__ import annotations

import importlib
import pkgutil

from probebank.contracts import RegisterDataset
from probebank.hookspecs import hookimpl


def builder_modules() -> list[str]:
    """Dotted names of this package's modules, sorted (pkgutil yields each name once, first path entry wins)."""
    return sorted(f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.ispkg)


@hookimpl
def register_datasets(register: RegisterDataset) -> None:
    for mod_name in builder_modules():
        module = importlib.import_module(mod_name)
        for name, build in getattr(module, "BUILDERS", {}).items():
            register(name, build)
