"""One pluggy PluginManager: built-ins, entry points of group `probebank`, then --include folders.

Built-in plugins are registered through the same hooks as third-party ones; the core never
imports a plugin module by name except the list in probebank_plugins.BUILTIN_MODULES.
Later registrations of a name override earlier ones with a warning.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "probebank"


@dataclass
class Registered:
    """Everything the plugins registered, by kind then name."""

    builders: dict[str, Callable[..., Any]] = field(default_factory=dict)
    cards: list[tuple[Any, str]] = field(default_factory=list)  # (DatasetCard | Path, origin)
    sources: dict[str, Callable[..., Any]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Callable[..., Any]] = field(default_factory=dict)
    bases: dict[str, Callable[..., Any]] = field(default_factory=dict)
    include_dirs: list[Path] = field(default_factory=list)


def _registrar(table: dict[str, Any], kind: str, origin: Callable[[], str]) -> Callable[..., None]:
    def register(name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"{origin()} registered a {kind} without a name",
                              fix=f"call register('name', obj) in register_{kind}s")
        if name in table:
            warnings.warn(f"{origin()} overrides the {kind} '{name}' registered earlier", stacklevel=3)
        table[name] = obj
    return register


def _load_module_from_file(path: Path) -> Any:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    mod_name = f"probebank_include_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise PluginError("cannot import plugin module", file=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken plugin must say which file broke
        raise PluginError(f"plugin module failed to import: {exc!r}", file=path,
                          fix="run `python {}` to see the full error".format(path)) from exc
    return module


def build_plugin_manager(include: Sequence[Path] = (), builtins: bool = True,
                         entry_points: bool | None = None) -> tuple[pluggy.PluginManager, list[Path]]:
    pm = pluggy.PluginManager("probebank")
    pm.add_hookspecs(hookspecs)
    if builtins:
        import probebank_plugins
        for name in probebank_plugins.BUILTIN_MODULES:
            pm.register(importlib.import_module(name), name=name)
    if entry_points is None:
        entry_points = os.environ.get("PROBEBANK_NO_ENTRY_POINTS", "") in ("", "0")
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    include_dirs: list[Path] = []
    for folder in include:
        folder = Path(folder).resolve()
        if not folder.is_dir():
            raise PluginError("--include path is not a folder", file=folder,
                              fix="pass a folder holding card.yaml files and plugin .py modules")
        include_dirs.append(folder)
        for py in sorted(folder.rglob("*.py")):
            real = py.resolve()
            if folder not in real.parents:
                raise PluginError("plugin module links outside its include folder", file=py)
            pm.register(_load_module_from_file(real), name=f"include:{real}")
    return pm, include_dirs


_CACHE: dict[tuple, Registered] = {}


def get_registered(include: Sequence[Path] = (), builtins: bool = True) -> Registered:
    """Run every register_* hook once (per include set) and return what was registered."""
    key = (tuple(str(Path(p).resolve()) for p in include), builtins)
    if key in _CACHE:
        return _CACHE[key]
    pm, include_dirs = build_plugin_manager(include, builtins)
    reg = Registered(include_dirs=include_dirs)
    # Call each implementation separately so an override warning can name the plugin.
    for hook_name, table, kind in (("register_sources", reg.sources, "source"),
                                   ("register_models", reg.models, "model"),
                                   ("register_methods", reg.methods, "method"),
                                   ("register_bases", reg.bases, "basis")):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():  # registration order
            impl.function(register=_registrar(table, kind, lambda i=impl: f"plugin {i.plugin_name}"))
    for impl in pm.hook.register_datasets.get_hookimpls():
        origin = f"plugin {impl.plugin_name}"
        builder_reg = _registrar(reg.builders, "dataset", lambda o=origin: o)

        def register(name: str, build: Callable[..., Any], card: Any = None, _o: str = origin,
                     _b: Callable[..., None] = builder_reg) -> None:
            _b(name, build)
            if card is not None:
                reg.cards.append((card, _o))
        impl.function(register=register)
    _CACHE[key] = reg
    return reg


def clear_plugin_cache() -> None:
    _CACHE.clear()
