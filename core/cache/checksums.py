"""Seal a finished cache entry with the size and sha256 of each file; check the seal when reading it.

A folder entry's seal is its `checksums.json`, written last (so an entry without one is unfinished);
a single-file entry's seal is a `<name>.sum` file beside it. A check compares sizes first (cheap, and
it catches truncation), then hashes; a folder that passed is not hashed again in the same process
unless a file of it (or its seal) has changed since, by size or modification time.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probebank.cache.atomic import TMP_MARK, write_text
from probebank.hashing import sha256_file

SEAL = "checksums.json"
SEAL_FORMAT = 1
# folder -> stat stamps (mtime_ns, size) of its seal and files when a deep check passed in this process
_passed: dict[str, tuple[tuple[str, int, int], ...]] = {}


def _stamps(folder: Path, names: list[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for rel in names:
        st = (folder / rel).stat()
        out.append((rel, st.st_mtime_ns, st.st_size))
    return tuple(out)


@dataclass(frozen=True)
class Problem:
    """Why an entry cannot be trusted: the file at fault (relative to the entry; None for the seal) and what."""

    file: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.file} {self.text}" if self.file else self.text


def _listed(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SEAL and TMP_MARK not in p.name)


def seal(folder: Path, extra: dict[str, Any] | None = None) -> str:
    """Write `folder`'s seal over every file in it; returns the seal's digest (see `digest`)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): [p.stat().st_size, sha256_file(p)] for p in _listed(folder)}
    write_text(folder / SEAL, json.dumps({"format": SEAL_FORMAT, "files": files, **(extra or {})},
                                         indent=0, sort_keys=True))
    _passed.pop(str(folder.resolve()), None)
    return digest(folder)


def is_sealed(folder: Path) -> bool:
    return (Path(folder) / SEAL).is_file()


def digest(folder: Path) -> str:
    """sha256 of the seal: it changes whenever any file of the entry changes."""
    return sha256_file(Path(folder) / SEAL)


def read_seal(folder: Path) -> dict[str, Any]:
    data = json.loads((Path(folder) / SEAL).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ValueError("not a probebank seal")
    return data


def problem(folder: Path, *, deep: bool = True) -> Problem | None:
    """Why the sealed entry `folder` cannot be trusted, or None when every file matches its seal.

    deep=False compares sizes only (for a quick scan of a large cache).
    """
    folder = Path(folder)
    if not (folder / SEAL).is_file():
        return Problem(None, f"it has no {SEAL} (unfinished, or written by an older probebank)")
    key = str(folder.resolve())
    if deep and key in _passed:
        try:
            if _stamps(folder, [s[0] for s in _passed[key]]) == _passed[key]:
                return None
        except OSError:
            pass
        del _passed[key]
    try:
        files = read_seal(folder)["files"]
    except (OSError, ValueError) as exc:
        return Problem(SEAL, f"is unreadable ({exc})")
    for rel, (size, _) in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            return Problem(rel, "is missing")
        if path.stat().st_size != size:
            return Problem(rel, f"has {path.stat().st_size} bytes, its seal says {size}")
    if deep:
        stamps = _stamps(folder, [SEAL, *sorted(files)])  # taken before hashing: a write during it shows later
        for rel, (_, sha) in sorted(files.items()):
            if sha256_file(folder / rel) != sha:
                return Problem(rel, "differs from its checksum")
        _passed[key] = stamps
    return None


def sidecar(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sum")


def seal_file(path: Path) -> None:
    """Seal a single-file entry (its `.sum` beside it, written after the file)."""
    path = Path(path)
    write_text(sidecar(path), json.dumps({"size": path.stat().st_size, "sha256": sha256_file(path)}))


def file_problem(path: Path) -> str | None:
    """Why the single-file entry `path` cannot be trusted, or None."""
    path = Path(path)
    try:
        want = json.loads(sidecar(path).read_text(encoding="utf-8"))
        size, sha = int(want["size"]), str(want["sha256"])
    except FileNotFoundError:
        return f"it has no {sidecar(path).name}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its {sidecar(path).name} is unreadable ({exc})"
    if not path.is_file():
        return "the file is missing"
    if path.stat().st_size != size:
        return f"it has {path.stat().st_size} bytes, its seal says {size}"
    if sha256_file(path) != sha:
        return "it differs from its checksum"
    return None


def content_digest(folder: Path, *, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over the sealed files' checksums, leaving out `exclude` (e.g. a meta file holding timings)."""
    files = {k: v for k, v in read_seal(folder)["files"].items() if k not in exclude}
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
