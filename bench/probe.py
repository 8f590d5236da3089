"""Benchmark: one feature's full k sweep over every layer, fast path vs the reference loop.

    python bench/probe.py                      # synthetic SmolLM2-shaped MLP activations
    python bench/probe.py --layers 6 --repeats 1
    python bench/probe.py --store CACHE/store/KEY --feature 3   # real activations of one stored dataset

The fast path is probebank.probing.sweep.sweep_feature (rank once, standardise once, Newton
solver with warm starts, the dense probe solved in the row span through the n x n Gram
matrix, metrics from one confusion matrix).
The reference is the loop the paper's code runs: for every k, re-rank the units by mean
difference, refit sklearn's LogisticRegression(class_weight="balanced") from scratch on the
top k, score it with sklearn.metrics; plus the dense probe on all units. Both standardise
the selected columns (StandardScaler in the reference) so that they solve the same problem
and the F1 curves must agree; the paper's code fits raw activations with saga instead.
Timings are wall-clock minima over --repeats runs, both paths under the same BLAS thread
limit (--threads). Results go to stdout; nothing is written.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

try:
    from probebank.data.splits import grouped_stratified_split
    from probebank.probing.schema import DEFAULT_K_GRID
    from probebank.probing.sweep import sweep_feature
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
    from probebank.probing.schema import DEFAULT_K_GRID
    from probebank.probing.sweep import sweep_feature

Layers = list[np.ndarray]


# ---------------------------------------------------------------- data

def load_layers(store: Path, feature: int = 0, site: str = "mlp") -> tuple[Layers, np.ndarray]:
    """Every layer of one site from an activation store folder (cache/store/<key>), as float32 arrays,
    with the binary labels of one one-vs-rest feature (class index `feature` vs the rest)."""
    from probebank.extract.store import ActivationStore

    st = ActivationStore(store.parent, store.name)
    if not st.complete:
        raise SystemExit(f"{store} is not a complete activation store")
    y = (st.rows()["label"] == feature).astype(np.int64)
    layers = [np.asarray(st.layer(site, layer), dtype=np.float32) for layer in st.meta["layers"]]
    return layers, y


def synthetic_layers(n_layers: int = 30, d: int = 1536, n_rows: int = 850, n_features: int = 3,
                     feature: int = 0, seed: int = 0) -> tuple[Layers, np.ndarray]:
    """Activations shaped like SmolLM2-135M MLP neurons, with planted features.

    Per unit a log-normal scale (a few 'massive' units up to ~1000), Student-t (df=3)
    values plus a rank-16 shared component, passed through float16 like the store. Each
    feature is carried by 4 units per layer whose strength peaks at one depth.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random((n_rows, n_features)) < np.array([0.5, 0.3, 0.4])[:n_features]).astype(np.int64)
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
    return layers, labels[:, feature]


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
                    C: float, max_iter: int) -> dict[int, float]:
    """The paper-style loop over the k grid (k < width) plus the dense probe: F1 per k."""
    d = Xtr.shape[1]
    return {k: float(reference_point(Xtr, ytr, Xte, yte, k, C, max_iter)["f1"])
            for k in [k for k in k_grid if k < d] + [d]}


def fast_sweep(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, k_grid: list[int],
               C: float, max_iter: int, threads: int | None) -> tuple[dict[int, float], dict[int, float]]:
    pts = sweep_feature(Xtr, ytr, Xte, yte, method="mean_diff", k_grid=k_grid, dense=True, C=C,
                        max_iter=max_iter, seed=0, n_threads=threads)
    return {p.k: p.metrics["f1"] for p in pts}, {p.k: p.wall_time_s for p in pts}


