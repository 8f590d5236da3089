"""Bases inside a run: fit (or reuse) each basis per site x layer on the training corpus, hand
evaluate_store one encoder per basis, stamp records with basis_key / basis_flags, and write
per-basis metrics (BasisRecord) to <out>/bases.ndjson.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probebank.bases import corpus as corpus_module
from probebank.bases.corpus import OverlapIndex, build_corpus, corpus_texts
from probebank.bases.metrics import coverage, fvu, unit_activity
from probebank.bases.schema import BasisRecord
from probebank.bases.spec import BasisSpec, make_basis, parse_spec
from probebank.bases.store import BasisStore, FittedBasis, basis_params, code_version, fit_or_load
from probebank.data.examples import BuiltDataset
from probebank.data.splits import feature_splits
from probebank.data.values import value_splits
from probebank.errors import ConfigError
from probebank.extract.pipeline import extract
from probebank.extract.plan import ExtractionPlan
from probebank.jsonl import append_jsonl, read_jsonl
from probebank.probing.controls import best_single_unit
from probebank.probing.schema import ProbeConfig, Provenance, ResultRecord
from probebank.probing.stats import mean_known

BASES_FILE = "bases.ndjson"  # not *.jsonl: results.read_records globs those as ResultRecords
OVERLAP_FLAG = "train-overlaps-test"
TRAINING_ROWS_RULE = "position>0;norm<=10*median"  # part of every fit key: see training_rows


@dataclass
class BasisRun:
    """The fitted bases of one run, by (label, site, layer)."""

    specs: list[BasisSpec]
    fitted: dict[tuple[str, str, int], FittedBasis] = field(default_factory=dict)
    corpus: list[str] = field(default_factory=list)
    corpus_hash: str | None = None
    overlap: OverlapIndex | None = None

    @classmethod
    def create(cls, specs: Sequence[str], loaded: Any, sites: Sequence[str], layers: Sequence[int],
               factories: Mapping[str, Callable[..., Any]], *, corpus_tokens: int | None = None,
               corpus: Sequence[str] | None = None, store: BasisStore | None = None, seed: int = 0,
               progress: bool = True, log: Callable[[str], None] = print) -> BasisRun:
        """Fit or load every basis for every site x layer. The corpus is extracted only if a fit is needed."""

        parsed = [parse_spec(s) for s in specs]
        labels = [p.label for p in parsed]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"a basis is listed twice in {labels}", field="--bases", fix="list each basis once")
        run = cls(parsed)
        needs_corpus = any(getattr(factories.get(p.name), "trainable", True) for p in parsed if p.name in factories)
        if corpus is None and needs_corpus:
            corpus = corpus_texts(corpus_tokens or corpus_module.DEFAULT_TOKENS)
        texts = list(corpus or [])
        built = build_corpus(texts) if texts else None
        run.corpus, run.corpus_hash = texts, (built.content_hash if built else None)
        run.overlap = OverlapIndex.of(texts)
        corpus_store = None

        def training(site: str, layer: int) -> Callable[[], np.ndarray]:
            def get() -> np.ndarray:
                nonlocal corpus_store
                if corpus_store is None:
                    assert built is not None  # training() is only handed out when there is a corpus
                    log(f"bases: extracting the training corpus ({len(texts)} passages) ...")
                    plan = ExtractionPlan(model=loaded.name, dataset=built.name, sites=list(sites), layers=list(layers),
                                          aggregation="each", max_tokens=built.card.max_tokens)
                    corpus_store, _ = extract(loaded, built, plan, progress=progress)
                return training_rows(np.asarray(corpus_store.layer(site, layer), dtype=np.float32),
                                     corpus_store.rows()["position"])
            return get

        for site in sites:
            width = loaded.widths[site]
            for layer in layers:
                for spec in parsed:
                    basis = make_basis(spec, factories, random_state=seed)
                    set_site = getattr(basis, "set_site", None)  # e.g. sae: checks its recorded hook against it
                    if callable(set_site):
                        set_site(site, loaded.check_layer(layer) if hasattr(loaded, "check_layer") else layer)
                    key_parts = {"model": loaded.name, "revision": loaded.revision, "dtype": loaded.dtype,
                                 "site": site, "layer": layer, "corpus": run.corpus_hash,
                                 "rows": TRAINING_ROWS_RULE}
                    fb = fit_or_load(spec, basis, key_parts, training(site, layer) if built else None, store,
                                     width=width)
                    if fb.key is not None:
                        how = "reused" if fb.reused else f"fitted in {fb.meta.get('fit_seconds', 0):.1f} s"
                        log(f"bases: {spec.label} {site} L{layer} {how} ({fb.key})")
                    run.fitted[(spec.label, site, layer)] = fb
        return run

    # ---- probing --------------------------------------------------------------------------
    def encoders(self) -> dict[str, Callable[[str, int, np.ndarray], np.ndarray]]:
        def encoder(label: str) -> Callable[[str, int, np.ndarray], np.ndarray]:
            return lambda site, layer, X: self.fitted[(label, site, layer)].basis.transform(X)
        return {spec.label: encoder(spec.label) for spec in self.specs}

    def probe_key(self, key: str) -> str:
        """Fold the fitted bases' keys into a probe key, so cached records never mix bases."""

        # Bases without a fit key (identity, rotation) still change records when their code or settings do.
        blob = json.dumps({"probe": key, "bases": sorted(
            (f"{lab}|{site}|{layer}", fb.key or f"{code_version(fb.basis)}:{json.dumps(basis_params(fb.basis), sort_keys=True)}")
            for (lab, site, layer), fb in self.fitted.items())})
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def flags(self, built: BuiltDataset, test_examples: Iterable[int]) -> list[str]:
        """['train-overlaps-test'] if a test text of the dataset overlaps the training corpus."""
        if self.overlap is None or not self.corpus:
            return []
        texts = built.dataset["text"]
        return [OVERLAP_FLAG] if any(self.overlap.overlaps(texts[int(i)]) for i in test_examples) else []

    def annotate(self, records: Iterable[ResultRecord], built: BuiltDataset, store: Any,
                 cfg: ProbeConfig) -> Iterator[ResultRecord]:
        """Stamp each record with its basis's key, and the overlap flag for trained bases."""
        return self._stamp(records, self.flags(built, test_side_examples(built, store, cfg)))

    def _stamp(self, records: Iterable[ResultRecord], flags: list[str]) -> Iterator[ResultRecord]:
        for r in records:
            fb = self.fitted.get((r.basis, r.site, r.layer))
            if fb is None:
                yield r
                continue
            trained = fb.key is not None and getattr(fb.basis, "trainable", False)
            yield r.model_copy(update={"basis_key": fb.key, "basis_flags": list(flags) if trained else []})

    # ---- metrics --------------------------------------------------------------------------
    def metrics(self, store: Any, built: BuiltDataset, provenance: Provenance, cfg: ProbeConfig,
                records: Sequence[ResultRecord], flags: list[str]) -> list[BasisRecord]:

        rows = store.rows()
        splits = feature_splits(built, rows, seeds=cfg.seeds, balance=cfg.balance, min_rows=cfg.min_rows_per_class)
        out: list[BasisRecord] = []
        method = cfg.methods[0]
        for (label, site, layer), fb in self.fitted.items():
            X = np.asarray(store.layer(site, layer), dtype=np.float32)
            codes = np.asarray(fb.basis.transform(X), dtype=np.float32)
            per_feature: dict[str, list[float]] = {}
            for sp in splits:
                _, _, f1 = best_single_unit(codes[sp.train], sp.y_train, codes[sp.test], sp.y_test)
                per_feature.setdefault(sp.feature, []).append(f1)
            best = {f: float(np.mean(v)) for f, v in per_feature.items()}
            curve: dict[int, list[float]] = {}
            for r in records:
                if r.basis == label and r.site == site and r.layer == layer and r.method == method:
                    curve.setdefault(r.k, []).append(r.f1)
            dead, always = unit_activity(codes)
            trained = fb.key is not None and getattr(fb.basis, "trainable", False)
            out.append(BasisRecord(
                provenance=provenance, category=built.card.category, basis=label, basis_key=fb.key,
                basis_flags=list(flags) if trained else [], site=site, layer=layer, n_units=int(codes.shape[1]),
                n_rows=int(codes.shape[0]), n_features=len(best), method=method,
                f1_at_k={k: float(np.mean(v)) for k, v in sorted(curve.items())}, best_unit_f1=best,
                best_unit_f1_mean=float(np.mean(list(best.values()))) if best else 0.0,
                coverage_80=coverage(list(best.values()), 0.8), coverage_90=coverage(list(best.values()), 0.9),
                dead_fraction=dead, always_on_fraction=always,
                fvu=fvu(X, fb.basis.inverse_transform(codes)) if fb.can_decode else None,
                train_rows=fb.meta.get("n_train"), fit_seconds=fb.meta.get("fit_seconds")))
        return out

    def write_metrics(self, out: Path, store: Any, built: BuiltDataset, provenance: Provenance, cfg: ProbeConfig,
                      records: Sequence[ResultRecord]) -> int:
        """Append this dataset's BasisRecords to <out>/bases.ndjson (k curves from the run's records of it)."""
        flags = self.flags(built, test_side_examples(built, store, cfg))
        return append_jsonl(Path(out) / BASES_FILE, self.metrics(store, built, provenance, cfg, records, flags))


