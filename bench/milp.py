"""Benchmark: exact k-sparse probes (probebank.probing.exact) per (dataset, feature, layer), k = 1..8.

    python bench/milp.py                                  # stores under $PROBEBANK_CACHE/store + synthetic
    python bench/milp.py --datasets language-udhr --layers 12 --features 2 --time-limit 5
    python bench/milp.py --datasets all --layers 6,14,22 --solvers squares   # every stored dataset
    python bench/milp.py --no-real --synthetic-rows 2000  # synthetic only

For each (dataset, layer, one-vs-rest feature) of a stored SmolLM2 activation store: the
top-m candidates by F-statistic (m=50), then each solver in --solvers for k = 1..8 with
--time-limit seconds per k: "squares" (the default objective: ridge least squares, compiled
leaps-and-bounds search), "bnb" and "oa" (the logistic objective: branch and bound, outer
approximation with a HiGHS master), side by side on the same features. Prints per-solve rows
and a summary per solver: median / max solve time, how many solves proved gap <= tol, the
median gap, how often mean_diff / f_stat / adaptive already had a certified-optimal support
(for that solver's objective), and, with --holdout, the test F1 of the logistic probe fitted
on each solver's and each heuristic's support (rows split once per feature). The naive
big-M hinge MILP (the issue's and the paper's formulation, one HiGHS solve, no warm start)
runs side by side on --naive-ks with --naive-time-limit (the paper used Gurobi with 60 s).
The two solve different losses (logistic vs hinge), so the ratio compares the cost of a
proof, not the same optimum. All timings are wall clock, single-threaded HiGHS, and
depend on machine load. Nothing is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from hinge_milp import naive_bigm_hinge  # bench/hinge_milp.py: this script's folder is on sys.path

from probebank.probing.exact.compare import heuristic_matches
from probebank.probing.exact.selector import MilpSelector, candidates
from probebank.probing.probes import SparseProbe
from probebank.probing.problem import check_xy, column_scaling
from probebank.probing.selection import Selector

HEURISTICS = ("mean_diff", "f_stat", "adaptive")
# solver label -> MilpSelector arguments
SOLVERS = {"squares": {"objective": "squares"},
           "bnb": {"objective": "logistic", "strategy": "bnb"},
           "oa": {"objective": "logistic", "strategy": "oa"}}


class FixedSupport(Selector):
    """A selector that returns given units (to fit the logistic probe on a solver's support)."""

    nested = False

    def __init__(self, units: np.ndarray) -> None:
        self.units = np.asarray(units, dtype=np.int64)

    def supports(self, X: np.ndarray, y: np.ndarray, ks, seed: int = 0) -> dict[int, np.ndarray]:
        return {k: self.units for k in ks}


def test_f1(X: np.ndarray, y: np.ndarray, test: np.ndarray, units: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    probe = SparseProbe(k=len(units), method=FixedSupport(units)).fit(X[~test], y[~test])
    return float(f1_score(y[test], probe.predict(X[test])))


def holdout_mask(y: np.ndarray, frac: float, seed: int = 0) -> np.ndarray:
    """Stratified test rows: `frac` of each class."""
    rng = np.random.default_rng(seed)
    test = np.zeros(y.size, dtype=bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        test[rng.choice(rows, max(1, int(round(frac * rows.size))), replace=False)] = True
    return test


def find_stores(cache: Path, names: list[str], layers: list[int]) -> dict[str, Path]:
    """The largest complete store per dataset name that holds every requested layer."""
    from probebank.extract.store import ActivationStore

    found: dict[str, tuple[int, Path]] = {}
    for meta in sorted((cache / "store").glob("*/meta.json")):
        st = ActivationStore(meta.parent.parent, meta.parent.name)
        # format-1 stores (no shard_sizes) predate the current store layout: skip them
        if not st.complete or "shard_sizes" not in st.meta or "mlp" not in st.meta.get("sites", []):
            continue
        name = st.meta["parts"]["dataset"]["name"]
        if (name in names or names == ["all"]) and set(layers) <= set(st.meta["layers"]):
            n = int(st.meta["n_rows"])
            if name not in found or n > found[name][0]:
                found[name] = (n, meta.parent)
    return {k: v[1] for k, v in found.items()}


def planted(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian units (rank-8 shared part), label from 4 planted units plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 0.5 * rng.standard_normal((n, 8)) @ rng.standard_normal((8, d))
    true = rng.choice(d, 4, replace=False)
    score = X[:, true] @ np.array([2.0, -1.5, 1.0, 0.7]) + 1.0 * rng.standard_normal(n)
    return X, (score > np.median(score)).astype(np.int64)


def bench_feature(tag: str, X: np.ndarray, y: np.ndarray, args: argparse.Namespace, rows: list[dict]) -> None:
    test = holdout_mask(y, args.holdout) if args.holdout > 0 else np.zeros(y.size, dtype=bool)
    if args.holdout > 0 and (y[~test].sum() < 2 or y[test].sum() < 1):
        print(f"{tag}: too few positives for a holdout split, skipped")
        return
    heur_f1: dict[tuple[str, int], float] = {}
    if args.holdout > 0:
        from probebank.probing.methods import get_selector

        ks = list(range(1, args.k_max + 1))
        for h in HEURISTICS:
            for k, S in get_selector(h).set_params(ks=ks, random_state=0).fit(X[~test], y[~test]).supports_.items():
                heur_f1[(h, k)] = test_f1(X, y, test, S)
    for solver in args.solvers.split(","):
        bench_strategy(tag, X[~test], y[~test], args, rows, solver, (X, y, test, heur_f1))


def bench_strategy(tag: str, X: np.ndarray, y: np.ndarray, args: argparse.Namespace, rows: list[dict],
                   strategy: str, holdout: tuple) -> None:
    ks = list(range(1, args.k_max + 1))
    sel = MilpSelector(m=args.m, k_max=args.k_max, time_limit=args.time_limit, warm_adaptive=True, C=args.C,
                       tol=args.tol, **SOLVERS[strategy])
    sup = sel.set_params(ks=ks).fit(X, y).supports_
    match = heuristic_matches(X, y, sel, HEURISTICS)
    Xall, yall, test, heur_f1 = holdout
    Xc, yb = check_xy(X, y)
    cand = candidates(Xc, yb, args.m)
    mean, scale = column_scaling(Xc[:, cand])
    Z = (Xc[:, cand] - mean) / scale
    for k in ks:
        r = sel.results_[k]
        row = {"tag": tag, "strategy": strategy, "k": k, "time": r.time_s, "objective": r.objective, "gap": r.gap, "proven": r.status == "optimal",
               "rounds": r.rounds, "fits": r.n_fits, **{h: match[k][h]["as_good"] for h in HEURISTICS},
               **{h + "_cert": match[k][h]["certified"] for h in HEURISTICS},
               "naive_time": None, "naive_gap": None,
               "f1": test_f1(Xall, yall, test, sup[k]) if args.holdout > 0 else None,
               **{h + "_f1": heur_f1.get((h, k)) for h in HEURISTICS}}
        if k in args.naive_ks and args.naive_time_limit > 0 and strategy == args.solvers.split(",")[0]:
            nv = naive_bigm_hinge(Z, yb, k, time_limit=args.naive_time_limit, C=args.C)
            row["naive_time"], row["naive_gap"] = nv.time_s, nv.gap
        rows.append(row)
        nt = "" if row["naive_time"] is None else f"  naive {row['naive_time']:6.2f}s gap {row['naive_gap']:.1e}"
        ft = "" if row["f1"] is None else f"  F1 {row['f1']:.3f} (f_stat {row['f_stat_f1']:.3f})"
        print(f"{tag:34s} {strategy:7s} k={k}  {r.time_s:6.2f}s  gap {r.gap:.1e}  {'proven' if row['proven'] else 'LIMIT '}  "
              f"rounds {r.rounds:3d} fits {r.n_fits:4d}  heur " +
              "".join(("C" if row[h + "_cert"] else "Y") if row[h] else "." for h in HEURISTICS) + ft + nt, flush=True)


def summary(rows: list[dict], label: str) -> None:
    if not rows:
        return
    t = np.array([r["time"] for r in rows])
    g = np.array([r["gap"] for r in rows])
    proven = sum(r["proven"] for r in rows)
    line = (f"{label:28s} solves {len(rows):4d}  median {np.median(t):6.2f}s  max {t.max():6.2f}s  "
            f"proven {proven:4d}/{len(rows):<4d} median gap {np.median(g):.1e}  max gap {g.max():.1e}  ")
    line += "  ".join(f"{h} {sum(r[h] for r in rows)}({sum(r[h + '_cert'] for r in rows)})/{len(rows)}"
                      for h in HEURISTICS)
    f1 = [r for r in rows if r["f1"] is not None]
    if f1:
        line += f"\n{'':28s} held-out F1 of the logistic probe on the support: exact {np.mean([r['f1'] for r in f1]):.3f}"
        line += "".join(f", {h} {np.mean([r[h + '_f1'] for r in f1]):.3f}" for h in HEURISTICS)
        line += f" (mean over {len(f1)} solves; exact > f_stat in {sum(r['f1'] > r['f_stat_f1'] + 1e-9 for r in f1)}, "
        line += f"< in {sum(r['f1'] < r['f_stat_f1'] - 1e-9 for r in f1)})"
    nv = [r for r in rows if r["naive_time"] is not None]
    if nv:
        tn = np.array([r["naive_time"] for r in nv])
        to = np.array([r["time"] for r in nv])
        line += (f"\n{'':28s} naive big-M hinge on {len(nv)} of them: median {np.median(tn):6.2f}s  "
                 f"max {tn.max():6.2f}s  proven {sum(r['naive_gap'] <= 1e-4 for r in nv)}/{len(nv)}  "
                 f"median gap {np.median([r['naive_gap'] for r in nv]):.1e}  "
                 f"median time ratio naive/milp {np.median(tn / to):.1f}x")
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("PROBEBANK_CACHE", "probebank-cache")))
    ap.add_argument("--datasets", default="language-udhr,code-pygments,syntax-upos", help="names, or all")
    ap.add_argument("--layers", default="4,12,20")
    ap.add_argument("--features", type=int, default=2, help="one-vs-rest features (classes) per dataset")
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--k-max", type=int, default=8)
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the probe objective (probe default 1)")
    ap.add_argument("--tol", type=float, default=None,
                    help="relative gap to prove (default: the selector's, 1e-6 squares / 1e-4 logistic)")
    ap.add_argument("--holdout", type=float, default=0.25,
                    help="fraction of each class held out to score the logistic probe on each support (0 = off)")
    ap.add_argument("--time-limit", type=float, default=5.0, help="seconds per exact solve")
    ap.add_argument("--solvers", default="squares,bnb",
                    help="run side by side on the same features: squares (default objective), bnb, oa (logistic)")
    ap.add_argument("--naive-ks", default="1,4,8")
    ap.add_argument("--naive-time-limit", type=float, default=20.0, help="0 = skip the naive model")
    ap.add_argument("--naive-features", type=int, default=1, help="features per (dataset, layer) given the naive model")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--synthetic-rows", type=int, default=2000)
    ap.add_argument("--synthetic-seeds", type=int, default=2)
    args = ap.parse_args()
    layers = [int(v) for v in args.layers.split(",")]
    naive_ks = {int(v) for v in args.naive_ks.split(",") if v}
    all_rows: dict[str, list[dict]] = {}
    t0 = time.perf_counter()

    if not args.no_real:
        from probebank.extract.store import ActivationStore

        stores = find_stores(args.cache, args.datasets.split(","), layers)
        if not stores:
            sys.exit(f"no complete store with layers {layers} under {args.cache}/store; build one with "
                     f"probebank run --datasets language-udhr,code-pygments --layers {args.layers} --limit 60")
        for name, path in stores.items():
            st = ActivationStore(path.parent, path.name)
            labels = st.rows()["label"]
            classes = np.unique(labels)[: args.features]
            for layer in layers:
                X = np.asarray(st.layer("mlp", layer), dtype=np.float32)
                for fi, c in enumerate(classes):
                    y = (labels == c).astype(np.int64)
                    args.naive_ks = naive_ks if fi < args.naive_features else set()
                    bench_feature(f"{name} L{layer} f{c} n={X.shape[0]}", X, y, args,
                                  all_rows.setdefault(f"{name} (n={X.shape[0]})", []))
    for seed in range(args.synthetic_seeds):
        X, y = planted(args.synthetic_rows, args.m, seed)
        args.naive_ks = naive_ks
        bench_feature(f"synthetic {args.synthetic_rows}x{args.m} s{seed}", X, y, args,
                      all_rows.setdefault(f"synthetic (n={args.synthetic_rows})", []))

    print(f"\nSummary: C={args.C}, k = 1..{args.k_max} over the top {args.m} units by F, time limit {args.time_limit}s "
          f"per k, tol {args.tol or 'default (1e-6 squares, 1e-4 logistic)'}. Heuristic columns: a(b)/n = support as good as the MILP's best in a solves, "
          f"certified optimal in b (per-solve flags: Y = as good, C = certified, . = worse)")
    everything: list[dict] = []
    for label, rows in all_rows.items():
        for st in args.solvers.split(","):
            summary([r for r in rows if r["strategy"] == st], f"{label} {st}")
        everything += rows
    real = [r for label, rows in all_rows.items() if not label.startswith("synthetic") for r in rows]
    strategies = args.solvers.split(",")
    for st in strategies:
        summary([r for r in real if r["strategy"] == st], f"all SmolLM2 features, {st}")
        for k in range(1, args.k_max + 1):
            summary([r for r in real if r["k"] == k and r["strategy"] == st], f"  SmolLM2 {st}, k={k}")
    if len(strategies) > 1:  # same features, same k: do the strategies agree, and how much faster?
        a, b = strategies[0], strategies[1]
        pair = {(r["tag"], r["k"]): r for r in real if r["strategy"] == b}
        both = [(r, pair[(r["tag"], r["k"])]) for r in real if r["strategy"] == a and (r["tag"], r["k"]) in pair]
        if both:
            ratio = np.array([rb["time"] / ra["time"] for ra, rb in both])
            line = f"{a} vs {b} on {len(both)} SmolLM2 solves: median time ratio {b}/{a} {np.median(ratio):.1f}x"
            if SOLVERS[a]["objective"] == SOLVERS[b]["objective"]:  # objectives only compare within one kind
                worse = sum(ra["objective"] > rb["objective"] * (1 + 1e-4) + 1e-9 for ra, rb in both)
                line += f", {a} objective worse than {b}'s in {worse}"
            if both[0][0]["f1"] is not None:
                line += (f", held-out F1 {a} {np.mean([ra['f1'] for ra, _ in both]):.3f} vs "
                         f"{b} {np.mean([rb['f1'] for _, rb in both]):.3f}")
            print(line)
    print(f"total bench time {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
