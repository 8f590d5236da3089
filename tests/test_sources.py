"""Pinned sources: sha256 checks, offline reuse of the cache, a clear error when nothing can be fetched,
and archives or local paths that try to leave their folder."""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from probebank.data.schema import SourcePin
from probebank.data.sources import cached_artifact, unpack
from probebank.errors import ConfigError, SourceError
from probebank_plugins.sources import fetch_local, fetch_pypi

SIX_SHA = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"


def six_pin(sha: str = SIX_SHA) -> SourcePin:
    return SourcePin(name="six", kind="pypi", package="six", version="1.16.0", sha256=sha,
                     filename="six-1.16.0-py2.py3-none-any.whl", license="MIT")


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _no_registry(monkeypatch) -> None:
    """Point pip at a closed port on loopback, with no local wheel folders: nothing can be downloaded."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")


def test_pypi_fetch_verifies_then_works_offline(private_cache: Path, monkeypatch) -> None:
    folder = fetch_pypi(six_pin())
    assert (folder / "six.py").is_file() and cached_artifact(six_pin()) == folder
    _no_registry(monkeypatch)

    def no_network(*args, **kwargs):
        raise AssertionError("a cached pin must not call pip")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert fetch_pypi(six_pin()) == folder


def test_pypi_sha256_mismatch_names_both_hashes(private_cache: Path) -> None:
    with pytest.raises(SourceError) as info:
        fetch_pypi(six_pin("0" * 64))
    msg = info.value.render()
    assert SIX_SHA in msg and "0" * 64 in msg and "sources.six.sha256" in msg
    assert cached_artifact(six_pin("0" * 64)) is None  # nothing unverified is kept as complete


def test_unreachable_registry_and_empty_cache_is_a_clear_error(private_cache: Path, monkeypatch) -> None:
    _no_registry(monkeypatch)
    with pytest.raises(SourceError) as info:
        fetch_pypi(six_pin())
    msg = info.value.render()
    assert "could not fetch six==1.16.0" in msg and "nothing is cached" in msg and "Fix:" in msg


def test_archive_member_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.whl"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "no")
    (tmp_path / "dest").mkdir()
    with pytest.raises(SourceError, match="escapes"):
        unpack(evil, tmp_path / "dest" / "unpacked")
    assert not (tmp_path / "dest" / "outside.txt").exists() and not (tmp_path / "outside.txt").exists()


def test_local_source_stays_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "facts.yaml").write_text("a: 1\n")
    (tmp_path / "secret.txt").write_text("no")
    ok = SourcePin(name="facts", kind="local", path="facts.yaml")
    assert fetch_local(ok, tmp_path / "card") == (tmp_path / "card" / "facts.yaml").resolve()
    with pytest.raises(ValueError, match="inside the dataset's folder"):
        SourcePin(name="bad", kind="local", path="../secret.txt")
    (tmp_path / "card" / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ConfigError, match="leaves its folder"):
        fetch_local(SourcePin(name="link", kind="local", path="link.txt"), tmp_path / "card")


def test_pypi_pin_must_be_complete() -> None:
    with pytest.raises(ValueError, match="sha256"):
        SourcePin(name="x", kind="pypi", package="six", version="1.16.0")
