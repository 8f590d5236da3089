"""Tiny randomly initialised models of each supported family, with offline tokenizers.

For unit tests and smoke runs (`probebank run --model tiny:llama`): no download, < 1 s each.
"""
from __future__ import annotations

import functools
from typing import Any

import torch

from probebank.errors import ModelError
from probebank.extract.loaded import LoadedModel

# One per family users probe: Llama 3, Qwen 2/3, Mistral, Gemma 2/3, Pythia (gpt_neox), GPT-2, Phi (phi, phi3),
# OLMo (olmo, olmo2) and a BERT-style encoder. The name is the config's model_type (gemma3: its text tower).
TINY_FAMILIES: tuple[str, ...] = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gpt_neox", "gpt2",
                                  "phi", "phi3", "olmo", "olmo2", "bert")

_WORDS = ("cat dog teacher engineer child river city book ball code garden doctor farmer pilot singer "
          "painter nurse baker lawyer student Paris Berlin Tokyo Lagos Lima Oslo Cairo Delhi Rome Madrid "
          "red green blue quick slow happy tired bright dark old new small large early late").split()
_VERBS = "saw liked found moved wrote read built carried painted opened closed visited".split()


def _tiny_corpus() -> list[str]:
    """A few hundred deterministic template sentences (no third-party text)."""
    out = []
    for i in range(360):
        a, b, c = _WORDS[i % len(_WORDS)], _WORDS[(7 * i + 3) % len(_WORDS)], _WORDS[(13 * i + 5) % len(_WORDS)]
        v = _VERBS[i % len(_VERBS)]
        out.append(f"The {a} {v} a {b} near {c} in {1900 + i}, didn't it? x = {i} * 2;")
    return out


@functools.lru_cache(maxsize=4)
def _tiny_tokenizer_json(kind: str) -> str:
    """Train a small tokenizer in memory (byte-level BPE for decoders, WordPiece for bert)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer: Any = trainers.WordPieceTrainer(vocab_size=400, show_progress=False,
                                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        tok.train_from_iterator(_tiny_corpus(), trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        trainer = trainers.BpeTrainer(vocab_size=512, show_progress=False, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(_tiny_corpus(), trainer)
    return tok.to_str()


def tiny_tokenizer(kind: str = "bpe") -> Any:
    """A fast tokenizer trained offline in memory: "bpe" (byte-level, GPT-2 style) or "wordpiece" (BERT style)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    obj = Tokenizer.from_str(_tiny_tokenizer_json(kind))
    if kind == "wordpiece":
        return PreTrainedTokenizerFast(tokenizer_object=obj, unk_token="[UNK]", pad_token="[PAD]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                       model_max_length=128)
    return PreTrainedTokenizerFast(tokenizer_object=obj, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=128)


def tiny_config(family: str, vocab_size: int, n_layers: int = 4) -> Any:
    """A tiny config of one family: d_model 64, 4 heads, d_mlp 128 (gpt2/neox: 256), no download."""
    import transformers as tf

    common: dict[str, Any] = dict(vocab_size=vocab_size, num_hidden_layers=n_layers, num_attention_heads=4,
                                  hidden_size=64, max_position_embeddings=128)
    ids: dict[str, Any] = dict(bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if family == "llama":  # Llama 2/3 and SmolLM share this tree (Llama 3 differs in rope scaling and vocabulary)
        return tf.LlamaConfig(**common, **ids, intermediate_size=128, num_key_value_heads=2)
    gated = {"qwen2": tf.Qwen2Config, "qwen3": tf.Qwen3Config, "mistral": tf.MistralConfig,
             "olmo": tf.OlmoConfig, "olmo2": tf.Olmo2Config, "phi3": tf.Phi3Config}
    if family in gated:  # llama-like trees: gated MLP (phi3: fused gate_up_proj) + o_proj, grouped KV heads
        extra: dict[str, Any] = {"head_dim": 16} if family == "qwen3" else {}
        return gated[family](**common, **ids, **extra, intermediate_size=128, num_key_value_heads=2)
    if family == "phi":  # parallel attention and MLP (fc1 -> fc2), partial rotary
        return tf.PhiConfig(**common, **ids, intermediate_size=128)  # rotary on half of each head (the default)
    if family == "gemma2":  # alternating sliding-window (short here) and global attention, soft-capped logits
        return tf.Gemma2Config(**common, **ids, intermediate_size=128, num_key_value_heads=1, head_dim=16,
                               sliding_window=8)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(**common, intermediate_size=256, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if family == "gpt2":
        return tf.GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=n_layers, n_head=4, n_positions=128,
                             bos_token_id=0, eos_token_id=0, pad_token_id=0)
    if family == "gemma3":
        # A short sliding window so the tiny model exercises both local and global attention layers.
        return tf.Gemma3TextConfig(**common, intermediate_size=128, num_key_value_heads=1, head_dim=16,
                                   sliding_window=8, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                                   layer_types=[("sliding_attention", "full_attention")[i % 2] for i in range(n_layers)])
    if family == "bert":
        return tf.BertConfig(**common, intermediate_size=128, pad_token_id=0)
    raise ModelError(f"no tiny config for family '{family}'", fix=f"use one of: {', '.join(TINY_FAMILIES)}")


def tiny_model(family: str, seed: int = 0, n_layers: int = 4) -> LoadedModel:
    """A tiny randomly initialised model of one family with an offline tokenizer (no download).

    Decoders are built with their LM head (e.g. LlamaForCausalLM) and reduced to the base module,
    as real checkpoints are; bert is a BertModel. For tests and smoke runs only.
    """
    import transformers as tf

    tokenizer = tiny_tokenizer("wordpiece" if family == "bert" else "bpe")
    config = tiny_config(family, vocab_size=len(tokenizer), n_layers=n_layers)
    cls = {"llama": tf.LlamaForCausalLM, "qwen2": tf.Qwen2ForCausalLM, "qwen3": tf.Qwen3ForCausalLM,
           "mistral": tf.MistralForCausalLM, "gemma2": tf.Gemma2ForCausalLM, "gemma3": tf.Gemma3ForCausalLM,
           "gpt_neox": tf.GPTNeoXForCausalLM, "gpt2": tf.GPT2LMHeadModel, "phi": tf.PhiForCausalLM,
           "phi3": tf.Phi3ForCausalLM, "olmo": tf.OlmoForCausalLM, "olmo2": tf.Olmo2ForCausalLM,
           "bert": tf.BertModel}[family]
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = cls(config)
    return LoadedModel.from_module(f"tiny-{family}", model, tokenizer, revision=f"random-init-seed{seed}",
                                   notes="tiny random-init model for tests (no trained weights)")
