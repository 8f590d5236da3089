"""Probe one stored dataset: every feature x site x layer x method x seed -> ResultRecords.

Splits are made once per seed at the level of rows, grouped by the examples' `group` and
stratified by label; every layer, method and k reuses them, so results are comparable.
With controls on (the default of `probebank run`), every sparse record also carries the
shuffled-label F1, selectivity, the random-rotation F1 and the token-identity baseline of the
same split, method and k (probebank.probing.controls), and each (feature, layer, seed) gets one
`single_unit` record: the units that alone reach F1 >= 0.9. A regression card is probed by
probebank.probing.regression_eval instead (ridge, R2 and Spearman).

Each method's k=1 record also carries `val_f1`: the F1 of a k=1 probe ranked and fitted on an
inner split of the *training* rows only (VAL_SHARE of them held out, grouped and stratified like
the outer split, seeded from the split seed), so a layer can be picked without touching the test
rows (probebank.results.summary). Its cost is one more rank + k=1 fit per (split, method) on
three quarters of the training rows: small next to the sweep over the whole k grid. The dense
probe's C is chosen on the same inner split (probebank.probing.dense; record field `dense_fit`).

The store is anything with `rows()` and `layer(site, layer)` (an ActivationStore, or a view of
one with other labels): probing never imports extraction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from probebank.data.examples import BuiltDataset
from probebank.data.schema import DatasetCard
from probebank.data.splits import FeatureSplit, feature_splits, grouped_stratified_split
from probebank.hashing import fingerprint, json_digest
from probebank.metrics import binary_metrics
from probebank.probing.controls import (
    MONO_F1,
    ROTATION_SEED,
    TOKEN_AGGREGATIONS,
    grouped_shuffle,
    random_rotation,
    single_unit_f1,
    token_identity_f1,
)
from probebank.probing.dense import VAL_SHARE
from probebank.probing.methods import get_selector
from probebank.probing.problem import Encoder, StoredRows
from probebank.probing.regression_eval import evaluate_values
from probebank.probing.schema import HELD_OUT_FIELDS, Controls, ProbeConfig, Provenance, ResultRecord
from probebank.probing.selection import Selector, method_params
from probebank.probing.sweep import SweepPoint, sweep_feature
from probebank.probing.transfer import HeldOut, Joined
from probebank.specs import parse_spec


def identity_encoder(site: str, layer: int, X: np.ndarray) -> np.ndarray:
    return X


def resolve_methods(specs: Sequence[str], registry: Mapping[str, Callable[..., Any]] | None = None) -> dict[str, Selector]:
    """{label: Selector} for method specs such as `mean_diff` or `milp:objective=logistic` (probebank.specs)."""
    out: dict[str, Selector] = {}
    for text in specs:
        spec = parse_spec(text, option="--methods")
        out[spec.label] = get_selector(spec.name, registry, **spec.kwargs())
    return out


def probe_key(store_key: str, provenance: Provenance, cfg: ProbeConfig, sites: Sequence[str],
              layers: Sequence[int], card: DatasetCard, selectors: Mapping[str, Selector],
              controls: bool = False) -> str:
    """Everything that decides a dataset's probe records, including the probing code itself."""
    scored = provenance.model_dump(mode="json")
    for name in HELD_OUT_FIELDS:  # absent unless --test-on: the keys of every earlier probe stay as they were
        if scored.get(name) is None:
            scored.pop(name, None)
    return json_digest({"store": store_key, "provenance": scored,
                        "config": cfg.model_dump(mode="json"), "sites": list(sites), "layers": list(layers),
                        "split": card.split.model_dump(mode="json"), "labels": card.labels.model_dump(mode="json"),
                        "aggregation": card.aggregation, "controls": controls,
                        "methods": {label: [type(s).__qualname__, method_params(s)] for label, s in selectors.items()},
                        "code": fingerprint(evaluate_store, *(type(s) for s in selectors.values()))})


@dataclass
class _Task:
    """One (site, layer, basis, split) to probe, with what every record of it shares."""

    site: str
    layer: int
    basis: str
    split: FeatureSplit
    X_train: np.ndarray
    X_test: np.ndarray
    inner: tuple[np.ndarray, np.ndarray] | None = None  # (inner-train, validation) positions within train

    def record(self, provenance: Provenance, aggregation: str, **fields: Any) -> ResultRecord:
        sp = self.split
        return ResultRecord(provenance=provenance, feature=sp.feature, site=self.site, layer=self.layer,
                            aggregation=aggregation, basis=self.basis, seed=sp.seed, n_train=len(sp.train),
                            n_test=len(sp.test), n_train_pos=int(sp.y_train.sum()), n_test_pos=int(sp.y_test.sum()),
                            **fields)