def timed(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=None, help="activation store folder (see load_layers)")
    ap.add_argument("--feature", type=int, default=0, help="which feature to probe")
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--units", type=int, default=1536)
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=2, help="timing runs per path (minimum is reported)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for both paths (0 = library default)")
    ap.add_argument("--verify", type=int, default=12,
                    help="refit sklearn to convergence at this many of the most different points")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show-layers", type=int, nargs="*", default=None,
                    help="layers whose F1 curves are printed (default: first, middle, best, last)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.store is not None:
        layers, y = load_layers(args.store, args.feature)
    else:
        layers, y = synthetic_layers(args.layers, args.units, args.train + args.test, feature=args.feature,
                                     seed=args.seed)
    test_size = args.test / (args.train + args.test) if args.store is None else 0.3
    tr, te = grouped_stratified_split(y, None, test_size, args.seed)
    k_grid = list(DEFAULT_K_GRID)
    threads = None if args.threads == 0 else args.threads
    print(f"data: {len(layers)} layers x {layers[0].shape[1]} units, {tr.size} train / {te.size} test rows, "
          f"{int(y[tr].sum())} train positives ({'store ' + str(args.store) if args.store else 'synthetic'}, "
          f"built in {time.perf_counter() - t0:.1f} s)")
    print(f"k grid: {k_grid} + dense; C={args.C}; BLAS threads: {threads or 'default'}; repeats: {args.repeats}; "
          f"load average before: {os.getloadavg()[0]:.1f} (timings are wall clock: a busy machine inflates them)")

    splits = [(X[tr], y[tr], X[te], y[te]) for X in layers]

    def run_fast() -> list[tuple[dict[int, float], dict[int, float]]]:
        return [fast_sweep(*s, k_grid, args.C, args.max_iter, threads) for s in splits]

    def run_ref() -> list[dict[int, float]]:
        with threadpool_limits(threads) if threads else contextlib.nullcontext():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs ConvergenceWarnings, reported below instead
                return [reference_sweep(*s, k_grid, args.C, args.max_iter) for s in splits]

    run_fast()  # warm-up: imports, plugin registry, BLAS buffers
    t_fast, fast = timed(run_fast, args.repeats)
    t_ref, ref = timed(run_ref, args.repeats)

    fast_f1 = [f for f, _ in fast]
    ks = list(fast_f1[0])
    diffs = np.array([[abs(fast_f1[i][k] - ref[i][k]) for k in ks] for i in range(len(layers))])
    n_layers = len(layers)
    d = layers[0].shape[1]
    best_layer = int(np.argmax([max(f.values()) for f in fast_f1]))
    show = args.show_layers if args.show_layers is not None else sorted({0, n_layers // 2, best_layer, n_layers - 1})

    print()
    print("F1 curves (fast | reference):")
    print("      k " + "".join(f"   layer {layer:>2} fast  ref " for layer in show))
    for k in ks:
        label = "dense" if k == d else str(k)
        print(f"{label:>7} " + "".join(f"          {fast_f1[layer][k]:.3f} {ref[layer][k]:.3f}" for layer in show))
    print()
    print(f"max |F1 fast - F1 reference| over {diffs.size} (layer, k) points: {diffs.max():.4f} "
          f"(points that differ at all: {(diffs > 1e-9).sum()})")
    # Where they differ, refit sklearn to convergence: its lbfgs stops at tol=1e-4 by default,
    # and on float32 input (as the store gives) it also solves in float32.
    differing = [(i, ks[j]) for i, j in zip(*np.nonzero(diffs > 1e-9))]
    differing = sorted(differing, key=lambda p: -abs(fast_f1[p[0]][p[1]] - ref[p[0]][p[1]]))[: args.verify]
    if differing:
        tight = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, k in differing:
                Xtr, ytr, Xte, yte = splits[i]
                f1 = reference_point(Xtr.astype(np.float64), ytr, Xte.astype(np.float64), yte, k, args.C,
                                     10_000, tol=1e-8)["f1"]
                tight.append(abs(fast_f1[i][k] - f1))
        print(f"  against sklearn refitted in float64 with tol=1e-8 at the {len(differing)} most different: "
              f"max |difference| {max(tight):.4f} (points that still differ: {sum(t > 1e-9 for t in tight)})")
    print()
    per_k = {k: np.mean([t[k] for _, t in fast]) * 1e3 for k in ks}
    print("fast path, mean ms per point (incl. its share of ranking + standardising): "
          + ", ".join(f"{'dense' if k == d else k}: {v:.1f}" for k, v in per_k.items()))
    print(f"full sweep, {n_layers} layers:  fast {t_fast:.2f} s ({t_fast / n_layers * 1e3:.0f} ms per layer)  |  "
          f"reference {t_ref:.2f} s ({t_ref / n_layers * 1e3:.0f} ms per layer)  |  speed-up x{t_ref / t_fast:.1f}")
    per_feature_layer = t_fast / n_layers
    print(f"projected default run (35 features x 30 layers, 1 process): {35 * 30 * per_feature_layer / 60:.1f} min")


if __name__ == "__main__":
    main()
