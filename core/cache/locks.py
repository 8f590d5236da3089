"""File locks around the making of a cache entry: the second process waits, then reuses the first's work.

Locks live in <cache>/locks/, one small file per entry, named by a hash of the entry's path. They
are advisory OS locks (fcntl on POSIX), released by the kernel when a holder dies, so kill -9 leaves
no stale lock behind. On a network filesystem they hold only where the filesystem supports them.
"""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from probebank.paths import cache_root

NOTICE_AFTER_S = 2.0  # say that we are waiting only when the wait is noticeable


def lock_path(entry: Path) -> Path:
    folder = cache_root() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(str(Path(entry).resolve()).encode()).hexdigest()[:20]
    return folder / f"{Path(entry).name[:40]}-{digest}.lock"


@contextmanager
def entry_lock(entry: Path, what: str | None = None) -> Iterator[None]:
    """Hold the lock of one cache entry; print one line if another process holds it for long."""
    lock = FileLock(str(lock_path(entry)))
    try:
        lock.acquire(timeout=NOTICE_AFTER_S)
    except Timeout:
        print(f"waiting for another probebank process that is making {what or entry} ...", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
