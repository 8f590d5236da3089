"""Benchmark: the k sweep, fast path vs the paper-style refit loop, for one feature and for a whole dataset.

    python bench/probe.py                      # synthetic SmolLM2-shaped MLP activations, 12 features
    python bench/probe.py --layers 6 --repeats 1
    python bench/probe.py --store CACHE/store/KEY --feature 3   # real activations of one stored dataset
    python bench/probe.py --dense-C-grid 1                     # the dense probe at a fixed C=1 (no inner split)

Two cases, side by side in one run on the same stored activations and split:
  one feature   every k of the grid + the dense probe, for one one-vs-rest feature, over all layers;
  whole dataset the same for every feature (class) of the dataset, over all layers.
The fast path is probebank.probing.sweep (sweep_feature for one feature; sweep_features for all
of them, which standardises each layer once and shares the dense probe's Gram matrix; rank
once, the small k's in one batched Newton solve, warm starts along k, the dense probe solved
in the row span, metrics from one confusion matrix).
The reference is the loop the paper's code runs: for every feature and k, re-rank the units
by mean difference, refit sklearn's LogisticRegression(class_weight="balanced") from scratch
on the top k, score it with sklearn.metrics; plus the dense probe on all units. Both
standardise the selected columns (StandardScaler in the reference) so that they solve the
same problem and the F1 curves must agree; the paper's code fits raw activations with saga
instead. The fast path chooses the dense probe's C on an inner split of the training rows
(probebank.probing.dense, --dense-C-grid); the reference fits its dense probe at the C the fast
path chose, so the F1s compare, and its time does not include that choice. sklearn's lbfgs stops at tol=1e-4 (in float32 on float32 input), so the reference's
F1 is itself off the optimum at a few points: the points where the two differ most are refitted
to convergence (float64, tol=1e-8) and that difference is printed too.
Timings are minima over --repeats runs, wall clock and CPU time of this process, both paths
under the same BLAS thread limit (--threads); on a shared machine the CPU-time ratio is the
steadier one. Results go to stdout; nothing is written.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

try:
    from probebank.data.splits import grouped_stratified_split
    from probebank.probing.schema import DEFAULT_DENSE_C_GRID, DEFAULT_K_GRID
    from probebank.probing.sweep import sweep_feature, sweep_features
except ImportError:  # running from a checkout without an install: map the folders by hand
    import importlib.util

    _root = Path(__file__).resolve().parent.parent
    for _name, _folder in (("probebank", "core"), ("probebank_plugins", "plugins")):
        _spec = importlib.util.spec_from_file_location(_name, _root / _folder / "__init__.py",
                                                       submodule_search_locations=[str(_root / _folder)])
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _mod
        _spec.loader.exec_module(_mod)
    from probebank.data.splits import grouped_stratified_split
    from probebank.probing.schema import DEFAULT_DENSE_C_GRID, DEFAULT_K_GRID
    from probebank.probing.sweep import sweep_feature, sweep_features

Layers = list[np.ndarray]
T = TypeVar("T")


# ---------------------------------------------------------------- data

def load_layers(store: Path, site: str = "mlp") -> tuple[Layers, np.ndarray]:
    """Every layer of one site from an activation store folder (cache/store/<key>), as float32 arrays,
    with the class label of every row (feature f is class f against the rest)."""
    from probebank.extract.store import ActivationStore

    st = ActivationStore(store.parent, store.name)
    if not st.complete:
        raise SystemExit(f"{store} is not a complete activation store")
    labels = np.asarray(st.rows()["label"], dtype=np.int64)
    layers = [np.asarray(st.layer(site, layer), dtype=np.float32) for layer in st.meta["layers"]]
    return layers, labels


def synthetic_layers(n_layers: int = 30, d: int = 1536, n_rows: int = 850, n_features: int = 12,
                     seed: int = 0) -> tuple[Layers, np.ndarray]:
    """Activations shaped like SmolLM2-135M MLP neurons, with planted features.

    Per unit a log-normal scale (a few 'massive' units up to ~1000), Student-t (df=3)
    values plus a rank-16 shared component, passed through float16 like the store. Each
    feature is carried by 4 units per layer whose strength peaks at one depth; feature f is
    present in 50%, 30%, 40%, 50%, ... of the rows. Returns the layers and the (rows, features)
    0/1 labels.
    """
    rng = np.random.default_rng(seed)
    rates = np.resize([0.5, 0.3, 0.4], n_features)
    labels = (rng.random((n_rows, n_features)) < rates).astype(np.int64)
    peak_layer = np.linspace(0.3, 0.8, n_features) * n_layers
    layers: Layers = []
    for layer in range(n_layers):
        scale = rng.lognormal(mean=-1.0, sigma=1.0, size=d)
        scale[rng.choice(d, 3, replace=False)] = rng.lognormal(mean=5.0, sigma=1.0, size=3)
        X = rng.standard_t(3, size=(n_rows, d))
        X += 0.3 * rng.standard_normal((n_rows, 16)) @ rng.standard_normal((16, d))
        for f in range(n_features):
            strength = 3.0 * np.exp(-(((layer - peak_layer[f]) / 8.0) ** 2))
            units = rng.choice(d, 4, replace=False)
            jitter = 1.0 + 0.5 * rng.standard_normal((n_rows, 4))
            X[:, units] += labels[:, f:f + 1] * strength * jitter * np.array([1.0, 0.8, 0.6, 0.5])
        X *= scale
        layers.append(np.clip(X, -60000, 60000).astype(np.float16).astype(np.float32))
    return layers, labels


# ---------------------------------------------------------------- the two paths

def reference_point(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, k: int, C: float,
                    max_iter: int, tol: float = 1e-4) -> dict[str, float]:
    """One k the straightforward way: re-rank, refit sklearn from scratch, score with sklearn."""
    d = Xtr.shape[1]
    if k < d:
        pos = ytr == 1
        mean_diff = np.abs(Xtr[pos].mean(0, dtype=np.float64) - Xtr[~pos].mean(0, dtype=np.float64))
        cols = np.argsort(-mean_diff, kind="stable")[:k]
    else:
        cols = np.arange(d)
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=C, class_weight="balanced", max_iter=max_iter, tol=tol))
    model.fit(Xtr[:, cols], ytr)
    pred = model.predict(Xte[:, cols])
    score = model.decision_function(Xte[:, cols])
    return {"f1": skm.f1_score(yte, pred, zero_division=0), "accuracy": skm.accuracy_score(yte, pred),
            "precision": skm.precision_score(yte, pred, zero_division=0),
            "recall": skm.recall_score(yte, pred, zero_division=0), "mcc": skm.matthews_corrcoef(yte, pred),
            "roc_auc": skm.roc_auc_score(yte, score)}


def reference_sweep(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, k_grid: list[int],
                    C: float, max_iter: int, dense_C: float) -> dict[int, float]:
    """The paper-style loop over the k grid (k < width) plus the dense probe (at dense_C): F1 per k."""
    d = Xtr.shape[1]
    return {k: float(reference_point(Xtr, ytr, Xte, yte, k, dense_C if k >= d else C, max_iter)["f1"])
            for k in [k for k in k_grid if k < d] + [d]}


def _dense_C(points: list) -> float:
    """The C the sweep's dense probe was fitted at."""
    fit = points[-1].dense_fit
    assert fit is not None
    return float(fit.C)


