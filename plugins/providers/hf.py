"""The `hf` provider: a local Hugging Face model folder, or a hub model id at a revision.

A hub id is fetched by transformers (from the local Hugging Face cache when HF_HUB_OFFLINE=1); a model
that cannot be had that way is a ModelError naming HF_HUB_OFFLINE and the `hf download` that brings it
as a folder. The revision recorded in provenance is the hub commit when one is known (the cache's
snapshot, or a downloaded folder's metadata), else the sha256 of the weights.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel, torch_dtype
from probebank.extract.runtime import prepare_runtime
from probebank.hashing import file_sha256
from probebank_plugins.providers.identity import COMMIT, META_FILE, folder_identity, hub_commit, read_meta

__all__ = ["META_FILE", "HFProvider", "apply_dtype", "hub_commit", "load_hf_folder", "read_meta"]


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


def _cached_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit of the snapshot a hub id resolved to in the local Hugging Face cache (snapshots/<commit>/)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(path, str) and COMMIT.fullmatch(Path(path).parent.name):
        return Path(path).parent.name
    return None


def load_hf_folder(folder: str, dtype: str, revision: str | None = None,
                   device: str | None = None) -> tuple[torch.nn.Module, Any]:
    """AutoModel (the base transformer, so no LM head is ever allocated) and its tokenizer. With a device
    other than the CPU the weights load straight onto it (`device_map`), never first into host memory."""
    from transformers import AutoModel, AutoTokenizer

    if device is not None and device != "cpu":
        model = AutoModel.from_pretrained(folder, dtype=torch_dtype(dtype), revision=revision, device_map={"": device})
    else:  # on the CPU transformers' own default placement, as before
        model = AutoModel.from_pretrained(folder, dtype=torch_dtype(dtype), revision=revision)
    tokenizer = AutoTokenizer.from_pretrained(folder, revision=revision)
    return model, tokenizer


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1 or "\\" in spec


def _hub_unreachable(spec: str, revision: str | None, exc: Exception) -> ModelError:
    """A hub id that could not be loaded: not in the local HF cache, and the hub is off (HF_HUB_OFFLINE, which
    probebank sets to 1 unless the user set it) or unreachable. Says how to bring the model as a folder."""
    at = f" at revision {revision}" if revision else ""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    hub_cache = os.environ.get("HF_HUB_CACHE") or str(Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    why = ("HF_HUB_OFFLINE=1 keeps the hub out of reach (probebank sets it unless you do; HF_HUB_OFFLINE=0 lets "
           "transformers download the model where a hub is reachable)" if offline else
           "the Hugging Face hub could not be reached (set HF_HUB_OFFLINE=1 to read only the local cache "
           "without waiting for the network)")
    rev = f" --revision {revision}" if revision else ""
    return ModelError(f"cannot load the hub model '{spec}'{at}: it is not in the local Hugging Face cache "
                      f"({hub_cache}) and {why} ({type(exc).__name__})", field="model",
                      fix=f"where a hub is reachable run `hf download {spec}{rev} --local-dir DIR`, copy DIR here and "
                          "pass hf:DIR (or the folder path); the commit it was downloaded at is recorded as the revision")


class HFProvider:
    """A local model folder, or a hub model id (`hf:ORG/NAME`, `hf:ORG/NAME@REVISION` or --revision)."""

    describe = ("hf:PATH_OR_ID[@REVISION] - a local Hugging Face model folder (config.json + weights + tokenizer.json), "
                "or a hub model id at a branch, tag or commit (read from the local HF cache when HF_HUB_OFFLINE=1)")

    def load(self, spec: str, *, dtype: str = "float32", name: str | None = None,
             revision: str | None = None, device: str | None = None) -> LoadedModel:
        prepare_runtime()
        if not spec:
            raise ModelError("the hf provider needs a folder or a model id", field="model",
                             fix="pass hf:/path/to/folder or a folder path")
        folder = Path(spec).expanduser()
        if not folder.is_dir() and "@" in spec:  # hf:org/name@revision
            spec, _, at = spec.rpartition("@")
            if revision and at != revision:
                raise ModelError(f"two revisions for '{spec}': @{at} and --revision {revision}", field="revision",
                                 fix="give the revision once")
            revision = at
            folder = Path(spec).expanduser()
        if not folder.is_dir() and _looks_like_path(spec):
            raise ModelError(f"no model folder at {folder}", file=folder,
                             fix="pass the folder that holds config.json, the weights and the tokenizer files")
        if folder.is_dir():
            return self._load_folder(folder, dtype, name, revision, device)
        try:
            model, tokenizer = load_hf_folder(spec, dtype, revision, device)
        except OSError as exc:
            raise _hub_unreachable(spec, revision, exc) from exc
        except (ValueError, KeyError) as exc:  # e.g. an architecture this transformers does not know
            raise ModelError(f"transformers cannot build the model '{spec}': {exc}", field="model") from exc
        commit = _cached_commit(spec, revision) or str(getattr(model.config, "_commit_hash", None) or revision
                                                         or "unknown")
        notes = f"hub model {spec}" + (f" (asked for revision {revision})" if revision and revision != commit else "")
        return LoadedModel.from_module(name or spec, model, tokenizer, revision=commit, notes=notes)

    def _load_folder(self, folder: Path, dtype: str, name: str | None, revision: str | None,
                     device: str | None = None) -> LoadedModel:
        meta = read_meta(folder)
        commit = None if meta else hub_commit(folder)
        if revision and commit and not commit.startswith(revision):
            raise ModelError(f"the folder {folder} holds hub commit {commit}, not the revision {revision} asked for",
                             file=folder, field="revision",
                             fix="drop --revision, or download that revision into another folder")
        try:
            model, tokenizer = load_hf_folder(str(folder), dtype, device=device)
        except OSError as exc:
            raise ModelError(f"cannot load the model folder {folder}: {exc}", file=folder,
                             fix="the folder needs config.json, the weights (*.safetensors) and tokenizer files") from exc
        except (ValueError, KeyError) as exc:
            raise ModelError(f"transformers cannot build the model in {folder}: {exc}", file=folder) from exc
        if meta:
            rev, notes = meta["revision"], meta.get("notes")
        elif commit:  # the hub's commit names the weights as well as a hash would, and costs nothing
            rev, notes = commit, f"hub commit {commit} (from the folder's download metadata)"
        else:
            rev, notes = _weights_revision(folder), None
        return LoadedModel.from_module(name or folder.name, model, tokenizer, revision=rev, notes=notes)

    def load_tokenizer(self, spec: str) -> tuple[Any, str]:
        """The folder's tokenizer (tokenizer.json) without its weights; the revision as `load` gives it."""
        from transformers import AutoTokenizer

        folder = Path(spec).expanduser()
        identity = folder_identity(folder)
        if identity is None:
            raise ModelError(f"no such model folder: {spec}", field="model", fix="pass an existing model folder")
        return AutoTokenizer.from_pretrained(str(folder)), identity.revision or _weights_revision(folder)
