"""One causal check end to end: the found units of a probe record, ablated and steered, against the null.

`find_target` picks, from result records, the probe that found a unit (or its k-set) and a downstream
probe of the same feature at a later layer; `causal_check` runs the check on a loaded model;
`cached_check` keys it by content (the source record's provenance and seed, the store's checksums, the
units, the settings, the downstream probe and the code; not the method that found the units) and keeps it
in the cache as one `causal.jsonl` entry, loading the model only when the entry is not there yet.

Texts come from the test rows of the source probe's own split (seed), so nothing the probe was
fitted on is measured: up to `texts` of the feature's examples and as many control examples (the
other classes; one-vs-rest balanced as the probe saw them). The relevant tokens are counted on the
training rows' texts.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probebank.cache.entry import reuse_or_make
from probebank.causal.ablate import UnitEdit, ablation_edit, check_units
from probebank.causal.effects import Contrast, TextSet, effect, relevant_tokens, token_ids
from probebank.causal.head import output_head
from probebank.causal.null import draw_matched, permutation_p, unit_variances, variance_ratios
from probebank.causal.record import CAUSAL_FILE, CausalRecord, CausalSettings, NullSummary, SteeringResult, read_causal
from probebank.causal.steer import RowSet, class_mean_difference, downstream_probe, flips, steer_edit
from probebank.data.align import align_examples
from probebank.data.examples import BuiltDataset
from probebank.data.splits import FeatureSplit, feature_splits
from probebank.errors import ConfigError, ModelError
from probebank.extract.device import model_device
from probebank.extract.loaded import LoadedModel
from probebank.extract.store import ActivationStore
from probebank.hashing import fingerprint, json_digest
from probebank.paths import cache_dir
from probebank.probing.schema import ProbeConfig, ResultRecord

NOT_SOURCES = ("dense", "single_unit")  # records whose units are not a fitted k-sparse probe's


@dataclass
class Target:
    """What a check is about: the probe record that found the units, the units, and a downstream probe."""

    record: ResultRecord
    units: list[int]
    downstream: ResultRecord | None = None
    downstream_note: str | None = None


def find_target(records: Sequence[ResultRecord], model: str, site: str, layer: int, unit: int, *,
                feature: str | None = None, k: int | None = None, method: str | None = None,
                probe_layer: int | None = None, probe_k: int | None = None,
                layers_stored: Sequence[int] | None = None, datasets: Sequence[str] | None = None) -> Target:
    """The probe (seed 0, identity basis) that selected `unit` at (site, layer): with `k`, its k-sparse probe
    and all k units; else the smallest k that holds the unit, and the unit alone. `feature` is
    DATASET/FEATURE; `datasets` limits the search to those datasets. The downstream probe is the same feature, method and seed at `probe_layer` (default:
    the first later layer with a record and, when `layers_stored` is given, stored activations) with k
    `probe_k` (default: the number of units checked)."""
    want_ds, _, want_feat = (feature or "").partition("/")
    if feature is not None and not want_feat:
        raise ConfigError(f"'{feature}' is not DATASET/FEATURE", field="--feature",
                          fix="write e.g. language-udhr/fra (the dataset, a slash, the feature)")
    mine = [r for r in records if r.provenance.model == model and r.site == site and r.basis == "identity"
            and r.method not in NOT_SOURCES and r.seed == 0 and not r.regression
            and (method is None or r.method == method)
            and (not datasets or r.provenance.dataset in datasets)
            and (feature is None or (r.provenance.dataset, r.feature) == (want_ds, want_feat))]
    here = [r for r in mine if r.layer == layer and unit in r.units and (k is None or r.k == k)]
    if not here:
        what = f"feature {feature}" if feature else "any feature"
        raise ConfigError(f"no seed-0 {method or 'sparse'} probe of {model} at {site} layer {layer} "
                          f"{'with k=' + str(k) + ' ' if k else ''}selected unit {unit} for {what} in the searched "
                          "records", field="UNIT",
                          fix="pick a unit its neuron card lists as selected, pass --results with the run's folder, "
                              "or name the probe with --feature DATASET/FEATURE (and --k)")
    source = min(here, key=lambda r: (r.k, -r.score, r.provenance.dataset, r.feature, r.method))
    units = list(source.units) if k is not None else [unit]
    target = Target(source, units)
    later = [r for r in mine if r.provenance.dataset == source.provenance.dataset and r.feature == source.feature
             and r.method == source.method and r.layer > layer and r.k == (probe_k or len(units))
             and (probe_layer is None or r.layer == probe_layer)
             and (layers_stored is None or r.layer in layers_stored)]
    if later:
        target.downstream = min(later, key=lambda r: r.layer)
    else:
        target.downstream_note = (f"no {source.method} k={probe_k or len(units)} probe of "
                                  f"{source.provenance.dataset}/{source.feature} at "
                                  f"{'layer ' + str(probe_layer) if probe_layer is not None else 'a later layer'}"
                                  " with stored activations (run the probes at a later layer too)")
    return target


def feature_split(built: BuiltDataset, rows: dict[str, np.ndarray], feature: str, seed: int) -> FeatureSplit:
    """The split the probes of `feature` used at `seed` (the card's split, one-vs-rest balanced)."""
    cfg = ProbeConfig()
    for sp in feature_splits(built, rows, seeds=[seed], balance=cfg.balance, min_rows=cfg.min_rows_per_class):
        if sp.feature == feature:
            return sp
    raise ConfigError(f"the stored rows of {built.name} give no split for feature '{feature}' at seed {seed}",
                      field="--feature", fix=f"use one of the card's classes: {', '.join(built.card.labels.classes)}")


def check_key(target: Target, store: ActivationStore, settings: CausalSettings, device: str) -> str:
    """Everything that decides a check's numbers, the code and the kind of device included. The source probe's
    method and k are not among them: they only say how the units were found, so the same units found by two
    methods are ablated once (its seed is: it picks the texts)."""
    r, d = target.record, target.downstream
    return json_digest({"device": device,
        "provenance": r.provenance.model_dump(mode="json"), "store": f"{store.key}:{store.digest}",
        "feature": r.feature, "site": r.site, "layer": r.layer, "units": target.units,
        "seed": r.seed, "settings": settings.model_dump(mode="json"),
        "downstream": None if d is None else [d.site, d.layer, d.method, d.k, d.seed, d.units, d.coef, d.intercept],
        "code": fingerprint(causal_check)})


def _examples(split: FeatureSplit, rows: dict[str, np.ndarray], test: bool) -> tuple[list[int], list[int]]:
    """(feature's examples, control examples) of the split's test (or training) rows; an example with any
    positive row is the feature's."""
    idx, y = (split.test, split.y_test) if test else (split.train, split.y_train)
    examples = rows["example"][idx]
    pos = sorted({int(e) for e in examples[y == 1]})
    ctrl = sorted({int(e) for e in examples[y == 0]} - set(pos))
    return pos, ctrl


def _null(observed: float, values: list[float], alternative: str) -> NullSummary:
    arr = np.asarray(values, dtype=np.float64)
    return NullSummary(observed=observed, mean=float(arr.mean()), sd=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                       p_value=permutation_p(observed, arr, alternative), alternative=alternative,  # type: ignore[arg-type]
                       draws=int(arr.size), values=[float(v) for v in arr])


def causal_check(loaded: LoadedModel, target: Target, built: BuiltDataset, store: ActivationStore,
                 settings: CausalSettings, *, key: str = "", progress: bool = False) -> CausalRecord:
    """Run one check (see the module docstring and docs/causal.md)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    src = target.record
    if (loaded.name, loaded.revision) != (src.provenance.model, src.provenance.model_revision):
        raise ModelError(f"the loaded model is {loaded.name} at revision {loaded.revision}, but the probe was fitted "
                         f"on {src.provenance.model} at {src.provenance.model_revision}", field="--load",
                         fix="load the model the run used (the `model` of its run.json)")
    if built.card.labels.type == "regression":
        raise ConfigError(f"{built.name} is a regression card: a causal check needs classes", field="--feature")
    head = output_head(loaded)
    units = list(check_units(loaded, src.site, src.layer, target.units))
    acts = np.asarray(store.layer(src.site, src.layer), dtype=np.float32)
    rows = store.rows()
    split = feature_split(built, rows, src.feature, src.seed)
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    rng_texts, rng_null, rng_resample = (np.random.default_rng(s) for s in seeds)

    feat_ex, ctrl_ex = _examples(split, rows, test=True)
    feat_ex = sorted(rng_texts.permutation(feat_ex)[: settings.texts].tolist())
    ctrl_ex = sorted(rng_texts.permutation(ctrl_ex)[: settings.texts].tolist())
    if min(len(feat_ex), len(ctrl_ex)) < 2:
        raise ConfigError(f"the test rows of {built.name}/{src.feature} hold {len(feat_ex)} of the feature's texts and "
                          f"{len(ctrl_ex)} control texts; a causal check needs 2 of each", field="--feature",
                          fix="run the probes with a larger --limit")
    texts = list(built.dataset["text"])
    train_feat, train_ctrl = _examples(split, rows, test=False)
    relevant = relevant_tokens(token_ids(loaded, [texts[i] for i in train_feat], settings.max_tokens),
                               token_ids(loaded, [texts[i] for i in train_ctrl], settings.max_tokens),
                               settings.relevant_tokens)
    sets = [TextSet(loaded, head, token_ids(loaded, [texts[i] for i in exs], settings.max_tokens), relevant,
                    src.layer, settings.batch_tokens) for exs in (feat_ex, ctrl_ex)]
    clean = Contrast(*(s.scores() for s in sets))

    def ablated(unit_set: Sequence[int]) -> Contrast:
        edits = [ablation_edit(src.site, src.layer, unit_set, settings.mode, acts, s.n, rng_resample) for s in sets]
        return Contrast(*(s.scores([e]) for s, e in zip(sets, edits)))

    observed_ablation = ablated(units)
    loss_obs, rel_obs = effect(clean, observed_ablation)
    # what the units were set to (resample: their mean, the values drawn vary by text)
    shown = ablation_edit(src.site, src.layer, units, "zero" if settings.mode == "zero" else "mean", acts, 1,
                          rng_resample).values
    variances = unit_variances(acts)
    draws = draw_matched(variances, units, settings.draws, rng_null)

    steering, steer_run = None, None
    if target.downstream is not None:
        steer_run = _SteerRun(loaded, target, built, store, split, acts, [texts[i] for i in ctrl_ex], ctrl_ex,
                              settings)
    null_loss, null_rel, null_flip, null_shift = [], [], [], []
    for draw in tqdm(draws, desc=f"causal null ({settings.draws} draws)", unit="draw", disable=not progress,
                     leave=False):
        loss, rel = effect(clean, ablated(draw.tolist()))
        null_loss.append(loss)
        null_rel.append(rel)
        if steer_run is not None:
            rate, shift = steer_run.steer(draw.tolist())
            if rate is not None:
                null_flip.append(rate)
            null_shift.append(shift)
    if steer_run is not None:
        steering = steer_run.result(units, null_flip, null_shift)
    ratios = variance_ratios(variances, units, draws).ravel()
    return CausalRecord(
        key=key, provenance=src.provenance, feature=src.feature, site=src.site, layer=src.layer, units=units,
        source_method=src.method, source_k=src.k, source_seed=src.seed, source_f1=src.score, settings=settings,
        ablation_values=[float(v) for v in shown], device=str(model_device(loaded.model)),
        n_feature_texts=len(feat_ex), n_control_texts=len(ctrl_ex), relevant_token_ids=relevant,
        relevant_tokens=[loaded.tokenizer.decode([t]) for t in relevant],
        clean_loss_feature=float(clean.feature.loss.mean()), clean_loss_control=float(clean.control.loss.mean()),
        ablated_loss_feature=float(observed_ablation.feature.loss.mean()),
        ablated_loss_control=float(observed_ablation.control.loss.mean()),
        loss=_null(loss_obs, null_loss, "greater"), relevant=_null(rel_obs, null_rel, "less"),
        variance_ratio=[float(v) for v in np.percentile(ratios, [5, 50, 95])],
        steering=steering, steering_note=target.downstream_note, wall_time_s=round(time.perf_counter() - started, 3))


class _SteerRun:
    """The steering half of a check: the control texts' rows at the downstream probe's layer, clean and steered."""

    def __init__(self, loaded: LoadedModel, target: Target, built: BuiltDataset, store: ActivationStore,
                 split: FeatureSplit, acts: np.ndarray, texts: list[str], examples: list[int],
                 settings: CausalSettings) -> None:
        assert target.downstream is not None
        src, down = target.record, target.downstream
        self.src, self.down, self.settings, self.acts = src, down, settings, acts
        self.split = split
        down_split = split if down.seed == src.seed else feature_split(built, store.rows(), down.feature, down.seed)
        self.probe = downstream_probe(down, store.layer(down.site, down.layer), down_split)
        ds = built.dataset
        aligned, _ = align_examples(loaded.tokenizer, texts, [ds[i]["targets"] for i in examples],
                                    [ds[i]["label"] for i in examples],
                                    max_tokens=min(built.card.max_tokens, loaded.max_positions), causal=loaded.causal)
        self.rowset = RowSet(loaded, aligned, built.card.aggregation, down.site, down.layer, src.layer,
                             settings.batch_tokens)
        positive = built.card.labels.classes.index(src.feature)
        self.negative = self.rowset.labels != positive
        self.clean = self.probe.decision(self.rowset.rows()[self.negative])

    def edit(self, units: Sequence[int]) -> tuple[UnitEdit, np.ndarray]:
        diff = class_mean_difference(self.acts, self.split, units)
        return steer_edit(self.src.site, self.src.layer, units, diff, self.settings.steer_scale), diff

    def steer(self, units: Sequence[int]) -> tuple[float | None, float]:
        edit, _ = self.edit(units)
        return flips(self.clean, self.probe.decision(self.rowset.rows([edit])[self.negative]))

    def result(self, units: Sequence[int], null_flip: list[float], null_shift: list[float]) -> SteeringResult:
        edit, diff = self.edit(units)
        steered = self.probe.decision(self.rowset.rows([edit])[self.negative])
        rate, shift = flips(self.clean, steered)
        down = self.down
        return SteeringResult(
            scale=self.settings.steer_scale, probe_layer=down.layer, probe_method=down.method, probe_k=down.k,
            probe_units=list(down.units), probe_f1=down.score, probe_f1_reproduced=self.probe.reproduced_f1,
            n_rows=int(self.negative.sum()), n_eligible=int((self.clean <= 0).sum()), flip_rate=rate,
            flip_null=_null(rate, null_flip, "greater") if rate is not None and null_flip else None,
            logit_shift=shift, logit_shift_null=_null(shift, null_shift, "greater") if null_shift else None,
            difference=[float(v) for v in diff])


def cached_check(target: Target, built: BuiltDataset, store: ActivationStore, settings: CausalSettings,
                 load: Callable[[], LoadedModel], *, device: str = "cpu",
                 progress: bool = False) -> tuple[CausalRecord, bool]:
    """The check of `target` from the cache, or run (loading the model with `load`, onto `device`) and kept
    there; returns (record, whether it was reused). The record names this target's source probe, also when the
    entry was made for another probe that found the same units (f_stat and mean_diff in `replicate`)."""
    key = check_key(target, store, settings, device.split(":")[0])
    entry = cache_dir("causal") / key

    def make(staging: Path) -> None:
        record = causal_check(load(), target, built, store, settings, key=key, progress=progress)
        (staging / CAUSAL_FILE).write_text(record.model_dump_json() + "\n", encoding="utf-8")

    reused = reuse_or_make(entry, make, what=f"the causal check of {target.units} at layer {target.record.layer}")
    (record,) = read_causal(entry / CAUSAL_FILE)
    src = target.record
    return record.model_copy(update={"source_method": src.method, "source_k": src.k, "source_f1": src.score}), reused