def training_rows(X: np.ndarray, positions: np.ndarray, max_norm_ratio: float = 10.0) -> np.ndarray:
    """Corpus rows a basis trains on: not the first token of a passage, and no massive-activation row.

    Causal LMs park huge values on the first token and a few others (SmolLM2's residual reaches
    ~26,000 there, against ~100 elsewhere); left in, they dominate the variance, so PCA and the
    SAE spend their capacity on them and FVU looks near perfect while ordinary tokens are lost.
    """
    norms = np.linalg.norm(X, axis=1)
    keep = (np.asarray(positions) > 0) & (norms <= max_norm_ratio * float(np.median(norms)))
    return X[keep]


def test_side_examples(built: BuiltDataset, store: Any, cfg: ProbeConfig) -> set[int]:
    """Example indices on the test side of any seed's split (what the overlap check looks at)."""

    rows = store.rows()
    if built.card.labels.type == "regression":  # the probes' own splits: grouped, stratified on value bins
        return {int(e) for sp in value_splits(built, rows, seeds=cfg.seeds, min_rows=cfg.min_rows_per_class)
                for e in rows["example"][sp.test]}
    return {int(e) for sp in feature_splits(built, rows, seeds=cfg.seeds, balance=cfg.balance, min_rows=cfg.min_rows_per_class) for e in rows["example"][sp.test]}