def evaluate_store(store: StoredRows, built: BuiltDataset, provenance: Provenance, cfg: ProbeConfig,
                   sites: Sequence[str], layers: Sequence[int], *, progress: bool = True,
                   selectors: Mapping[str, Selector] | None = None,
                   encoders: Mapping[str, Encoder] | None = None,
                   controls: bool = False, held_out: HeldOut | None = None) -> Iterator[ResultRecord]:
    """Yield records layer by layer (callers stream them to disk).

    `selectors` maps each method label of `cfg.methods` to its Selector (a run resolves them from
    the plugin registry, probebank.probing.evaluate.resolve_methods); by default they are resolved
    from the built-in methods. `encoders` maps a basis name to a function turning a layer's
    activations into that basis's codes; probes run on each basis's codes in turn (default: the
    neurons themselves). `controls` adds the control probes (no dense baseline for them: it would
    dominate the cost). `held_out` (`--test-on`): every probe is fitted on the training side of the
    card's split and scored on all rows of that test set (probebank.probing.transfer).
    """
    methods = dict(selectors) if selectors is not None else resolve_methods(cfg.methods)
    if built.card.labels.type == "regression":  # ridge probes, R2 and Spearman (probebank.probing.regression_eval)
        if held_out is not None:
            raise ValueError(f"{built.name}: a held-out test set needs a classification card (preflight checks it)")
        yield from evaluate_values(store, built, provenance, cfg, sites, layers, selectors=methods, progress=progress,
                                   encoders=encoders, controls=controls)
        return
    scored: np.ndarray | None = None
    if held_out is not None:
        store = joined = Joined(store, built, held_out)
        scored = joined.scored()
    rows = store.rows()
    groups = joined.groups() if held_out is not None else np.asarray(built.dataset["group"])[rows["example"]]
    splits = feature_splits(built, rows, seeds=cfg.seeds, balance=cfg.balance, min_rows=cfg.min_rows_per_class,
                            groups=groups, scored=scored)
    encoders = dict(encoders or {"identity": identity_encoder})
    split_controls = _split_controls(built, groups, rows, splits) if controls else []
    inner = [validation_split(built, rows, sp, groups) for sp in splits]  # once per split: every layer shares it
    aggregation = built.card.aggregation
    jobs = [(site, layer) for site in sites for layer in layers]
    for site, layer in tqdm(jobs, desc=f"probe {built.name}", unit="layer", disable=not progress, leave=False):
        X_layer = np.asarray(store.layer(site, layer), dtype=np.float32)  # fp16 on disk -> fp32 once per layer
        for basis, encode in encoders.items():
            X = np.asarray(encode(site, layer, X_layer), dtype=np.float32)
            X_rot = random_rotation(X, ROTATION_SEED) if controls else None  # once per layer and basis
            for si, sp in enumerate(splits):
                task = _Task(site, layer, basis, sp, X[sp.train], X[sp.test], inner[si])
                if controls:
                    yield task.record(provenance, aggregation, **_single_unit_fields(task))
                for mi, (label, selector) in enumerate(methods.items()):
                    dense = cfg.dense and mi == 0  # one dense baseline per split, whatever the methods
                    ctrl = split_controls[si] if controls else None
                    yield from _method_records(task, label, selector, cfg, dense, ctrl, X_rot, provenance,
                                               aggregation)


def _sweep(task: _Task, selector: Selector, cfg: ProbeConfig, X_train: np.ndarray, y_train: np.ndarray,
           X_test: np.ndarray, y_test: np.ndarray, dense: bool) -> list[SweepPoint]:
    # the dense probe's C is chosen on the same inner split of the training rows as val_f1
    return sweep_feature(X_train, y_train, X_test, y_test, method=selector, k_grid=cfg.k_grid, dense=dense,
                         C=cfg.C, max_iter=cfg.max_iter, seed=task.split.seed, dense_C_grid=cfg.dense_C_grid,
                         dense_split=task.inner)


