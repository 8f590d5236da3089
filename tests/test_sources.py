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


# ---------------------------------------------------------------- sdists from a local PEP 503 index

def _sdist(folder: Path, marker: Path) -> Path:
    """An sdist whose setup.py would leave `marker` behind if anything ran it."""
    import io
    import tarfile

    setup = f"open({str(marker)!r}, 'w').write('ran')\nfrom setuptools import setup\nsetup(name='evilpkg', version='1.0')\n"
    path = folder / "evilpkg-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in (("evilpkg-1.0/setup.py", setup), ("evilpkg-1.0/PKG-INFO", "Name: evilpkg\nVersion: 1.0\n"),
                           ("evilpkg-1.0/data.txt", "hello\n")):
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch):
    """A PEP 503 simple index on loopback (http.server in a thread) holding one sdist; pip is pointed at it."""
    import functools
    import http.server
    import threading

    from probebank.hashing import sha256_file

    root = tmp_path / "index"
    (root / "simple" / "evilpkg").mkdir(parents=True)
    marker = tmp_path / "setup-py-ran"
    sdist = _sdist(root / "simple" / "evilpkg", marker)
    (root / "simple" / "evilpkg" / "index.html").write_text(
        f'<html><body><a href="{sdist.name}">{sdist.name}</a></body></html>')
    downloads: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args, **kwargs) -> None:  # quiet, but count the downloads of the sdist
            if self.path.endswith(".tar.gz"):
                downloads.append(self.path)

    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    try:
        yield sha256_file(sdist), marker, downloads
    finally:
        server.shutdown()
        server.server_close()


def evil_pin(sha: str) -> SourcePin:
    return SourcePin(name="evil", kind="pypi", package="EvilPkg", version="1.0", sha256=sha,
                     filename="evilpkg-1.0.tar.gz")


def test_sdist_is_hash_checked_before_any_of_its_code_runs(private_cache: Path, local_index) -> None:
    sha, marker, _ = local_index
    folder = fetch_pypi(evil_pin(sha))  # the project page is found under its normalised name
    assert (folder / "evilpkg-1.0" / "data.txt").read_text() == "hello\n"
    assert not marker.exists(), "the sdist's setup.py ran"
    assert (folder.parent / "checksums.json").is_file() and not (folder.parent / ".complete").exists()


def test_sdist_with_a_wrong_sha256_is_refused_and_not_kept(private_cache: Path, local_index) -> None:
    sha, marker, _ = local_index
    with pytest.raises(SourceError) as info:
        fetch_pypi(evil_pin("0" * 64))
    msg = info.value.render()
    assert "sources.evil.sha256" in msg and sha in msg and "0" * 64 in msg
    assert cached_artifact(evil_pin("0" * 64)) is None and not marker.exists()


def test_sdist_missing_from_the_index_names_the_filename_field(private_cache: Path, local_index) -> None:
    sha, _, _ = local_index
    pin = evil_pin(sha).model_copy(update={"filename": "evilpkg-1.0.zip"})
    with pytest.raises(SourceError, match=r"sources\.evil\.filename.*evilpkg-1.0.zip"):
        fetch_pypi(pin)
    with pytest.raises(SourceError, match=r"sources\.evil\.filename.*not a file name"):
        fetch_pypi(evil_pin(sha).model_copy(update={"filename": "../evilpkg-1.0.tar.gz"}))


def test_cached_archive_is_rehashed_once_per_process_and_refetched(private_cache: Path, local_index,
                                                                   monkeypatch, capsys) -> None:
    from probebank.data import sources

    sha, _, _ = local_index
    folder = fetch_pypi(evil_pin(sha))
    archive = folder.parent / "evilpkg-1.0.tar.gz"
    data = bytearray(archive.read_bytes())
    data[100] ^= 0xFF  # same size: only a re-hash finds it
    archive.write_bytes(bytes(data))
    assert cached_artifact(evil_pin(sha)) == folder  # checked already in this process: not hashed again
    sources._checked.clear()  # a new process
    assert cached_artifact(evil_pin(sha)) is None
    assert "failed its check" in capsys.readouterr().err
    assert len(list((private_cache / "quarantine").iterdir())) == 1
    assert fetch_pypi(evil_pin(sha)) == folder and sources.sha256_file(archive) == sha


def test_legacy_entry_is_sealed_from_its_kept_archive_offline(private_cache: Path, local_index, monkeypatch) -> None:
    from probebank.data import sources

    sha, _, _ = local_index
    folder = fetch_pypi(evil_pin(sha)).parent
    (folder / "checksums.json").unlink()
    (folder / ".complete").write_text(sha)
    sources._checked.clear()
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing can be downloaded now
    assert fetch_pypi(evil_pin(sha)) == folder / "unpacked"
    assert (folder / "checksums.json").is_file() and not (folder / ".complete").exists()


def test_sdist_listed_with_another_hash_is_refused_before_download(private_cache: Path, local_index,
                                                                    tmp_path: Path) -> None:
    sha, marker, _ = local_index
    page = tmp_path / "index" / "simple" / "evilpkg" / "index.html"
    page.write_text(f'<a href="evilpkg-1.0.tar.gz#sha256={"1" * 64}">evilpkg-1.0.tar.gz</a>')
    with pytest.raises(SourceError, match=r"sources\.evil\.sha256.*the index lists evilpkg-1.0.tar.gz with sha256 1+"):
        fetch_pypi(evil_pin(sha))
    assert cached_artifact(evil_pin(sha)) is None and not marker.exists()


def test_index_is_resolved_as_pip_does(tmp_path: Path, monkeypatch) -> None:
    import os

    from pip._internal.models.index import PyPI

    from probebank_plugins.pypi_index import locations

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:2/simple\n[install]\nindex-url = http://127.0.0.1:1/simple\n"
                    "extra-index-url = http://127.0.0.1:3/simple\n")
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    indexes, _ = locations()
    assert indexes[0] == "http://127.0.0.1:1/simple" and "http://127.0.0.1:3/simple" in indexes
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:4/simple")
    assert locations()[0][0] == "http://127.0.0.1:4/simple"
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no configuration files: pip's own default
    assert locations()[0][0] == PyPI.simple_url


def test_concurrent_fetches_of_one_sdist_download_it_once(private_cache: Path, local_index) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sha, _, downloads = local_index
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: fetch_pypi(evil_pin(sha)), range(4)))
    assert len(set(folders)) == 1 and (folders[0] / "evilpkg-1.0" / "data.txt").is_file()
    assert len(downloads) == 1, downloads
