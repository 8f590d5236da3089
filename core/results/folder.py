"""A results folder that is replaced whole or not at all.

A run writes into a staging folder beside `--out` and swaps it in only when it has finished, so a
failed, interrupted or killed run leaves the earlier folder exactly as it was.
"""
from __future__ import annotations

import os
from pathlib import Path

from probebank.cache.atomic import TMP_MARK, process_alive, publish_folder, remove, temporary_name, writer_pid
from probebank.errors import ConfigError

OUT_FIELD = "--out"


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def check_out(out: Path) -> None:
    """A usable results folder: a folder (or a path where one can be made) that this user can replace."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder", file=out, field=OUT_FIELD,
                          fix="give a folder (it is created when missing)")
    parent = out.resolve().parent
    while not parent.exists():  # the nearest existing folder above decides whether ours can be made
        parent = parent.parent
    if not parent.is_dir() or not _writable(parent):
        raise ConfigError(f"cannot create {out}: {parent} is not writable", file=out, field=OUT_FIELD,
                          fix="give a folder in a place you can write to")
    if out.is_dir() and not _writable(out):
        raise ConfigError(f"{out} is read-only, so its earlier results cannot be replaced", file=out,
                          field=OUT_FIELD, fix="give another folder, or make this one writable (chmod u+w)")


def clear_stale_staging(out: Path) -> None:
    """Remove the staging folders that killed runs left beside `out` (their process is gone)."""
    parent = out.resolve().parent
    if not parent.is_dir():
        return
    for path in parent.glob(f".{out.name}{TMP_MARK}*"):
        pid = writer_pid(path)
        if pid is not None and not process_alive(pid):
            remove(path)


class StagedResults:
    """The staging folder of one run: write into `.path`, then `commit()` (or `discard()`)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        check_out(self.out)
        self.out.resolve().parent.mkdir(parents=True, exist_ok=True)
        clear_stale_staging(self.out)
        self.path = temporary_name(self.out.resolve())
        self.path.mkdir()

    def commit(self) -> Path:
        """Swap the finished folder in place of the earlier one; returns the results folder."""
        publish_folder(self.path, self.out.resolve())
        return self.out

    def discard(self) -> None:
        remove(self.path)
