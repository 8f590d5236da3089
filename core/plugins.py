"""One pluggy PluginManager: built-ins, entry points of group `probebank`, then --include folders.

Built-in plugins (`BUILTIN_PLUGINS`) are registered through the same hooks as third-party ones:
the core never imports a plugin module by name except through this list. pluggy does the calling;
it calls the most recently loaded plugin first, so the first registration of a name wins, which
makes a later-loaded plugin (an entry point over a built-in, an --include folder over both) win,
with a warning naming both.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from probebank import hookspecs
from probebank.contracts import Builder, Layout, ModelProvider, SourceFetcher
from probebank.errors import PluginError
from probebank.hashing import RuntimeCache

ENTRY_POINT_GROUP = "probebank"
BUILTIN_PLUGINS: tuple[str, ...] = (
    "probebank_plugins.sources",
    "probebank_plugins.models",
    "probebank_plugins.methods",
    "probebank_plugins.bases",
    "probebank_plugins.datasets",
)


class _Origins:
    """Human names of loaded plugin modules: 'plugin probebank_plugins.models', 'include /x/y.py', ..."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def of(self, obj: Any) -> str:
        """The plugin an object comes from (functions, classes and instances all carry __module__)."""
        module = str(getattr(obj, "__module__", None) or type(obj).__module__)
        return self.names.get(module, f"plugin {module}")


def _registrar(table: dict[str, Any], kind: str, origins: _Origins,
               winners: dict[tuple[str, str], str]) -> Callable[[str, Any], None]:
    def register(name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"{origins.of(obj)} registered a {kind} without a name",
                              fix=f"call register('name', obj) in register_{kind}s")
        if name in table:  # the earlier call came from a later-loaded plugin: that one wins
            warnings.warn(f"{winners[(kind, name)]} overrides the {kind} '{name}' registered by "
                          f"{origins.of(obj)}", stacklevel=2)
            return
        table[name] = obj
        winners[(kind, name)] = origins.of(obj)
    return register


def _load_module_from_file(path: Path) -> ModuleType:
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
                          fix=f"run `python {path}` to see the full error") from exc
    return module


def entry_points_enabled() -> bool:
    """PROBEBANK_NO_ENTRY_POINTS=1 loads only the built-ins and --include folders (tests use it)."""
    return os.environ.get("PROBEBANK_NO_ENTRY_POINTS", "") in ("", "0")


def build_plugin_manager(include: Sequence[Path] = (), builtins: bool = True,
                         entry_points: bool | None = None) -> tuple[pluggy.PluginManager, list[Path], _Origins]:
    pm = pluggy.PluginManager("probebank")
    pm.add_hookspecs(hookspecs)
    origins = _Origins()
    if builtins:
        for name in BUILTIN_PLUGINS:
            pm.register(importlib.import_module(name), name=name)
    if entry_points if entry_points is not None else entry_points_enabled():
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for plugin, dist in pm.list_plugin_distinfo():
            module = getattr(plugin, "__name__", str(plugin))
            origins.names[module] = f"package {dist.project_name} ({module})"
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
            module = _load_module_from_file(real)
            origins.names[module.__name__] = f"include {real}"
            pm.register(module, name=f"include:{real}")
    return pm, include_dirs, origins


class Registered:
    """Everything the plugins registered, by kind then name.

    Each kind's hook runs on first use, so a command pays only for the plugins it needs: listing
    the bank runs register_datasets, which imports no model or probing code.
    """

    def __init__(self, pm: pluggy.PluginManager, include_dirs: list[Path], origins: _Origins) -> None:
        self._hook = pm.hook
        self._origins = origins
        self.include_dirs = include_dirs
        self.origins: dict[tuple[str, str], str] = {}  # (kind, name) -> the plugin whose registration won

    def _table(self, hook_name: str, kind: str) -> dict[str, Any]:
        table: dict[str, Any] = {}
        getattr(self._hook, hook_name)(register=_registrar(table, kind, self._origins, self.origins))
        return table

    @cached_property
    def sources(self) -> dict[str, SourceFetcher]:
        return self._table("register_sources", "source")

    @cached_property
    def models(self) -> dict[str, ModelProvider]:
        return self._table("register_models", "model")

    @cached_property
    def methods(self) -> dict[str, Callable[..., Any]]:
        return self._table("register_methods", "method")

    @cached_property
    def bases(self) -> dict[str, Callable[..., Any]]:
        return self._table("register_bases", "basis")

    @cached_property
    def layouts(self) -> list[Layout]:
        """Architecture families, tried in this order (later-loaded plugins first); the first match wins."""
        out: list[Layout] = []

        def register(layout: Layout) -> None:
            if not isinstance(layout, Layout):
                raise PluginError(f"register_layouts got a {type(layout).__name__}, not a Layout",
                                  fix="register(probebank.contracts.Layout(name=..., blocks=..., mlp=..., attn=...))")
            if layout not in out:
                out.append(layout)

        self._hook.register_layouts(register=register)
        return out

    @cached_property
    def _datasets(self) -> tuple[dict[str, Builder], list[tuple[Any, str]]]:
        builders: dict[str, Builder] = {}
        add = _registrar(builders, "dataset", self._origins, self.origins)
        cards: list[tuple[Any, str]] = []

        def register(name: str, build: Builder, card: Any = None) -> None:
            add(name, build)
            if card is not None:
                cards.append((card, self._origins.of(build)))

        self._hook.register_datasets(register=register)
        return builders, cards[::-1]  # cards in loading order: the catalog lets a later card override an earlier one

    @property
    def builders(self) -> dict[str, Builder]:
        return self._datasets[0]

    @property
    def cards(self) -> list[tuple[Any, str]]:
        """(DatasetCard or card.yaml path, origin) of every card a plugin registered."""
        return self._datasets[1]


_CACHE: RuntimeCache[tuple[tuple[str, ...], bool, bool], Registered] = RuntimeCache()


def get_registered(include: Sequence[Path] = (), builtins: bool = True) -> Registered:
    """The plugins of this include set (built once per process; each kind's hook runs on first use)."""
    key = (tuple(str(Path(p).resolve()) for p in include), builtins, entry_points_enabled())
    if key not in _CACHE:
        pm, include_dirs, origins = build_plugin_manager(include, builtins)
        _CACHE[key] = Registered(pm, include_dirs, origins)
    return _CACHE[key]


def clear_plugin_cache() -> None:
    _CACHE.clear()
