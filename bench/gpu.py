"""Benchmark for a GPU (runs on a CPU too): extraction with capture and storage against the bare forward.

    python bench/gpu.py                       # CUDA: Pythia-1.4B and Llama-3.2-1B configs; CPU: small configs
    python bench/gpu.py --device cpu --configs pythia-small,llama-small --examples 64

Builds randomly initialised models at the real configs (no weights needed), then prints, side by
side in one run and on the same batches: tokens/s of the bare base-model forward (no head, no
hooks) and of probebank's `extract()` capturing every layer's MLP neurons, aggregating them
(`mean`) and writing them to a float16 and to a uint8 store; the ratios to the bare forward; the
peak device memory of each phase; and the store's bytes. Batches are cut by the same token budget
(auto-sized from free memory on a GPU). Text: windows of Python standard-library source.
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from probebank.data.align import align_examples
from probebank.extract.aggregate import pad_batch
from probebank.extract.capture import bare_forward
from probebank.extract.device import auto_batch_tokens, resolve_device, resolve_dtype
from probebank.extract.loaded import LoadedModel, torch_dtype
from probebank.extract.pipeline import extract, plan_shards
from probebank.extract.plan import ExtractionPlan
from probebank.extract.shard import batch_end
from probebank.extract.tiny import tiny_tokenizer

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    # EleutherAI/pythia-1.4b's config.json
    "pythia-1.4b": ("GPTNeoXConfig", dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16,
                                          intermediate_size=8192, rotary_pct=0.25, max_position_embeddings=2048,
                                          vocab_size=50304, use_parallel_residual=True)),
    # meta-llama/Llama-3.2-1B's config.json
    "llama-3.2-1b": ("LlamaConfig", dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                                         num_key_value_heads=8, intermediate_size=8192, head_dim=64,
                                         max_position_embeddings=131072, rope_theta=500000.0, vocab_size=128256,
                                         tie_word_embeddings=True)),
    # the same families, small enough for a CPU
    "pythia-small": ("GPTNeoXConfig", dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                                           intermediate_size=1024, rotary_pct=0.25, max_position_embeddings=2048,
                                           vocab_size=50304)),
    "llama-small": ("LlamaConfig", dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=1024, max_position_embeddings=2048,
                                        vocab_size=32000)),
}


def _bench_extract_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_extract", Path(__file__).with_name("extract.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model(name: str, device: torch.device, dtype: str) -> LoadedModel:
    import transformers

    cls_name, params = CONFIGS[name]
    config = getattr(transformers, cls_name)(**params, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device(device):  # weights are allocated on the device directly
        model = transformers.AutoModel.from_config(config, dtype=torch_dtype(dtype))
    tokenizer = tiny_tokenizer("bpe")  # ids stay far below every vocabulary above
    tokenizer.model_max_length = 512
    return LoadedModel.from_module(name, model.eval(), tokenizer, revision="random-init-seed0",
                                   notes=f"random init at the {name} config")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def bench_one(name: str, device: torch.device, dtype: str, examples: int, repeats: int, max_tokens: int,
              batch_tokens: int | None) -> None:
    bx = _bench_extract_module()
    loaded = build_model(name, device, dtype)
    n_params = sum(p.numel() for p in loaded.model.parameters()) / 1e9
    budget = batch_tokens or auto_batch_tokens(device, loaded.widths["mlp"], 2 if dtype != "float32" else 4) or 2048
    built = bx.built_for(examples, "mean")
    ds = built.dataset
    aligned, _ = align_examples(loaded.tokenizer, ds["text"], ds["targets"], ds["label"], max_tokens=max_tokens,
                                causal=loaded.causal)
    batches = []
    for shard in plan_shards(aligned, "mean", 10**9):
        lo = 0
        while lo < len(shard):
            hi = batch_end(shard, lo, 16, budget)
            ids, mask = pad_batch(shard[lo:hi], 0)
            batches.append((ids.to(device), mask.to(device)))
            lo = hi
    tokens = sum(int(m.sum()) for _, m in batches)
    layers = list(range(loaded.n_layers))
    print(f"\n{name}: {n_params:.2f}B parameters, {loaded.n_layers} layers, d_mlp {loaded.widths['mlp']}, "
          f"{dtype} on {device}; {len(aligned)} texts, {tokens} tokens, {len(batches)} batches "
          f"(<= {budget} padded tokens each)")

    def bare() -> None:
        for ids, mask in batches:
            bare_forward(loaded, ids, mask, last_layer=layers[-1])
        sync(device)

    store_bytes: dict[str, int] = {}

    def run_extract(store_dtype: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            plan = ExtractionPlan(model=loaded.name, dataset=built.name, sites=["mlp"], layers=layers,
                                  aggregation="mean", max_tokens=max_tokens, max_batch_tokens=budget,
                                  store_dtype=store_dtype, shard_tokens=10**9, shard_rows=10**9)
            store, _ = extract(loaded, built, plan, store_root=Path(tmp), progress=False)
            sync(device)
            store_bytes[store_dtype] = sum(p.stat().st_size for p in store.path.rglob("*.npy"))

    phases = {"bare forward": bare, "extract float16": lambda: run_extract("float16"),
              "extract uint8": lambda: run_extract("uint8")}
    bare()  # warm-up (kernels, allocator)
    times: dict[str, list[float]] = {k: [] for k in phases}
    peaks: dict[str, float] = {}
    for _ in range(repeats):  # interleaved, so drift hits every phase alike
        for label, fn in phases.items():
            peak_reset(device)
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
            peaks[label] = peak_gb(device)
    best = {k: min(v) for k, v in times.items()}
    print(f"{'phase':<18}{'best s':>9}{'tokens/s':>11}{'ratio':>8}{'peak GiB':>10}{'store MB':>10}")
    for label, t in best.items():
        size = store_bytes.get(label.removeprefix("extract "), 0) / 2**20
        print(f"{label:<18}{t:>9.2f}{tokens / t:>11.0f}{best['bare forward'] / t:>8.3f}{peaks[label]:>10.2f}"
              f"{size:>10.3f}")
    print("ratio = throughput relative to the bare forward (goal: >= 0.9 with storage)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--configs", default=None, help=f"comma-separated, from: {', '.join(CONFIGS)}")
    ap.add_argument("--examples", type=int, default=None, help="texts (default: 2048 on a GPU, 64 on a CPU)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--batch-tokens", type=int, default=None, help="padded tokens per batch (default: auto)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    gpu = device.type == "cuda"
    names = args.configs.split(",") if args.configs else (
        ["pythia-1.4b", "llama-3.2-1b"] if gpu else ["pythia-small", "llama-small"])
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if gpu else f", {torch.get_num_threads()} threads"))
    for name in names:  # each model is freed when its bench_one returns
        bench_one(name, device, dtype, args.examples or (2048 if gpu else 64), args.repeats, args.max_tokens,
                  args.batch_tokens)
        if gpu:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
