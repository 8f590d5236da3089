"""The `hf` provider: a local Hugging Face model folder, or a model id already in the local HF cache.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel, torch_dtype
from probebank.extract.runtime import prepare_runtime
from probebank.hashing import file_sha256
from probebank_plugins.providers.identity import META_FILE, folder_identity, read_meta

__all__ = ["META_FILE", "HFProvider", "apply_dtype", "load_hf_folder", "read_meta"]


def apply_dtype(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    wanted = torch_dtype(dtype)
    if next(model.parameters()).dtype != wanted:
        model = model.to(wanted)
    return model


def _weights_revision(folder: Path) -> str:
    """sha256 of a folder's weight file, or of the list of per-file hashes when sharded."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    if not files:
        return "unknown"
    if len(files) == 1:
        return file_sha256(files[0])
    import hashlib
    listing = "\n".join(f"{p.name}:{file_sha256(p)}" for p in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def load_hf_folder(folder: str, dtype: str) -> tuple[torch.nn.Module, Any]:
    """AutoModel (the base transformer, so no LM head is ever allocated) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, dtype=torch_dtype(dtype))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


class HFProvider:
    """A local model folder, or an HF model id already in the local Hugging Face cache."""

    describe = ("hf:PATH_OR_ID - a local Hugging Face model folder (config.json + weights + tokenizer.json), "
                "or a model id already in the local HF cache (no hub is reachable here)")

    def load(self, spec: str, *, dtype: str = "float32", name: str | None = None) -> LoadedModel:
        prepare_runtime()
        if not spec:
            raise ModelError("the hf provider needs a folder or a model id", field="model",
                             fix="pass hf:/path/to/folder or a folder path")
        folder = Path(spec).expanduser()
        try:
            model, tokenizer = load_hf_folder(str(folder) if folder.is_dir() else spec, dtype)
        except OSError as exc:
            if folder.is_dir():
                raise ModelError(f"cannot load the model folder {folder}: {exc}", file=folder,
                                 fix="the folder needs config.json, the weights (*.safetensors) and tokenizer files") from exc
            raise ModelError(f"'{spec}' is not a local folder and is not in the local Hugging Face cache; "
                             "model hubs are not reachable here", field="model",
                             fix="download the model where a hub is reachable (e.g. `hf download ID --local-dir DIR`), "
                                 "copy DIR here and pass hf:DIR (or the folder path)") from exc
        except (ValueError, KeyError) as exc:  # e.g. an architecture this transformers does not know
            raise ModelError(f"transformers cannot build the model in '{spec}': {exc}", field="model") from exc
        if folder.is_dir():
            meta = read_meta(folder)
            revision = meta["revision"] if meta else _weights_revision(folder)
            notes = meta.get("notes") if meta else None
        else:
            revision = str(getattr(model.config, "_commit_hash", None) or "unknown")
            notes = None
        return LoadedModel.from_module(name or (folder.name if folder.is_dir() else spec), model, tokenizer,
                                       revision=revision, notes=notes)

    def load_tokenizer(self, spec: str) -> tuple[Any, str]:
        """The folder's tokenizer (tokenizer.json) without its weights; the revision as `load` gives it."""
        from transformers import AutoTokenizer

        folder = Path(spec).expanduser()
        identity = folder_identity(folder)
        if identity is None:
            raise ModelError(f"no such model folder: {spec}", field="model", fix="pass an existing model folder")
        return AutoTokenizer.from_pretrained(str(folder)), identity.revision or _weights_revision(folder)
