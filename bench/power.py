"""Test rows per class of every feature of a suite at a limit: build-only, no model or tokenizer.

For each dataset of the suite (default: bank) it builds the examples at --limit (default: the suite's
limit in registry.yaml) and at --compare (default 40, the bank's old limit), and prints per dataset the
features, the smallest and median test rows per class at the limit, how many features reach
--target rows (default 100) and how many cannot because the data has fewer examples of the class;
then the median over all features and the cost of the limit: texts and targets built, against --compare.

    PROBEBANK_CACHE=... python bench/power.py [--suite bank] [--limit N] [--compare 40] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from probebank.data.examples import build_dataset
from probebank.data.power import TARGET_TEST_ROWS, feature_test_rows, limit_for
from probebank.data.registry import load_catalog
from probebank.data.sources import SourceUnavailable
from probebank.plugins import get_registered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="bank")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--compare", type=int, default=40)
    ap.add_argument("--target", type=int, default=TARGET_TEST_ROWS)
    ap.add_argument("--json", default=None, help="also write the per-feature figures here")
    ap.add_argument("datasets", nargs="*", help="only these datasets of the suite")
    args = ap.parse_args(argv)

    catalog = load_catalog()
    suite = catalog.suite(args.suite)
    limit = args.limit or suite.limit
    builders = get_registered().builders
    per_feature: list[float] = []
    total_capped = 0
    report: dict[str, dict] = {}
    cost = {"texts": [0, 0], "targets": [0, 0]}
    print(f"suite {args.suite} at limit {limit} (compared with {args.compare}); target {args.target} test rows per class")
    print(f"{'dataset':<32} {'features':>8} {'min':>5} {'median':>6} {'>=target':>8} {'data-capped':>11} {'texts':>12}")
    for name in args.datasets or suite.datasets:
        entry = catalog.get(name)
        t0 = time.perf_counter()
        try:
            built = build_dataset(entry, builders=builders, limit=limit, progress=False)
            small = build_dataset(entry, builders=builders, limit=args.compare, progress=False)
        except SourceUnavailable as exc:
            print(f"{name:<32} skipped: {exc.message}")
            continue
        feats = feature_test_rows(built)
        for i, b in enumerate((small, built)):
            cost["texts"][i] += len(b.dataset)
            cost["targets"][i] += sum(len(t) for t in b.dataset["targets"])
        need = limit_for(args.target, entry.card.split.test_size)
        if not feats:
            print(f"{name:<32} {'value':>8}  (regression: {len(built.dataset)} texts)")
            continue
        n = [f.per_class for f in feats]
        per_feature += n
        reach = sum(v >= args.target for v in n)
        # the data caps a feature when its class has fewer examples than the target needs, or the rest too few negatives
        capped = sum(f.per_class < args.target and (f.positives < min(limit, need) or f.test_neg < f.test_pos)
                     for f in feats)
        total_capped += capped
        report[name] = {"limit": limit, "features": {f.feature: {"positives": f.positives, "test_pos": f.test_pos,
                                                                 "test_neg": f.test_neg} for f in feats},
                        "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name:<32} {len(feats):>8} {min(n):>5} {statistics.median(n):>6.0f} {reach:>8} {capped:>11} "
              f"{len(small.dataset):>5}->{len(built.dataset):<6}", flush=True)
    if per_feature:
        reach = sum(v >= args.target for v in per_feature)
        print(f"\n{len(per_feature)} features: median test rows per class {statistics.median(per_feature):.0f}, "
              f"{reach} ({reach / len(per_feature):.0%}) reach {args.target}, {total_capped} more are capped by the data")
        for what, (old, new) in cost.items():
            print(f"{what} built: {old} at limit {args.compare} -> {new} at limit {limit} ({new / max(old, 1):.2f}x)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"limit": limit, "compare": args.compare, "cost": cost, "datasets": report}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
