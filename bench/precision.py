"""Benchmark: what an 8-bit store and bfloat16 forwards change in the figures, side by side in one run.

    python bench/precision.py [--suite quick] [--layers 0,10,20] [--model smollm2-135m]

Runs the same suite three times through `probebank.run`: the reference (float32 forward, float16
store), `--store-dtype uint8`, and `--dtype bfloat16` (float16 store). For each variant it prints,
over every (dataset, feature, layer, method, seed), the mean and largest absolute F1 difference to
the reference at k=1, k=16 and dense, the mean F1 itself, and the bytes of the activation stores.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from probebank.paths import cache_root
from probebank.run import RunConfig, run

VARIANTS = {"reference (float32, float16 store)": {}, "uint8 store": {"store_dtype": "uint8"},
            "bfloat16 forward": {"dtype": "bfloat16"}}


def f1_table(out: Path) -> dict[tuple, float]:
    table = {}
    for line in (out / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["method"] == "single_unit" or r["basis"] != "identity":
            continue
        k = "dense" if r["method"] == "dense" else r["k"]
        if k not in (1, 16, "dense"):
            continue
        key = (r["provenance"]["dataset"], r["feature"], r["layer"], r["method"], k, r["seed"])
        table[key] = r["metrics"]["f1"]
    return table


def store_bytes(out: Path) -> int:
    """Bytes of the activation files of the stores this run used (rows and seals aside)."""
    keys = {json.loads(line)["provenance"]["store_key"] for line in (out / "records.jsonl").read_text().splitlines()}
    total = 0
    for key in keys:
        for p in (cache_root() / "store" / key).glob("shards/*/*.npy"):
            if not p.name.startswith("rows_"):
                total += p.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--suite", default="quick")
    ap.add_argument("--layers", default="0,10,20")
    ap.add_argument("--methods", default="f_stat")
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    tables, sizes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in VARIANTS.items():
            out = Path(tmp) / label.split()[0]
            run(RunConfig(model=args.model, suite=args.suite, layers=layers, methods=args.methods.split(","),
                          out=out, progress=False, controls=False, device="cpu", **extra), log=lambda m: None)
            tables[label], sizes[label] = f1_table(out), store_bytes(out)
    ref_label = next(iter(VARIANTS))
    ref = tables[ref_label]
    print(f"{args.model}, suite {args.suite}, layers {layers}, methods {args.methods}: {len(ref)} probes per variant")
    print(f"{'variant':<36}{'k':>6}{'mean F1':>9}{'mean |dF1|':>12}{'max |dF1|':>11}{'store MB':>10}")
    for label, table in tables.items():
        diffs, means = defaultdict(list), defaultdict(list)
        for key, f1 in table.items():
            if key in ref:
                diffs[key[4]].append(abs(f1 - ref[key]))
            means[key[4]].append(f1)
        for k in (1, 16, "dense"):
            d = diffs[k] or [float("nan")]
            print(f"{label:<36}{k!s:>6}{sum(means[k]) / max(1, len(means[k])):>9.4f}{sum(d) / len(d):>12.4f}"
                  f"{max(d):>11.4f}{sizes[label] / 2**20:>10.1f}")
    print("differences are to the reference, per (dataset, feature, layer, method, seed); goal: mean within 0.005")


if __name__ == "__main__":
    main()
