"""The catalog: registry.yaml + cards (+ cards from plugins and --include folders), validated.

Loading the catalog never imports dataset code: `probebank list` stays fast. Every problem is an
error that names the file, the line where known, the field and the fix.
"""
from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from probebank.data.schema import DatasetCard, Registry, Suite
from probebank.data.yamlio import LoadedYaml, load_yaml
from probebank.errors import CardError, RegistryError
from probebank.paths import bank_root, safe_join
from probebank.plugins import get_registered


def _explain(exc: ValidationError, loaded: LoadedYaml, file: Path, prefix: tuple = ()) -> CardError:
    """Turn the first pydantic error into a CardError with file, line and field."""
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    field_name = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    msg = err["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key"
        fix = "remove it or correct its spelling; see `probebank schema` for the allowed keys"
    elif kind == "missing":
        msg = "required field is missing"
        fix = "add it; see `probebank schema` for its type"
    else:
        got = err.get("input")
        got_s = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
        msg = f"{msg} (got {got_s[:80]})"
        fix = "give a value of the expected type"
    more = len(exc.errors()) - 1
    if more:
        msg += f"; and {more} more problem{'s' if more > 1 else ''} in this file"
    return CardError(msg, file=file, line=loaded.line_of(loc), field=field_name, fix=fix)


def parse_model(model: type[BaseModel], path: Path, *, prefix: tuple = ()) -> Any:
    loaded = load_yaml(path)
    data = loaded.data
    for key in prefix:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise CardError("expected a mapping of keys to values", file=path,
                        fix=f"write the file as YAML key: value pairs following {model.__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, loaded, path, prefix) from None


def load_card(path: Path) -> DatasetCard:
    return parse_model(DatasetCard, Path(path))


@dataclass
class CatalogEntry:
    card: DatasetCard
    card_path: Path | None
    origin: str  # "registry", "plugin <name>", "include <dir>"

    @property
    def folder(self) -> Path | None:
        return self.card_path.parent if self.card_path else None


@dataclass
class Catalog:
    entries: dict[str, CatalogEntry] = field(default_factory=dict)
    suites: dict[str, Suite] = field(default_factory=dict)
    root: Path | None = None

    def get(self, name: str) -> CatalogEntry:
        if name not in self.entries:
            close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.6)
            close += [n for n in self.entries if n not in close and (name in n or n in name)][: 5 - len(close)]
            raise RegistryError(f"no dataset named '{name}'", field="--datasets",
                                fix=("did you mean: " + ", ".join(close)) if close
                                else "run `probebank list` to see the datasets")
        return self.entries[name]

    def suite(self, name: str) -> Suite:
        if name not in self.suites:
            raise RegistryError(f"no suite named '{name}'", field="--suite",
                                fix=f"use one of: {', '.join(sorted(self.suites)) or '(none defined)'}")
        return self.suites[name]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def add(self, entry: CatalogEntry) -> None:
        if entry.card.name in self.entries:
            warnings.warn(f"{entry.origin} overrides dataset '{entry.card.name}' from "
                          f"{self.entries[entry.card.name].origin}", stacklevel=2)
        self.entries[entry.card.name] = entry


def load_registry_file(path: Path) -> Catalog:
    path = Path(path)
    registry: Registry = parse_model(Registry, path)
    root = path.parent
    catalog = Catalog(root=root)
    for name, reg_entry in registry.datasets.items():
        card_path = safe_join(root, reg_entry.card, file=path, field=f"datasets.{name}.card")
        card = load_card(card_path)
        for fld, want in (("name", name), ("version", reg_entry.version), ("category", reg_entry.category)):
            got = getattr(card, fld)
            if got != want:
                raise RegistryError(f"registry says {fld} '{want}' but the card says '{got}'", file=path,
                                    field=f"datasets.{name}.{fld}",
                                    fix=f"make registry.yaml and {reg_entry.card} agree (bump both together)")
        catalog.add(CatalogEntry(card, card_path, "registry"))
    for name, entry in catalog.entries.items():
        missing = sorted(set(entry.card.test_sets.values()) - set(registry.datasets))
        if missing:
            raise RegistryError(f"the card of '{name}' names test sets {missing} that registry.yaml does not list",
                                file=path, field=f"datasets.{name}", fix="add their cards to registry.yaml or fix the names")
    for suite, spec in registry.suites.items():
        unknown = [m for m in spec.datasets if m not in registry.datasets]
        if unknown:
            raise RegistryError(f"suite '{suite}' lists unknown datasets {unknown}", file=path,
                                field=f"suites.{suite}", fix="list only names defined under `datasets`")
    catalog.suites = dict(registry.suites)
    return catalog


def load_catalog(include: Sequence[Path] = (), registry_path: Path | None = None,
                 with_plugins: bool = True) -> Catalog:
    """registry.yaml first, then cards registered by plugins, then --include folders (later wins)."""
    catalog = load_registry_file(registry_path or bank_root() / "registry.yaml")
    if with_plugins:
        reg = get_registered(include)
        for card, origin in reg.cards:
            if isinstance(card, DatasetCard):
                catalog.add(CatalogEntry(card, None, origin))
            else:
                catalog.add(CatalogEntry(load_card(Path(card)), Path(card), origin))
    for folder in include:
        folder = Path(folder).resolve()
        reg_file = folder / "registry.yaml"
        if reg_file.is_file():  # a folder with its own registry: use it (suites included)
            sub = load_registry_file(reg_file)
            for entry in sub.entries.values():
                entry.origin = f"include {folder}"
                catalog.add(entry)
            catalog.suites.update(sub.suites)
            continue
        for card_path in sorted(folder.rglob("card.yaml")):
            real = card_path.resolve()
            if folder not in real.parents:
                raise RegistryError("card links outside its include folder", file=card_path)
            catalog.add(CatalogEntry(load_card(real), real, f"include {folder}"))
    return catalog
