"""The whole cache, entry by entry: what `probebank cache verify` checks and what `probebank cache gc` removes.

Entries (see docs/cache.md for the layout): store/<key>/, built/<dataset>/<tag>-<key>/,
records/<key>/, units/<key>/ (the records of one site x layer of a dataset: a probe work unit,
probebank.scale), summaries/<key>/ (a records file's summary, a few KB), bases/<key>/, gates/<key>.json (+ .sum), sources/<kind>/<artifact>/, and under
models/ the converted folders gguf-<sha16>/ (sealed), the assembled GGUFs gguf-src-*/ (not sealed: their
provider checks the sha256 when it makes one) and the hash memos hashes/*.json.

Garbage is what no current key can reach:
- temporary leftovers: names holding TMP_MARK or ending in `.tmp`, whose writer is gone (the process
  id in the name is not running; without one, older than LEFTOVER_GRACE_S);
- the quarantine folder, and lock files that no process holds;
- entries of an older format: unsealed folders (records, built, bases, sources, converted models,
  complete stores), gates without a `.sum`, records/<key>.jsonl files, stores whose meta.json
  format is not the current one (or that have none), hash memos of files that are gone or changed;
- built datasets whose (name, version) the current catalog does not list, and stores, records and units
  whose dataset content hash matches no built dataset that stays.
This module knows no catalog (it sits below probebank.data): the caller passes a `Reach`.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from probebank.cache import checksums
from probebank.cache.atomic import TMP_MARK, process_alive, remove
from probebank.cache.checksums import SEAL, file_problem, is_sealed, problem, read_seal, sidecar
from probebank.cache.quarantine import QUARANTINE, quarantine

KINDS = ("store", "built", "records", "units", "summaries", "bases", "gates", "sources", "models")
LEFTOVER_GRACE_S = 3600.0  # a leftover without a process id in its name is kept this long (its writer may run)
_PID = re.compile(rf"{re.escape(TMP_MARK)}(\d+)-|\.(\d+)\.tmp$")


@dataclass(frozen=True)
class Entry:
    """One cache entry: its kind, its path (a folder, or a file for gates and memos) and its size in bytes."""

    kind: str
    path: Path
    size: int


@dataclass(frozen=True)
class Verdict:
    entry: Entry
    state: str  # "ok", "bad" (sealed, but does not match its seal), "old" (an older format, or unfinished)
    why: str = ""
    part: Path | None = None  # the one shard of a store at fault: repairing sets aside only it

    def repair(self) -> None:
        """Set the bad entry aside, or only its bad shard (the store then keeps its other shards and is
        gathered again, and the lost shard extracted again, on next use)."""
        if self.part is not None:
            quarantine(self.part, self.why, action="it is extracted again when next used", quiet=True)
            (self.entry.path / SEAL).unlink(missing_ok=True)
        else:
            quarantine(self.entry.path, self.why, action="it is recomputed when next used", quiet=True)


@dataclass(frozen=True)
class Reach:
    """What current code can reach, from the caller's catalog.

    built: (dataset name, folder tag) pairs the catalog can read, the tag being `v<version>` (or a
    format tag such as `f2` for an internal build); store_format: the current activation store format.
    """

    built: frozenset[tuple[str, str]]
    store_format: int


@dataclass
class Garbage:
    """What gc removes, grouped by why."""

    items: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)

    def add(self, why: str, path: Path, size: int) -> None:
        self.items.setdefault(why, []).append((path, size))

    @property
    def size(self) -> int:
        return sum(s for rows in self.items.values() for _, s in rows)


def size_of(path: Path) -> int:
    """Bytes of a file or folder tree (links not followed)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except FileNotFoundError:
        return 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total


def is_leftover_name(name: str) -> bool:
    return TMP_MARK in name or name.endswith(".tmp")


def _writer_alive(path: Path, now: float) -> bool:
    """The process that writes this temporary name may still be running."""
    match = _PID.search(path.name)
    if match is None:
        try:
            return now - path.lstat().st_mtime < LEFTOVER_GRACE_S
        except FileNotFoundError:
            return False
    return process_alive(int(match.group(1) or match.group(2)))


def _children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_leftover_name(p.name)) if folder.is_dir() else []


