"""Benchmark: probebank's extraction against the bare model forward, on the same batches, in one run.

    python bench/extract.py [--model smollm2-135m] [--examples 96] [--repeats 2]

Prints tokens/s of (a) the bare base-model forward (no head, no hooks) and (b) probebank's
`extract()` capturing every layer's MLP neurons, aggregating them and writing them to the
store (fp16, memory-mapped), for the `mean` and `each` aggregations, with their ratios; and the
peak RSS of each phase, plus peak RSS at twice the examples (memory must not grow with data).
Text: windows of real Python standard-library source (present with every Python).
"""
from __future__ import annotations

import argparse
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from probebank.data.align import align_examples
from probebank.data.examples import build_dataset
from probebank.data.registry import CatalogEntry
from probebank.data.schema import DatasetCard
from probebank.extract.aggregate import pad_batch
from probebank.extract.capture import bare_forward
from probebank.extract.pipeline import extract, plan_shards
from probebank.extract.plan import ExtractionPlan
from probebank.extract.providers import load_model


class PeakRSS:
    """Samples this process's RSS every 5 ms while active."""

    def __enter__(self) -> PeakRSS:
        self.proc, self.peak, self.running = psutil.Process(), 0, True
        self.start = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def stdlib_windows(n: int, chars: int = 480) -> list[str]:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    out: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8", errors="ignore")
        for lo in range(0, len(text) - chars, chars * 4):
            out.append(text[lo:lo + chars])
            if len(out) >= n:
                return out
    return out


def built_for(n: int, aggregation: str):
    texts = stdlib_windows(n)
    card = DatasetCard(name=f"bench-stdlib-{n}", version="1.0", category="code",
                       description="Windows of Python standard-library source for benchmarks.",
                       citation="Python Software Foundation", license="PSF-2.0", builder="bench",
                       labels={"type": "binary", "classes": ["even", "odd"]}, targets={"kind": "all"},
                       aggregation=aggregation, max_tokens=128, min_per_class=1)

    def build(ctx):
        for i, t in enumerate(texts):
            yield {"text": t, "label": i % 2}

    return build_dataset(CatalogEntry(card, None, "bench"), builders={"bench": build}, force=True, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    loaded = load_model(args.model)
    print(f"model {loaded.name} ({loaded.n_layers} layers, mlp width {loaded.widths['mlp']}, "
          f"{torch.get_num_threads()} threads)")
    layers = list(range(loaded.n_layers))
    built = {agg: built_for(args.examples, agg) for agg in ("mean", "each")}
    aligned, report = align_examples(loaded.tokenizer, built["mean"].dataset["text"], built["mean"].dataset["targets"],
                                     built["mean"].dataset["label"], max_tokens=128, causal=loaded.causal)
    batches = []
    for shard in plan_shards(aligned, "mean", 4096):
        for lo in range(0, len(shard), args.batch_size):
            batches.append(pad_batch(shard[lo:lo + args.batch_size], loaded.tokenizer.pad_token_id or 0))
    tokens = sum(int(m.sum()) for _, m in batches)
    print(f"{len(built['mean'].dataset)} texts, {tokens} tokens, {len(batches)} batches of <= {args.batch_size}")

    def bare() -> None:
        for ids, mask in batches:
            bare_forward(loaded, ids, mask)

    def run_extract(agg: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            plan = ExtractionPlan(model=loaded.name, dataset=built[agg].name, sites=["mlp"], layers=layers,
                                  aggregation=agg, batch_size=args.batch_size, max_tokens=128)
            extract(loaded, built[agg], plan, store_root=Path(tmp), progress=False)

    bare()  # warm-up
    times: dict[str, list[float]] = {"bare forward": [], "extract mean": [], "extract each": []}
    peaks: dict[str, PeakRSS] = {}
    for _ in range(args.repeats):  # interleaved, so drift hits every phase alike
        for label, fn in (("bare forward", bare), ("extract mean", lambda: run_extract("mean")),
                          ("extract each", lambda: run_extract("each"))):
            with PeakRSS() as peak:
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
            peaks[label] = peak
    best = {k: min(v) for k, v in times.items()}
    print(f"\n{'phase':<16}{'best s':>9}{'tokens/s':>11}{'ratio':>8}{'peak RSS MB':>13}")
    for label, t in best.items():
        print(f"{label:<16}{t:>9.2f}{tokens / t:>11.0f}{best['bare forward'] / t:>8.3f}{peaks[label].peak_mb:>13.0f}")
    print("ratio = throughput relative to the bare forward (1.0 = no overhead)")

    # memory must not grow with the dataset: peak RSS growth at 1x and 2x the examples (aggregation each)
    growth = {}
    for n in (args.examples, 2 * args.examples):
        b = built_for(n, "each")
        with tempfile.TemporaryDirectory() as tmp, PeakRSS() as peak:
            extract(loaded, b, ExtractionPlan(model=loaded.name, dataset=b.name, sites=["mlp"], layers=layers,
                                              aggregation="each", batch_size=args.batch_size, max_tokens=128,
                                              shard_rows=2048), store_root=Path(tmp), progress=False)
        growth[n] = peak.growth_mb
    print(f"peak RSS growth during extract(each): {args.examples} texts {growth[args.examples]:.0f} MB, "
          f"{2 * args.examples} texts {growth[2 * args.examples]:.0f} MB")


if __name__ == "__main__":
    main()
