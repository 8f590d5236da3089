"""Benchmark: what the controls cost. CPU time of evaluate_store on real stored activations,
controls off vs on, and a breakdown of the work they add, side by side in one run.

    PROBEBANK_CACHE=... python bench/controls.py                       # language-udhr, limit 60, 4 layers
    python bench/controls.py --dataset syntax-upos --layers 0,10,20 --seeds 0,1,2

CPU time (time.process_time) is reported besides wall time because this machine is shared:
CPU seconds are what a quiet machine would take as wall time for this single-threaded work.
The store must exist already (a `probebank run` with the same --limit extracts it).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from probebank.data.examples import build_dataset
from probebank.data.registry import load_catalog
from probebank.data.splits import feature_splits
from probebank.extract.pipeline import extract
from probebank.extract.plan import ExtractionPlan
from probebank.extract.providers import load_model
from probebank.plugins import get_registered
from probebank.probing import controls as ctl
from probebank.probing.evaluate import evaluate_store
from probebank.probing.schema import ProbeConfig, Provenance
from probebank.probing.sweep import sweep_feature


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="language-udhr")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--layers", default="0,10,20,29")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    entry = load_catalog().get(args.dataset)
    built = build_dataset(entry, builders=get_registered().builders, limit=args.limit, progress=False)
    loaded = load_model("smollm2-135m")
    plan = ExtractionPlan(model=loaded.name, dataset=args.dataset, sites=["mlp"], layers=list(range(loaded.n_layers)),
                          aggregation=entry.card.aggregation, max_tokens=entry.card.max_tokens)
    store, _ = extract(loaded, built, plan, progress=False)
    prov = Provenance(probebank_version="bench", model=loaded.name, model_revision=loaded.revision,
                      model_dtype=loaded.dtype, dataset=args.dataset, dataset_version=entry.card.version,
                      dataset_hash=built.content_hash)
    cfg = ProbeConfig(seeds=[int(s) for s in args.seeds.split(",")])
    rows = {}
    for controls in (False, True):
        recs, wall, cpu = timed(lambda c=controls: list(evaluate_store(store, built, prov, cfg, ["mlp"], layers,
                                                                      progress=False, controls=c)))
        rows[controls] = (len(recs), wall, cpu)
        print(f"controls={'on ' if controls else 'off'}: {len(recs):6d} records  wall {wall:7.2f} s  cpu {cpu:7.2f} s")
    print(f"ratio on/off (cpu): {rows[True][2] / rows[False][2]:.2f}x")

    # Breakdown on one layer: the pieces the controls add, per split.
    X = np.asarray(store.layer("mlp", layers[-1]), dtype=np.float32)
    splits = feature_splits(built, store.rows(), seeds=cfg.seeds, balance=cfg.balance, min_rows=cfg.min_rows_per_class)
    _, _, t_rot = timed(lambda: ctl.random_rotation(X, 1234))  # includes the one-off QR
    _, _, t_rot2 = timed(lambda: ctl.random_rotation(X, 1234))
    sp = splits[0]
    _, _, t_dense = timed(lambda: sweep_feature(X[sp.train], sp.y_train, X[sp.test], sp.y_test, method="mean_diff",
                                                k_grid=cfg.k_grid, dense=True))
    _, _, t_sparse = timed(lambda: sweep_feature(X[sp.train], sp.y_train, X[sp.test], sp.y_test, method="mean_diff",
                                                 k_grid=cfg.k_grid, dense=False))
    _, _, t_unit = timed(lambda: ctl.single_unit_f1(X[sp.train], sp.y_train, X[sp.test], sp.y_test))
    print(f"one layer ({X.shape[0]} rows x {X.shape[1]} units), cpu s: rotation {t_rot:.3f} first / {t_rot2:.3f} "
          f"cached Q; sweep with dense {t_dense:.3f}, without dense {t_sparse:.3f}; single units {t_unit:.3f}")


if __name__ == "__main__":
    main()