def read_basis_records(folder: Path) -> list[BasisRecord]:

    path = Path(folder) / BASES_FILE if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        raise ConfigError(f"no {BASES_FILE} here", file=path,
                          fix="run `probebank run --bases identity,pca,...` with this --out folder first")
    return read_jsonl(path, BasisRecord, what="basis record",
                      fix=f"re-run the bases step; do not edit {BASES_FILE} by hand")


def compare(records: Sequence[BasisRecord], category: str | None = None) -> list[dict]:
    """One row per (basis, site): means over datasets and layers, ranked by k=1 F1."""
    groups: dict[tuple[str, str], list[BasisRecord]] = {}
    for r in records:
        if category is None or r.category == category:
            groups.setdefault((r.basis, r.site), []).append(r)
    rows: list[dict[str, Any]] = []
    for (basis, site), rs in groups.items():
        rows.append({"basis": basis, "site": site, "n": len(rs), "units": int(np.median([r.n_units for r in rs])),
                     "f1_k1": mean_known(r.f1_at_k.get(1) for r in rs),
                     "best_unit_f1": mean_known(r.best_unit_f1_mean for r in rs),
                     "coverage_80": mean_known(r.coverage_80 for r in rs),
                     "coverage_90": mean_known(r.coverage_90 for r in rs),
                     "dead": mean_known(r.dead_fraction for r in rs),
                     "always_on": mean_known(r.always_on_fraction for r in rs),
                     "fvu": mean_known(r.fvu for r in rs), "flags": sorted({f for r in rs for f in r.basis_flags})})
    rows.sort(key=lambda r: (str(r["site"]), -(float(r["f1_k1"]) if r["f1_k1"] is not None else -1.0)))
    return rows
