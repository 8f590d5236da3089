"""Causal checks as `probebank inspect ... --ablate` runs them: find the probe, its store, its texts and its
model from what earlier runs left, run (or reuse) the check, keep it, and say it in a few lines.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from probebank.causal.check import Target, cached_check, find_target
from probebank.causal.record import CAUSAL_FILE, CausalRecord, CausalSettings, NullSummary, add_causal
from probebank.data.examples import BuiltDataset, find_built
from probebank.data.registry import load_catalog
from probebank.errors import ConfigError
from probebank.extract.device import resolve_device
from probebank.extract.loaded import LoadedModel
from probebank.extract.providers import load_model
from probebank.extract.store import ActivationStore
from probebank.probing.schema import ResultRecord
from probebank.results.neurons import model_stores, record_files


def _records(files: Sequence[Path], model: str) -> Iterator[ResultRecord]:
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if model in line:  # cheap prefilter before validating: most lines are other models
                yield ResultRecord.model_validate_json(line)


def source_store(record: ResultRecord) -> ActivationStore:
    """The complete store the record's probe read (its store key, else one of the same dataset contents)."""
    p = record.provenance
    stores = [s for s in model_stores(p.model, record.site, record.layer)
              if s.meta["parts"]["dataset"]["content_hash"] == p.dataset_hash]
    stores.sort(key=lambda s: s.key != p.store_key)  # the record's own store first
    if not stores:
        raise ConfigError(f"no activation store of {p.model} holds the {record.site} layer {record.layer} activations "
                          f"of {p.dataset} that the probe was fitted on", field="MODEL",
                          fix=f"run `probebank run --model MODEL --datasets {p.dataset}` with that layer again")
    return stores[0]


def source_built(record: ResultRecord, include: Sequence[Path] = ()) -> BuiltDataset:
    """The built dataset (texts, targets, labels) whose content hash the record carries."""
    p = record.provenance
    card = load_catalog(include).get(p.dataset).card
    built = find_built(card, p.dataset_hash)
    if built is None:
        raise ConfigError(f"the built dataset {p.dataset} with content hash {p.dataset_hash} is no longer in the cache",
                          field="--results", fix=f"run `probebank run --datasets {p.dataset}` with the same --limit again")
    return built


def model_spec(model: str, results: Sequence[Path]) -> str:
    """How to load MODEL: the `--model` of a run in `results` whose loaded model had that name, else MODEL."""
    for folder in results:
        path = Path(folder) / "run.json"
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (run.get("model") or {}).get("name") == model and (run.get("config") or {}).get("model"):
            return str(run["config"]["model"])
    return model


def run_causal(model: str, site: str, layer: int, unit: int, settings: CausalSettings, *,
               results: Sequence[Path] = (), feature: str | None = None, k: int | None = None,
               method: str | None = None, probe_layer: int | None = None, probe_k: int | None = None,
               load: str | None = None, device: str = "auto", include: Sequence[Path] = (),
               datasets: Sequence[str] | None = None, progress: bool = True) -> tuple[CausalRecord, bool, Target]:
    """Find the probe that selected the unit, run (or reuse) its causal check, and add the record to the
    causal.jsonl of the one results folder given. Returns (record, reused, target)."""
    records = list(_records(record_files(results), model))
    first = find_target(records, model, site, layer, unit, feature=feature, k=k, method=method, datasets=datasets)
    store = source_store(first.record)
    target = find_target(records, model, site, layer, unit, feature=feature, k=k, method=method, datasets=datasets,
                         probe_layer=probe_layer, probe_k=probe_k, layers_stored=store.meta["layers"])
    built = source_built(target.record, include)
    dev = resolve_device(device)
    spec = load or model_spec(model, results)

    def loader() -> LoadedModel:
        loaded = load_model(spec, dtype=target.record.provenance.model_dtype, include=include, device=str(dev))
        return loaded.to_device(dev)

    record, reused = cached_check(target, built, store, settings, loader, device=str(dev), progress=progress)
    folders = [Path(f) for f in results if Path(f).is_dir()]
    if len(folders) == 1:
        add_causal(folders[0] / CAUSAL_FILE, [record])
    return record, reused, target


# ---- text --------------------------------------------------------------------------------------------
def _null_line(name: str, s: NullSummary, unit: str = "") -> str:
    sign = ">=" if s.alternative == "greater" else "<="
    z = f", z = {(s.observed - s.mean) / s.sd:+.2f}" if s.sd > 0 else ""
    return (f"{name}: {s.observed:+.4f}{unit}; null {s.mean:+.4f} ± {s.sd:.4f} over {s.draws} draws{z}; "
            f"p = {s.p_value:.3g} (share of draws {sign} observed, add-one)")


def render_causal(r: CausalRecord) -> str:
    """A causal record in a few lines of plain text."""
    s = r.settings
    lines = [f"Causal check: {r.provenance.model} {r.site} layer {r.layer} units {r.units} "
             f"({r.source_method} k={r.source_k} probe of {r.provenance.dataset}/{r.feature}, F1 {r.source_f1:.3f}); "
             f"{s.mode} ablation",
             f"  texts: {r.n_feature_texts} of the feature's and {r.n_control_texts} control texts from the probe's "
             f"test rows, <= {s.max_tokens} tokens each; null: {s.draws} random unit sets of matched variance "
             f"(variance ratio {r.variance_ratio[0]:.2f} / {r.variance_ratio[1]:.2f} / {r.variance_ratio[2]:.2f} "
             "at the 5th / 50th / 95th percentile)",
             f"  next-token loss, feature's texts {r.clean_loss_feature:.4f} -> {r.ablated_loss_feature:.4f}, "
             f"control texts {r.clean_loss_control:.4f} -> {r.ablated_loss_control:.4f} nats/token",
             "  " + _null_line("loss effect (change on the feature's texts - change on the controls)", r.loss,
                               " nats/token"),
             "  " + _null_line(f"log-mass on the feature's {len(r.relevant_token_ids)} relevant tokens (same contrast)",
                               r.relevant)]
    median_ratio = r.variance_ratio[1]
    if not 0.5 <= median_ratio <= 2.0:
        lines.append(f"  note: the null is poorly matched (median variance ratio {median_ratio:.2f}): no other unit of "
                     "this layer varies as much (or as little), so the p-values compare with units of "
                     f"{'less' if median_ratio < 1 else 'more'} variance")
    if r.relevant_tokens:
        lines.append("  relevant tokens: " + " ".join(repr(t) for t in r.relevant_tokens[:12])
                     + (" ..." if len(r.relevant_tokens) > 12 else ""))
    st = r.steering
    if st is not None:
        rate = "none called negative" if st.flip_rate is None else f"{st.flip_rate:.3f} of {st.n_eligible} rows"
        lines.append(f"  steering x{st.scale:g} by the class-mean difference, read by the {st.probe_method} k={st.probe_k} "
                     f"probe at layer {st.probe_layer} (F1 {st.probe_f1:.3f}, rebuilt {st.probe_f1_reproduced:.3f}): "
                     f"flip rate {rate}")
        if st.flip_null is not None:
            lines.append("  " + _null_line("flip rate", st.flip_null))
        if st.logit_shift_null is not None:
            lines.append("  " + _null_line("probe log-odds shift", st.logit_shift_null))
    elif r.steering_note:
        lines.append(f"  steering not run: {r.steering_note}")
    return "\n".join(lines)

