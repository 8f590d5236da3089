"""Where things live: the bank (registry.yaml + datasets/) and the cache."""
from __future__ import annotations

import os
from pathlib import Path

from probebank.errors import ConfigError

_PKG = Path(__file__).resolve().parent


def bank_root() -> Path:
    """The folder holding registry.yaml and datasets/.

    A checkout (editable install) reads them in place; an installed wheel ships them as
    probebank/_bank/. PROBEBANK_BANK overrides both.
    """
    env = os.environ.get("PROBEBANK_BANK")
    if env:
        return Path(env).resolve()
    checkout = _PKG.parent
    if (checkout / "registry.yaml").is_file() and (checkout / "datasets").is_dir():
        return checkout
    return _PKG / "_bank"


CACHE_ENV = "PROBEBANK_CACHE"


def cache_root() -> Path:
    """probebank's own cache folder (PROBEBANK_CACHE, else ~/.cache/probebank)."""
    env = os.environ.get(CACHE_ENV)
    root = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "probebank"
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_hub_in_cache() -> None:
    """Point HF_HOME and temporary files at our cache so nothing leaks elsewhere (set only if unset)."""
    os.environ.setdefault("HF_HOME", str(cache_dir("hf")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def safe_join(base: Path, relative: str | Path, *, file: str | Path | None = None, field: str | None = None) -> Path:
    """Join `relative` under `base`, refusing any path that escapes it (.., absolute, symlinks out)."""
    base = Path(base).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise ConfigError(f"path '{relative}' leaves its folder {base}", file=file, field=field,
                          fix="use a path inside the folder, without '..' or links pointing outside")
    return target
