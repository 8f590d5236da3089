"""Move an untrustworthy cache entry aside (never delete evidence), with one line saying which and why."""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from probebank.cache.checksums import sidecar
from probebank.paths import cache_root

QUARANTINE = "quarantine"


def describe(entry: Path) -> str:
    """The entry's path relative to the cache root (or as given when outside it)."""
    try:
        return Path(entry).resolve().relative_to(cache_root()).as_posix()
    except ValueError:
        return str(entry)


def quarantine(entry: Path, reason: str, *, action: str = "recomputing it", quiet: bool = False) -> Path | None:
    """Move `entry` (a folder or a file with its seal) to <cache>/quarantine/; returns where it went.

    `probebank cache gc` empties the quarantine folder.
    """
    entry = Path(entry)
    name = describe(entry)
    target_dir = cache_root() / QUARANTINE
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name.replace('/', '__')}.{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    moved: Path | None = None
    try:
        os.replace(entry, target)
        moved = target
    except FileNotFoundError:  # another process moved it first
        pass
    if entry.is_file() or not entry.exists():
        side = sidecar(entry)
        if side.exists():
            try:
                os.replace(side, target.with_name(target.name + ".sum"))
            except FileNotFoundError:
                pass
    if not quiet:
        print(f"cache: {name} failed its check ({reason}); moved to {QUARANTINE}/, {action}", file=sys.stderr)
    return moved