def validation_split(built: BuiltDataset, rows: dict[str, np.ndarray], sp: FeatureSplit,
                     row_groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(inner-train, validation) positions into `sp.train`: VAL_SHARE of the training rows, grouped by the
    examples' group when the card's split is, stratified by the binary label, seeded from the split seed.
    `row_groups` is each row's group (default: from the dataset; --test-on rows carry their own).

    None when the training rows cannot be split so (e.g. the positives sit in one group): the records
    then have no `val_f1`, and the summary falls back to the training-F1 pick.
    """
    card = built.card
    if row_groups is None:
        row_groups = np.asarray(built.dataset["group"])[rows["example"]]
    groups = row_groups[sp.train] if card.split.grouped else None
    try:
        inner_train, val = grouped_stratified_split(sp.y_train, groups, VAL_SHARE, card.split.seed + sp.seed)
    except ValueError:
        return None
    return inner_train, val


def _val_f1(task: _Task, selector: Selector, cfg: ProbeConfig) -> float | None:
    """k=1 F1 on the validation rows of a probe ranked and fitted on the inner-train rows: no test row used."""
    if task.inner is None:
        return None
    tr, va = task.inner
    y = task.split.y_train
    points = sweep_feature(task.X_train[tr], y[tr], task.X_train[va], y[va], method=selector, k_grid=[1], dense=False,
                           C=cfg.C, max_iter=cfg.max_iter, seed=task.split.seed)
    return next((float(p.metrics["f1"] or 0.0) for p in points if p.k == 1), None)


def _method_records(task: _Task, label: str, selector: Selector, cfg: ProbeConfig, dense: bool,
                    ctrl: tuple[np.ndarray, np.ndarray, float | None] | None, X_rot: np.ndarray | None,
                    provenance: Provenance, aggregation: str) -> Iterator[ResultRecord]:
    sp = task.split
    points = _sweep(task, selector, cfg, task.X_train, sp.y_train, task.X_test, sp.y_test, dense)
    shuffled: dict[int, float] = {}
    rotated: dict[int, float] = {}
    token_f1 = None
    if ctrl is not None and X_rot is not None:
        y_sh_tr, y_sh_te, token_f1 = ctrl
        shuffled = {p.k: float(p.metrics["f1"] or 0.0)
                    for p in _sweep(task, selector, cfg, task.X_train, y_sh_tr, task.X_test, y_sh_te, False)}
        rotated = {p.k: float(p.metrics["f1"] or 0.0)
                   for p in _sweep(task, selector, cfg, X_rot[sp.train], sp.y_train, X_rot[sp.test], sp.y_test, False)}
    params = method_params(selector)
    val_f1 = _val_f1(task, selector, cfg) if any(p.k == 1 and p.method != "dense" for p in points) else None
    for p in points:
        is_dense = p.method == "dense"
        controls = None
        if ctrl is not None:
            sh = None if is_dense else shuffled.get(p.k)
            controls = Controls(shuffled_f1=sh, rotation_f1=None if is_dense else rotated.get(p.k),
                                selectivity=None if sh is None else float(p.metrics["f1"] or 0.0) - sh,
                                token_identity_f1=token_f1)
        yield task.record(provenance, aggregation, method="dense" if is_dense else label,
                          method_params={} if is_dense else params, k=p.k, metrics=p.metrics,
                          units=[int(u) for u in p.units], coef=[float(c) for c in p.coef],
                          intercept=float(p.intercept), wall_time_s=float(p.wall_time_s), controls=controls,
                          solver=p.solver, train_f1=p.train_f1,
                          val_f1=val_f1 if p.k == 1 and not is_dense else None, dense_fit=p.dense_fit)


def _split_controls(built: BuiltDataset, groups: np.ndarray, rows: dict[str, np.ndarray],
                    splits: Sequence[FeatureSplit]) -> list[tuple[np.ndarray, np.ndarray, float | None]]:
    """Per split: control-task labels (train, test) and the token-identity F1 (`groups`: each row's group)."""
    tokens = rows["token"] if built.card.aggregation in TOKEN_AGGREGATIONS else None
    out = []
    for sp in splits:
        y_tr, y_te = grouped_shuffle(sp.y_train, sp.y_test, groups[sp.train], groups[sp.test], sp.seed)
        out.append((y_tr, y_te, token_identity_f1(tokens, sp.train, sp.y_train, sp.test, sp.y_test)))
    return out


def _single_unit_fields(task: _Task) -> dict[str, Any]:
    """The `single_unit` record: every unit as a threshold classifier; units reaching MONO_F1, best first.

    Its metrics are those of the best single unit on test (a descriptive maximum, as in the paper's
    neuron counts, not a held-out estimate).
    """
    sp = task.split
    rule = single_unit_f1(task.X_train, sp.y_train, task.X_test, sp.y_test)
    f1 = rule.test_f1
    order = np.argsort(-f1, kind="stable")
    best = int(order[0])
    scores = rule.scores(task.X_test, best)
    mono = [int(u) for u in order if f1[u] >= MONO_F1]
    return dict(method="single_unit", k=1, metrics=binary_metrics(sp.y_test, scores > 0, scores),
                method_params={"min_f1": MONO_F1, "n_units": len(mono), "rule": "best train-F1 threshold",
                               "unit_f1": [round(float(f1[u]), 6) for u in (mono or [best])]},
                units=mono or [best], intercept=float(-rule.threshold[best]))
