"""Benchmark: a suite's probing phase with 1 worker, N workers and Ray, side by side, records compared.

    python bench/scale.py                               # the bank suite on SmolLM2, 30 layers, 3 seeds
    python bench/scale.py --suite quick --layers 0-29   # a smaller suite
    python bench/scale.py --datasets language-udhr,code-pygments --layers 0,8,16,24
    python bench/scale.py --no-ray                      # without the ray extra

First one ordinary run (with --workers) fills the shared cache with the suite's built datasets and
activation stores (the extraction: minutes to hours on a cold cache, seconds on a warm one); its time
is printed, not compared. Then each executor runs the same `probebank run` again on a cache of its
own whose built datasets, stores, sources and models are links into the shared cache, but whose
records, work units and summaries start empty: so every executor probes everything, on the same
stored activations, and nothing else. Records are compared field by field apart from wall times.

The last lines project the whole grid (every dataset of the bank, all 30 layers, 3 seeds, controls on)
from the measured figures: probing seconds per work unit with N workers times the bank's units, plus
the extraction at the measured tokens per second. `--full` (with the default suite) measures it
instead of projecting. Run it alone: figures taken while other jobs share the cores are noise.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from probebank.paths import CACHE_ENV, cache_root
from probebank.run import RunConfig, run

SHARED = ("built", "store", "sources", "models", "gates")  # linked: what the probing phase reads
BANK_LAYERS = 30  # SmolLM2-135M


def _records(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("wall_time_s", None)
    return rows


def _private_cache(shared: Path, where: Path) -> Path:
    """A cache whose inputs are the shared cache's (links) and whose outputs start empty."""
    where.mkdir(parents=True)
    for kind in SHARED:
        (shared / kind).mkdir(parents=True, exist_ok=True)
        (where / kind).symlink_to(shared / kind, target_is_directory=True)
    return where


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers, once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed_run(config: RunConfig, cache: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, records) of one run on `cache`."""
    os.environ[CACHE_ENV] = str(cache)
    started, cpu = time.perf_counter(), _cpu_seconds()
    outcome = run(config, log=lambda m: None)
    return time.perf_counter() - started, _cpu_seconds() - cpu, outcome.n_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--suite", default=None, help="a suite of registry.yaml (default: bank)")
    ap.add_argument("--datasets", default=None, help="comma-separated names instead of a suite")
    ap.add_argument("--layers", default=None, help="e.g. 0-29 or 0,8,16 (default: all)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--limit", type=int, default=None, help="examples per class (default: the suite's)")
    ap.add_argument("--workers", type=int, default=2, help="the parallel executors' workers / Ray CPUs")
    ap.add_argument("--no-ray", action="store_true", help="leave the Ray executor out")
    ap.add_argument("--full", action="store_true", help="also run the whole bank grid and print its wall time")
    ap.add_argument("--keep", type=Path, default=None, help="keep the private caches and results here")
    args = ap.parse_args()

    from probebank.cli.common import parse_csv, parse_ints

    datasets = parse_csv(args.datasets)
    suite = None if datasets else (args.suite or "bank")
    base = dict(model=args.model, datasets=datasets, suite=suite, layers=parse_ints(args.layers, "--layers"),
                seeds=parse_ints(args.seeds, "--seeds"), limit=args.limit, progress=False)
    shared = cache_root()
    work = args.keep or Path(tempfile.mkdtemp(prefix="probebank-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"shared cache {shared}; private caches and results under {work}")

    warm_s, _, n = _timed_run(RunConfig(**base, out=work / "fill", workers=args.workers), shared)
    print(f"fill (extraction on a cold cache; probes too): {warm_s:.1f} s, {n} records")

    variants: list[tuple[str, dict]] = [("local, 1 worker", dict(workers=1)),
                                        (f"local, {args.workers} workers", dict(workers=args.workers))]
    if not args.no_ray:
        variants.append((f"ray, {args.workers} local CPUs", dict(executor="ray", workers=args.workers)))
    results: list[tuple[str, float, float, int, bool]] = []
    reference = None
    for i, (label, kw) in enumerate(variants):
        cache = _private_cache(shared, work / f"cache-{i}")
        seconds, cpu, n = _timed_run(RunConfig(**base, out=work / f"out-{i}", **kw), cache)
        rows = _records(work / f"out-{i}")
        reference = rows if reference is None else reference
        results.append((label, seconds, cpu, n, rows == reference))
    os.environ[CACHE_ENV] = str(shared)

    one = results[0][1]
    print(f"\n{'executor':<24} {'wall s':>8} {'x 1 worker':>11} {'CPU s':>8} {'records':>8}  same records")
    for label, seconds, cpu, n, same in results:
        print(f"{label:<24} {seconds:8.1f} {one / seconds:10.2f}x {cpu:8.1f} {n:8d}  {'yes' if same else 'NO'}")
    print("(CPU s: this process and its finished children; a Ray's own workers are not its children)")
    if len(results) > 2:
        local_n, ray_n = results[1][1], results[2][1]
        print(f"ray / local at {args.workers} workers: {ray_n / local_n:.2f}x the wall time (goal <= 1.25)")

    _project(work, results, args, base)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    if not all(same for *_, same in results):
        sys.exit("records differ between executors")


def _project(work: Path, results: list[tuple[str, float, float, int, bool]], args: argparse.Namespace, base: dict) -> None:
    """The whole bank at 30 layers and 3 seeds, from the figures just measured (or measured, with --full)."""
    from probebank.cli.common import parse_ints
    from probebank.data.registry import load_catalog

    units = sum(1 for _ in (work / "cache-1" / "units").iterdir())
    parallel_s = results[1][1]
    suite = load_catalog().suite("bank")
    bank = suite.datasets
    seeds = len(parse_ints(args.seeds, "--seeds") or [0])
    per_unit = parallel_s / max(units, 1) * (3 / seeds)
    probe_s = per_unit * len(bank) * BANK_LAYERS
    print(f"\nprojection, whole bank ({len(bank)} datasets x {BANK_LAYERS} layers x 3 seeds, controls on, "
          f"{args.workers} workers): {units} units took {parallel_s:.1f} s here, {per_unit:.2f} s per unit "
          f"-> probing {probe_s / 60:.1f} min (+ the extraction, once: see bench/extract.py for tokens/s)")
    if base.get("limit") != suite.limit or base.get("suite") != "bank":
        print(f"  (units of this run's datasets at --limit {base.get('limit') or 'the suite default'}; the bank's "
              f"units at its limit of {suite.limit} per class are larger, so this is a lower bound)")
    if args.full:
        cfg = RunConfig(model=args.model, suite="bank", seeds=[0, 1, 2], progress=False, out=work / "full",
                        workers=args.workers)
        seconds, _, n = _timed_run(cfg, cache_root())
        print(f"measured, whole bank: {seconds / 60:.1f} min, {n} records (goal < 30 min)")


if __name__ == "__main__":
    main()