def fast_sweep(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, k_grid: list[int],
               C: float, max_iter: int, threads: int | None,
               dense_C_grid: list[float]) -> tuple[dict[int, float], dict[int, float], float]:
    pts = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=k_grid, dense=True, C=C,
                        max_iter=max_iter, seed=0, n_threads=threads, dense_C_grid=dense_C_grid)
    return {p.k: p.metrics["f1"] for p in pts}, {p.k: p.wall_time_s for p in pts}, _dense_C(pts)


def fast_dataset(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Yte: np.ndarray, k_grid: list[int],
                 C: float, max_iter: int, threads: int | None,
                 dense_C_grid: list[float]) -> list[tuple[dict[int, float], float]]:
    """Every feature (column of Y) of one layer in one call: F1 per k and the dense C, per feature."""
    out = sweep_features(Xtr, list(Ytr.T), Xte, list(Yte.T), method="mean_diff", k_grid=k_grid, dense=True, C=C,
                         max_iter=max_iter, seed=0, n_threads=threads, dense_C_grid=dense_C_grid)
    return [({p.k: p.metrics["f1"] for p in pts}, _dense_C(pts)) for pts in out]


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, float, T]:
    """(best wall seconds, best CPU seconds of this process, last result) over `repeats` runs."""
    best, best_cpu = float("inf"), float("inf")
    out = None
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    assert out is not None
    return best, best_cpu, out


Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # X train, y train, X test, y test