def entries(root: Path) -> Iterator[Entry]:
    """Every entry of the cache at `root`, kind by kind (temporary leftovers are not entries)."""
    def entry(kind: str, path: Path) -> Entry:
        return Entry(kind, path, size_of(path) + (size_of(sidecar(path)) if kind == "gates" else 0))

    for kind in ("store", "records", "units", "summaries", "bases"):
        for p in _children(root / kind):
            yield entry(kind, p)
    for dataset in _children(root / "built"):
        for p in _children(dataset):
            yield entry("built", p)
    for p in _children(root / "gates"):
        if not p.name.endswith(".sum"):
            yield entry("gates", p)
    for source_kind in _children(root / "sources"):
        for p in _children(source_kind):
            yield entry("sources", p)
    for p in _children(root / "models"):
        if p.name == "hashes":
            for memo in _children(p):
                yield entry("memo", memo)
        elif p.is_dir():
            yield entry("models", p)


def _meta(folder: Path) -> dict:
    try:
        data = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store_verdict(e: Entry, deep: bool) -> Verdict:
    if is_sealed(e.path):
        why = problem(e.path, deep=deep)
        if why is None:
            return Verdict(e, "ok")
        in_shard = why.file is not None and why.file.startswith("shards/") and why.file.count("/") >= 2
        part = e.path / "shards" / why.file.split("/")[1] if in_shard and why.file else None
        return Verdict(e, "bad", str(why), part)
    if _meta(e.path).get("status") == "complete":
        return Verdict(e, "old", f"a complete store without {SEAL}")
    for shard in _children(e.path / "shards"):  # a partial store: its finished shards must hold
        why = problem(shard, deep=deep)
        if why is not None:
            return Verdict(e, "bad", f"shards/{shard.name}: {why}", shard)
    return Verdict(e, "ok", "partial (resumable)")


def _source_verdict(e: Entry, deep: bool) -> Verdict:
    why = problem(e.path, deep=deep)
    if why is not None:
        return Verdict(e, "bad", str(why))
    data = read_seal(e.path)
    archive, pinned = data.get("archive"), data.get("sha256")
    if not isinstance(archive, str) or archive not in data["files"]:
        return Verdict(e, "bad", f"its {SEAL} does not name the downloaded archive")
    if pinned and data["files"][archive][1] != pinned:
        return Verdict(e, "bad", f"{archive} was sealed with a sha256 other than its pin's")
    if pinned and not e.path.name.endswith(f"-{str(pinned)[:12]}"):
        return Verdict(e, "bad", f"its pin's sha256 {pinned} does not match the folder's name")
    return Verdict(e, "ok")


def _memo_verdict(e: Entry) -> Verdict:
    try:
        memo = json.loads(e.path.read_text(encoding="utf-8"))
        target = Path(memo["path"])
        st = target.stat()
    except (OSError, ValueError, KeyError, TypeError):
        return Verdict(e, "old", "a hash memo of a file that is gone, or unreadable")
    if (st.st_size, st.st_mtime_ns) != (memo.get("size"), memo.get("mtime_ns")):
        return Verdict(e, "old", "a hash memo of a file that has changed since")
    return Verdict(e, "ok")


def forget_checks() -> None:
    """Forget which entries passed their check in this process, so the next checks hash again (for verify)."""
    checksums._passed.clear()


def verdict(e: Entry, *, deep: bool = True) -> Verdict:
    """Check one entry against its seal (deep: sizes and sha256; quick: sizes only)."""
    if not e.path.exists():
        return Verdict(e, "ok", "gone meanwhile")
    if e.kind == "store":
        return _store_verdict(e, deep)
    if e.kind == "memo":
        return _memo_verdict(e)
    if e.kind == "gates":
        if not sidecar(e.path).is_file():
            return Verdict(e, "old", f"no {sidecar(e.path).name}")
        why_file = file_problem(e.path)
        return Verdict(e, "bad", why_file) if why_file else Verdict(e, "ok")
    if e.kind == "records" and e.path.is_file():
        return Verdict(e, "old", "a records file of the older format (records/<key>.jsonl)")
    if not e.path.is_dir():
        return Verdict(e, "old", "not a folder")
    if not is_sealed(e.path):
        if e.kind == "models" and not e.path.name.startswith("gguf-src-"):  # a converted model is sealed
            return Verdict(e, "old", f"a converted model folder without {SEAL}")
        if e.kind == "models":  # the assembled GGUF is checked against its pin when it is made
            return Verdict(e, "ok", "not sealed, not checked")
        return Verdict(e, "old", f"no {SEAL} (an older format, or unfinished)")
    if e.kind == "sources":
        return _source_verdict(e, deep)
    found = problem(e.path, deep=deep)
    return Verdict(e, "bad", str(found)) if found else Verdict(e, "ok")


