"""The life of a folder entry: reuse it when its seal holds, else make it once, under its lock, and seal it."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from probebank.cache.atomic import staging_folder
from probebank.cache.checksums import is_sealed, problem, seal
from probebank.cache.locks import entry_lock
from probebank.cache.quarantine import quarantine


def intact(folder: Path) -> bool:
    """`folder` is a sealed entry whose files match their seal; a damaged one is quarantined (and False)."""
    if not folder.exists():
        return False
    why = problem(folder)
    if why is None:
        return True
    quarantine(folder, str(why))
    return False


def reuse_or_make(final: Path, make: Callable[[Path], None], *, what: str) -> bool:
    """Make the entry `final` unless an intact one is there; returns True when it was reused.

    `make(staging)` writes the entry's files into an empty staging folder; the folder is sealed and
    renamed into place. Under the entry's lock, so concurrent processes make it once between them.
    """
    if is_sealed(final) and intact(final):
        return True
    with entry_lock(final, what):
        if intact(final):  # another process made it while we waited
            return True
        with staging_folder(final) as staging:
            make(staging)
            seal(staging)
    return False