def f1_differences(fast: list[dict[int, float]], ref: list[dict[int, float]], splits: list[Split], C: float,
                   verify: int, dense_Cs: list[float]) -> tuple[np.ndarray, list[float]]:
    """|F1 fast - F1 reference| per (curve, k), and at the `verify` most different points the
    difference to sklearn refitted to convergence (in float64, tol=1e-8; the dense point at its curve's C)."""
    ks = list(fast[0])
    diffs = np.array([[abs(fast[i][k] - ref[i][k]) for k in ks] for i in range(len(fast))])
    differing = [(i, ks[j]) for i, j in zip(*np.nonzero(diffs > 1e-9))]
    differing = sorted(differing, key=lambda p: -abs(fast[p[0]][p[1]] - ref[p[0]][p[1]]))[:verify]
    tight = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, k in differing:
            Xtr, ytr, Xte, yte = splits[i]
            f1 = reference_point(Xtr.astype(np.float64), ytr, Xte.astype(np.float64), yte, k,
                                 dense_Cs[i] if k >= Xtr.shape[1] else C, 10_000, tol=1e-8)["f1"]
            tight.append(abs(fast[i][k] - f1))
    return diffs, tight


def report_case(title: str, n_curves: int, t_fast: tuple[float, float], t_ref: tuple[float, float],
                diffs: np.ndarray, tight: list[float]) -> float:
    (w_fast, c_fast), (w_ref, c_ref) = t_fast, t_ref
    print(f"{title}: {n_curves} k curves x {diffs.shape[1]} points")
    print(f"  wall  fast {w_fast:.2f} s | reference {w_ref:.2f} s | speed-up x{w_ref / w_fast:.1f}")
    print(f"  CPU   fast {c_fast:.2f} s | reference {c_ref:.2f} s | speed-up x{c_ref / c_fast:.1f}")
    print(f"  max |F1 fast - F1 reference| over {diffs.size} points: {diffs.max():.4f} "
          f"(points that differ at all: {(diffs > 1e-9).sum()})")
    if tight:
        print(f"    against sklearn refitted in float64 with tol=1e-8 at the {len(tight)} most different: "
              f"max |difference| {max(tight):.4f} (points that still differ: {sum(t > 1e-9 for t in tight)})")
    return w_ref / w_fast


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None, help="activation store folder (see load_layers)")
    ap.add_argument("--feature", type=int, default=0, help="which feature the one-feature case probes")
    ap.add_argument("--features", type=int, default=12, help="synthetic data: how many features the dataset has")
    ap.add_argument("--layers", type=int, default=30, help="synthetic layers (with --store: the first N stored)")
    ap.add_argument("--units", type=int, default=1536)
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=2, help="timing runs per path (minimum is reported)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for both paths (0 = library default)")
    ap.add_argument("--verify", type=int, default=12,
                    help="refit sklearn to convergence at this many of the most different points (per case)")
    ap.add_argument("--no-dataset", action="store_true", help="skip the whole-dataset case")
    ap.add_argument("--C", type=float, default=1.0, help="the top-k probes' C")
    ap.add_argument("--dense-C-grid", type=float, nargs="+", default=list(DEFAULT_DENSE_C_GRID),
                    help="the dense probe's Cs, chosen on an inner split of the training rows (one value: fixed)")
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show-layers", type=int, nargs="*", default=None,
                    help="layers whose F1 curves are printed (default: first, middle, best, last)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.store is not None:
        layers, classes = load_layers(args.store)
        layers = layers[:args.layers]  # --layers N: the first N stored layers
        Y = (classes[:, None] == np.unique(classes)[None, :]).astype(np.int64)  # one-vs-rest, every class
        test_size = 0.3
    else:
        layers, Y = synthetic_layers(args.layers, args.units, args.train + args.test, args.features, seed=args.seed)
        test_size = args.test / (args.train + args.test)
    if not 0 <= args.feature < Y.shape[1]:
        raise SystemExit(f"--feature {args.feature}: the data has features 0..{Y.shape[1] - 1}")
    y = Y[:, args.feature]
    tr, te = grouped_stratified_split(y, None, test_size, args.seed)
    k_grid = list(DEFAULT_K_GRID)
    threads = None if args.threads == 0 else args.threads
    source = "store " + str(args.store) if args.store else "synthetic"
    print(f"data: {len(layers)} layers x {layers[0].shape[1]} units, {tr.size} train / {te.size} test rows, "
          f"{Y.shape[1]} features, feature {args.feature} with {int(y[tr].sum())} train positives ({source}, "
          f"built in {time.perf_counter() - t0:.1f} s)")
    print(f"k grid: {k_grid} + dense (C from {args.dense_C_grid}); C={args.C}; BLAS threads: {threads or 'default'}; repeats: {args.repeats}; "
          f"load average before: {os.getloadavg()[0]:.1f} (a busy machine inflates wall times most)")

    splits: list[Split] = [(X[tr], y[tr], X[te], y[te]) for X in layers]

    def run_fast() -> list[tuple[dict[int, float], dict[int, float], float]]:
        return [fast_sweep(*s, k_grid, args.C, args.max_iter, threads, args.dense_C_grid) for s in splits]

    def run_ref(some: list[Split], dense_Cs: list[float]) -> list[dict[int, float]]:
        # a fresh limit per run: threadpool_limits applies its limit when created, not on entry
        with threadpool_limits(threads) if threads else contextlib.nullcontext(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs ConvergenceWarnings, reported below instead
            return [reference_sweep(*s, k_grid, args.C, args.max_iter, dc) for s, dc in zip(some, dense_Cs)]

    run_fast()  # warm-up: imports, plugin registry, BLAS buffers
    w_fast, c_fast, fast = timed(run_fast, args.repeats)
    fast_Cs = [c for _, _, c in fast]
    w_ref, c_ref, ref = timed(lambda: run_ref(splits, fast_Cs), args.repeats)
    fast_f1 = [f for f, _, _ in fast]
    diffs, tight = f1_differences(fast_f1, ref, splits, args.C, args.verify, fast_Cs)

    n_layers = len(layers)
    d = layers[0].shape[1]
    ks = list(fast_f1[0])
    best_layer = int(np.argmax([max(f.values()) for f in fast_f1]))
    show = args.show_layers if args.show_layers is not None else sorted({0, n_layers // 2, best_layer, n_layers - 1})
    print()
    print(f"F1 curves of feature {args.feature} (fast | reference):")
    print("      k " + "".join(f"   layer {layer:>2} fast  ref " for layer in show))
    for k in ks:
        label = "dense" if k == d else str(k)
        print(f"{label:>7} " + "".join(f"          {fast_f1[layer][k]:.3f} {ref[layer][k]:.3f}" for layer in show))
    print()
    per_k = {k: np.mean([t[k] for _, t, _ in fast]) * 1e3 for k in ks}
    print("fast path, mean ms per point (incl. its share of ranking + standardising): "
          + ", ".join(f"{'dense' if k == d else k}: {v:.1f}" for k, v in per_k.items()))
    print()
    ratios = [report_case(f"one feature over {n_layers} layers", n_layers, (w_fast, c_fast), (w_ref, c_ref),
                          diffs, tight)]
    if not args.no_dataset:
        # Every feature on the same split (the split of --feature): what sweep_features shares.
        Ytr, Yte = Y[tr], Y[te]
        layer_data = [(X[tr], Ytr, X[te], Yte) for X in layers]
        feature_splits = [(X[tr], Ytr[:, f], X[te], Yte[:, f]) for X in layers for f in range(Y.shape[1])]
        w_dfast, c_dfast, dfast = timed(lambda: [fast_dataset(*s, k_grid, args.C, args.max_iter, threads,
                                                              args.dense_C_grid) for s in layer_data], args.repeats)
        dfast_f1 = [curve for per_layer in dfast for curve, _ in per_layer]  # same order as feature_splits
        dfast_Cs = [c for per_layer in dfast for _, c in per_layer]
        w_dref, c_dref, dref = timed(lambda: run_ref(feature_splits, dfast_Cs), args.repeats)
        ddiffs, dtight = f1_differences(dfast_f1, dref, feature_splits, args.C, args.verify, dfast_Cs)
        ratios.append(report_case(f"whole dataset ({Y.shape[1]} features) over {n_layers} layers",
                                  len(feature_splits), (w_dfast, c_dfast), (w_dref, c_dref), ddiffs, dtight))
        print(f"  per (feature, layer): fast {w_dfast / len(feature_splits) * 1e3:.1f} ms, "
              f"reference {w_dref / len(feature_splits) * 1e3:.1f} ms")
    print()
    print("speed-up (wall): " + " | ".join(f"x{r:.1f}" for r in ratios)
          + f"; load average after: {os.getloadavg()[0]:.1f}")
    per_feature_layer = w_fast / n_layers
    print(f"projected default run (35 features x 30 layers, 1 process, one at a time): "
          f"{35 * 30 * per_feature_layer / 60:.1f} min")


if __name__ == "__main__":
    main()
