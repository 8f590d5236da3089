"""Writes that are never seen half-done: a unique temporary name beside the target, then a rename."""
from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"  # every temporary name contains it, so `cache gc` can find leftovers of killed writers
_WRITER = re.compile(rf"{re.escape(TMP_MARK)}(\d+)-")


def temporary_name(final: Path) -> Path:
    """A name beside `final` that no other process or thread will choose."""
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def writer_pid(path: Path) -> int | None:
    """The process id in a temporary name made by `temporary_name`, or None."""
    match = _WRITER.search(Path(path).name)
    return int(match.group(1)) if match else None


def process_alive(pid: int) -> bool:
    """A process with this id runs on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path: Path, data: bytes) -> None:
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def remove(path: Path) -> None:
    """Delete a file or folder tree if it is there (a concurrent remover may have won)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def publish_folder(staging: Path, final: Path) -> None:
    """Move a finished staging folder into place, replacing whatever `final` held.

    The old entry is first renamed aside (one rename each way), so `final` is never a mix of two.
    """
    if final.exists():
        aside = temporary_name(final)
        os.replace(final, aside)
        remove(aside)
    os.replace(staging, final)


@contextmanager
def staging_folder(final: Path) -> Iterator[Path]:
    """A fresh, empty folder beside `final`; renamed into place when the block ends without error,
    removed when it raises."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_name(final)
    staging.mkdir()
    try:
        yield staging
        publish_folder(staging, final)
    finally:
        if staging.exists():
            remove(staging)