# ---------------------------------------------------------------- garbage


def leftovers(root: Path, now: float | None = None) -> Iterator[tuple[Path, int]]:
    """Temporary names whose writers are gone, anywhere in the cache but hf/ (the hub's own folder).

    Inside a sealed folder only TMP_MARK names count (seals leave them out); a file there that merely ends
    in `.tmp` is part of the entry (e.g. a file of an unpacked source package) and is kept.
    """
    now = time.time() if now is None else now
    inside: dict[Path, bool] = {}  # folder -> it or a folder above it is sealed (os.walk goes top-down)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d not in ("hf", QUARANTINE)]
        sealed = inside[here] = inside.get(here.parent, False) or (here != root and is_sealed(here))
        for name in [*dirs, *files]:
            path = here / name
            if (TMP_MARK in name or (not sealed and is_leftover_name(name))) and not _writer_alive(path, now):
                yield path, size_of(path)
        dirs[:] = [d for d in dirs if not is_leftover_name(d)]


def free_locks(root: Path) -> Iterator[tuple[Path, FileLock]]:
    """Lock files that no process holds, each yielded while we hold it (so no one takes it meanwhile)."""
    for path in _children(root / "locks"):
        if path.suffix != ".lock":
            continue
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            yield path, lock
        finally:
            lock.release()


def _records_dataset_hash(folder: Path) -> str | None:
    """The dataset content hash of a records entry (from its first record's provenance)."""
    try:
        with open(folder / "records.jsonl", encoding="utf-8") as f:
            first = f.readline()
        value = json.loads(first)["provenance"]["dataset_hash"] if first.strip() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def collect(root: Path, reach: Reach, verdicts: list[Verdict] | None = None) -> Garbage:
    """Everything `cache gc` removes (see the module docstring); nothing is removed here."""
    garbage = Garbage()
    for path, size in leftovers(root):
        garbage.add("temporary leftovers", path, size)
    if (root / QUARANTINE).exists():
        garbage.add("quarantine", root / QUARANTINE, size_of(root / QUARANTINE))
    verdicts = verdicts if verdicts is not None else [verdict(e, deep=False) for e in entries(root)]
    live: list[Verdict] = []
    for v in verdicts:
        if v.state == "old":
            garbage.add("stale hash memos" if v.entry.kind == "memo" else "older formats", v.entry.path, v.entry.size)
        else:
            live.append(v)
    hashes: set[str] = set()
    for v in live:
        if v.entry.kind != "built":
            continue
        name, tag = v.entry.path.parent.name, v.entry.path.name.rsplit("-", 1)[0]
        if (name, tag) in reach.built:
            hashes.add(str(_meta(v.entry.path).get("content_hash")))
        else:
            garbage.add("built datasets not in the catalog", v.entry.path, v.entry.size)
    for v in live:
        if v.entry.kind == "store":
            meta = _meta(v.entry.path)
            if meta.get("format") != reach.store_format:
                garbage.add("older formats", v.entry.path, v.entry.size)
            elif ((meta.get("parts") or {}).get("dataset") or {}).get("content_hash") not in hashes:
                garbage.add("stores of no built dataset", v.entry.path, v.entry.size)
        elif v.entry.kind in ("records", "units"):
            digest = _records_dataset_hash(v.entry.path)
            if digest is not None and digest not in hashes:
                garbage.add("records of no built dataset", v.entry.path, v.entry.size)
    return garbage


def sweep(garbage: Garbage) -> None:
    """Remove what `collect` found (a file with its seal beside it)."""
    for rows in garbage.items.values():
        for path, _ in rows:
            was_file = path.is_file()
            remove(path)
            if was_file:
                sidecar(path).unlink(missing_ok=True)
            if path.parent.parent.name in ("built", "sources"):  # built/<dataset>/, sources/<kind>/ left empty
                try:
                    path.parent.rmdir()
                except OSError:  # not empty
                    pass
