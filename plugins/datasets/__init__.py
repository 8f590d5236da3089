"""First-party dataset builders, one module per category; each module exposes BUILDERS = {name: build}."""
from __future__ import annotations

import importlib

from probebank.hookspecs import hookimpl

CATEGORY_MODULES = ["language", "code", "syntax", "factual", "bias", "safety", "position", "lexical"]


@hookimpl
def register_datasets(register):
    for mod_name in CATEGORY_MODULES:
        module = importlib.import_module(f"{__name__}.{mod_name}")
        for name, build in module.BUILDERS.items():
            register(name, build)
