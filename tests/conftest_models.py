"""Fixtures and helpers for model tests: tiny models of every family and a tiny llama written to GGUF.

Import what you need from here (`from conftest_models import ...`); tests/conftest.py is shared
with other engineers, so these fixtures live in their own module.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from probebank.extract.loaded import LoadedModel
from probebank.extract.tiny import TINY_FAMILIES, tiny_model

TEXTS = [
    "The cat saw a dog near Paris in 1999, didn't it?",
    "x = 42 * 2;",
    "A quick green painter visited Oslo early.",
]


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, LoadedModel]:
    """One tiny random-init model per family, built once per test session."""
    return {family: tiny_model(family) for family in TINY_FAMILIES}


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private probebank cache for one test (converted models, hash memos)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PROBEBANK_CACHE", str(root))
    return root


@pytest.fixture()
def models_registry(monkeypatch):
    """The plugin registry with only the sources and models built-ins (others may not exist yet)."""
    import probebank.plugins
    from probebank.plugins import clear_plugin_cache

    monkeypatch.setattr(probebank.plugins, "BUILTIN_PLUGINS",
                        ("probebank_plugins.sources", "probebank_plugins.models"))
    monkeypatch.setenv("PROBEBANK_NO_ENTRY_POINTS", "1")
    clear_plugin_cache()
    yield
    clear_plugin_cache()


def _permute_for_gguf(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (transformers reverses it on load)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_llama_gguf(loaded: LoadedModel, path: Path, quant_mlp: bool = True) -> dict[str, torch.Tensor]:
    """Write a tiny llama LoadedModel to a GGUF file, as llama.cpp's converter would.

    MLP matrices are stored as Q8_0 when `quant_mlp`, everything else as F32. Returns the
    state dict the GGUF dequantises to (the Q8_0 round trip applied), keyed like the base model.
    """
    import gguf
    from gguf.quants import dequantize, quantize

    model, cfg, tok = loaded.model, loaded.model.config, loaded.tokenizer
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("probebank tiny llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(cfg.hidden_size // n_head)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quant_mlp else gguf.LlamaFileType.ALL_F32)

    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]]
    special = {a["content"] for a in spec["added_tokens"] if a.get("special")}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    eos = tok.convert_tokens_to_ids(tok.eos_token)
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    writer.add_pad_token_id(eos)
    writer.add_add_bos_token(False)

    expected: dict[str, torch.Tensor] = {}

    def put(gguf_name: str, hf_name: str, quant: bool = False, permute_heads: int | None = None) -> None:
        w = model.get_parameter(hf_name).detach().float().numpy()
        stored = _permute_for_gguf(w, permute_heads) if permute_heads else w
        if quant:
            q = quantize(stored, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(gguf_name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            # What a loader gets back: the row permutation commutes with the row-wise quantisation.
            w = dequantize(quantize(w, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(gguf_name, np.ascontiguousarray(stored))
        expected[hf_name] = torch.from_numpy(np.ascontiguousarray(w).reshape(model.get_parameter(hf_name).shape))

    put("token_embd.weight", "embed_tokens.weight")
    for i in range(cfg.num_hidden_layers):
        p = f"layers.{i}."
        put(f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight")
        put(f"blk.{i}.attn_q.weight", p + "self_attn.q_proj.weight", permute_heads=n_head)
        put(f"blk.{i}.attn_k.weight", p + "self_attn.k_proj.weight", permute_heads=n_kv)
        put(f"blk.{i}.attn_v.weight", p + "self_attn.v_proj.weight")
        put(f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight")
        put(f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight")
        put(f"blk.{i}.ffn_gate.weight", p + "mlp.gate_proj.weight", quant=quant_mlp)
        put(f"blk.{i}.ffn_up.weight", p + "mlp.up_proj.weight", quant=quant_mlp)
        put(f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight", quant=quant_mlp)
    put("output_norm.weight", "norm.weight")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected
