"""Fetch pinned raw inputs into the cache, verify them, unpack them. Offline after the first fetch.

The source kinds themselves (pypi, npm, local, author) are plugins (register_sources); this
module owns the cache layout, checksum verification and safe unpacking they share.
"""
from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from probebank.data.schema import SourcePin
from probebank.errors import SourceError
from probebank.hashing import sha256_file
from probebank.paths import cache_dir
from probebank.plugins import get_registered


class SourceUnavailable(SourceError):
    """An optional source's client (e.g. npm) is missing: the dataset is skipped, not crashed."""


def pin_cache_dir(pin: SourcePin) -> Path:
    """cache/sources/<kind>/<package>-<version>-<sha12>: one folder per exact artifact."""
    safe_pkg = (pin.package or pin.name).replace("/", "__").replace("@", "")
    return cache_dir("sources", pin.kind, f"{safe_pkg}-{pin.version}-{(pin.sha256 or 'nohash')[:12]}")


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
        tf.extractall(dest, filter="data")  # refuses absolute paths, '..' and links out


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


def cached_artifact(pin: SourcePin) -> Path | None:
    """The verified, unpacked folder of a pin if the cache already holds it."""
    folder = pin_cache_dir(pin)
    if (folder / ".complete").is_file() and (folder / "unpacked").is_dir():
        return folder / "unpacked"
    return None


def store_artifact(pin: SourcePin, downloaded: Path) -> Path:
    """Verify a freshly downloaded artifact against its pin, keep it and unpack it; return the folder."""
    verify_sha256(downloaded, pin)
    folder = pin_cache_dir(pin)
    kept = folder / downloaded.name
    if downloaded.resolve() != kept.resolve():
        shutil.copy2(downloaded, kept)
    unpack(kept, folder / "unpacked")
    (folder / ".complete").write_text(pin.sha256 or "", encoding="utf-8")
    return folder / "unpacked"


def fetch_pin(pin: SourcePin, card_dir: Path | None = None, include: Sequence[Path] = ()) -> Path:
    """Return a local folder (or file) holding the pinned input, fetching it on first use."""

    fetchers = get_registered(include).sources
    if pin.kind not in fetchers:
        raise SourceError(f"unknown source kind '{pin.kind}'", field=f"sources.{pin.name}.kind",
                          fix=f"use one of: {', '.join(sorted(fetchers))}")
    return fetchers[pin.kind](pin, card_dir)
