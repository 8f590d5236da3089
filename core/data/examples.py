"""Build a dataset's examples from its card and builder, validate them, cache them.

A builder is a function `build(ctx: BuildContext) -> Iterable[dict]` registered under a name
with the `register_datasets` hook. Each dict it yields is one text:

    {"text": "...",                       # required
     "targets": [(start, end), ...]       # char spans; or (start, end, "class") for per-target labels;
                                          #   omit for cards whose target rule is `all` / `after`
     "label": "class name",               # the example's class, or its value (a number) on a regression
                                          #   card (omit when every target has its own)
     "group": "doc-17",                   # optional: examples sharing a group stay on one split side
     "id": "..."}                         # optional: stable id (defaults to <dataset>-<index>)

The result is a `datasets.Dataset` with fixed features (`features()` below), labels as class indices.
A regression card's values are kept in `value` columns (per example and per target; NaN = the
example's value) and every `label` is 0, the one "class": alignment, extraction and the gates read
labels as integers and need nothing else (probebank.data.values turns store rows back into values).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probebank.cache.atomic import remove
from probebank.cache.entry import intact, reuse_or_make
from probebank.contracts import Builder
from probebank.data.registry import CatalogEntry
from probebank.data.schema import DatasetCard
from probebank.data.sources import fetch_pin
from probebank.errors import BuildError
from probebank.hashing import fingerprint, json_digest, sha256_file
from probebank.paths import cache_dir, safe_join

BUILD_FORMAT = 2  # 2: sealed with checksums


def features(regression: bool = False) -> Any:
    """The fixed `datasets.Features` of every example table (a regression card's adds the `value` columns)."""
    from datasets.features import Features, Value
    target = {"start": Value("int32"), "end": Value("int32"), "label": Value("int32")}
    if regression:
        target["value"] = Value("float64")
    cols = {
        "id": Value("string"),
        "text": Value("string"),
        # a list of structs (not datasets.Sequence, which would turn it into a dict of lists)
        "targets": [target],
        "label": Value("int32"),
        "group": Value("string"),
    }
    if regression:
        cols["value"] = Value("float64")
    return Features(cols)


def _label_value(value: Any, where: str, what: str) -> float:
    """A regression label as a finite float, or a BuildError saying what to yield instead."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers too
        raise BuildError(f"{where}: {what} {value!r} is not a number, and the card's label type is regression",
                         field="labels.type", fix="yield an int or float value (or make the card binary or multiclass)")
    if not math.isfinite(value):
        raise BuildError(f"{where}: {what} {value!r} is not finite", field="label",
                         fix="yield a finite number (drop the example, or clip or transform the value)")
    return float(value)


@dataclass
class BuildContext:
    """What a builder gets: its card, parameters, pinned sources and a seeded RNG."""

    card: DatasetCard
    card_dir: Path | None
    params: dict[str, Any]
    limit: int | None = None  # max examples per class (None = all); builders may use it to do less work
    seed: int = 0
    include: Sequence[Path] = ()
    _fetched: dict[str, Path] = field(default_factory=dict)

    def fetch(self, source_name: str) -> Path:
        """Local folder (or file) of the pinned source `source_name` from the card, fetched on first use."""
        if source_name not in self._fetched:
            pins = {p.name: p for p in self.card.sources}
            if source_name not in pins:
                raise BuildError(f"builder asked for source '{source_name}' which the card does not pin",
                                 field="sources", fix=f"add a source named '{source_name}' to the card")
            self._fetched[source_name] = fetch_pin(pins[source_name], self.card_dir, self.include)
        return self._fetched[source_name]

    def local(self, relative: str) -> Path:
        """A file in the dataset's own folder (author-written data); never outside it."""
        if self.card_dir is None:
            raise BuildError("this dataset has no folder for local files", field="sources")
        return safe_join(self.card_dir, relative, file=self.card_dir / "card.yaml")

    def rng(self, salt: str = "") -> random.Random:
        return random.Random(f"{self.card.name}:{self.seed}:{salt}")


def _normalise(card: DatasetCard, raw: dict, index: int) -> dict:
    classes = {c: i for i, c in enumerate(card.labels.classes)}
    ex_id = str(raw.get("id") or f"{card.name}-{index}")
    where = f"example '{ex_id}'"
    text = raw.get("text")
    if not isinstance(text, str) or not text:
        raise BuildError(f"{where} has no text", field="text", fix="yield a non-empty string under 'text'")

    def label_id(value: Any, what: str) -> int:
        if isinstance(value, str) and value in classes:
            return classes[value]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(classes):
            return value
        raise BuildError(f"{where}: {what} {value!r} is not one of the card's classes {list(classes)}",
                         field="labels.classes", fix="yield a class name listed in the card")

    regression = card.labels.type == "regression"
    label = raw.get("label")
    value = math.nan
    if regression:  # every label is class 0; the number goes to `value` (NaN: none given)
        value = _label_value(label, where, "label") if label is not None else math.nan
        label_idx = 0
    else:
        label_idx = label_id(label, "label") if label is not None else -1
    rule = card.targets
    spans = raw.get("targets")
    if spans is None:
        if rule.kind == "all":
            spans = [(0, len(text))]
        elif rule.kind == "after":
            spans = [(min(rule.offset, len(text)), len(text))]
        else:
            raise BuildError(f"{where} has no targets but the card's target rule is 'spans'",
                             field="targets", fix="yield targets=[(start, end), ...] char spans")
    targets = []
    for span in spans:
        if isinstance(span, dict):
            start, end, t_label = span.get("start"), span.get("end"), span.get("label")
        else:
            start, end, *rest = span
            t_label = rest[0] if rest else None
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise BuildError(f"{where}: target span ({start}, {end}) is not inside the text (length {len(text)})",
                             field="targets", fix="give 0 <= start < end <= len(text) in characters")
        if regression:
            t_value = _label_value(t_label, where, "target label") if t_label is not None else math.nan
            if math.isnan(t_value) and math.isnan(value):
                raise BuildError(f"{where}: target ({start}, {end}) has no value and neither has the example",
                                 field="label", fix="give the example a numeric label or each target its own")
            targets.append({"start": start, "end": end, "label": -1, "value": t_value})
            continue
        t_idx = label_id(t_label, "target label") if t_label is not None else -1
        if t_idx < 0 and label_idx < 0:
            raise BuildError(f"{where}: target ({start}, {end}) has no label and neither has the example",
                             field="label", fix="give the example a label or each target its own")
        targets.append({"start": start, "end": end, "label": t_idx})
    if not targets:
        raise BuildError(f"{where} has an empty target list", field="targets",
                         fix="drop the example or give it at least one target")
    row = {"id": ex_id, "text": text, "targets": targets, "label": label_idx,
           "group": str(raw.get("group") if raw.get("group") is not None else ex_id)}
    if regression:
        row["value"] = value
    return row


def row_labels(example: dict) -> list[int]:
    """Label of each target of an example (a target's own label, else the example's)."""
    return [t["label"] if t["label"] >= 0 else example["label"] for t in targets_as_rows(example["targets"])]


def labelled_targets(dataset: Any, classes: Sequence[str]) -> Iterator[tuple[dict, str, str]]:
    """(example, target text, class name) for every target of a built dataset: for inspecting labels."""
    for example in dataset:
        for target, label in zip(targets_as_rows(example["targets"]), row_labels(example)):
            yield example, example["text"][target["start"]:target["end"]], classes[label]


def row_values(example: dict) -> list[float]:
    """Value of each target of a regression card's example (a target's own value, else the example's)."""
    return [example["value"] if math.isnan(t["value"]) else t["value"] for t in targets_as_rows(example["targets"])]


def targets_as_rows(targets: Any) -> list[dict]:
    if isinstance(targets, dict):  # datasets may return a dict of lists
        return [dict(zip(targets, vals)) for vals in zip(*targets.values())]
    return list(targets)


def _apply_limit(rows: list[dict], limit: int | None, n_classes: int, seed: int) -> list[dict]:
    """Keep at most `limit` examples per class, seeded.

    For data labelled per target (e.g. part of speech per word), the cap applies to targets per
    class: texts are visited in a seeded order and a target is kept while its class is under the
    cap; a text with no kept target is dropped.
    """
    if limit is None:
        return rows
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    count: Counter = Counter()
    kept: dict[int, dict] = {}
    if all(r["label"] >= 0 and all(t["label"] < 0 for t in r["targets"]) for r in rows):
        for i in order:
            if count[rows[i]["label"]] < limit:
                kept[i] = rows[i]
                count[rows[i]["label"]] += 1
    else:
        for i in order:
            targets = []
            for t in rows[i]["targets"]:
                label = t["label"] if t["label"] >= 0 else rows[i]["label"]
                if count[label] < limit:
                    targets.append(t)
                    count[label] += 1
            if targets:
                kept[i] = {**rows[i], "targets": targets}
            if len(count) == n_classes and all(v >= limit for v in count.values()):
                break
    return [kept[i] for i in sorted(kept)]


def content_hash(rows: Iterable[dict]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def check_examples(card: DatasetCard, rows: list[dict], *, limit: int | None) -> None:
    if not rows:
        raise BuildError(f"dataset '{card.name}' built no examples", field="builder",
                         fix="check the builder and its sources; an empty dataset cannot be probed")
    if card.labels.type == "regression":
        _check_values(card, rows, limit=limit)
    counts = Counter(lab for r in rows for lab in row_labels(r))
    if card.labels.type != "regression" and len(counts) < 2:
        only = card.labels.classes[next(iter(counts))]
        raise BuildError(f"dataset '{card.name}' has a single class ('{only}')", field="labels",
                         fix="a probe needs at least two classes with examples")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise BuildError(f"dataset '{card.name}' repeats example id '{dup}'", field="id",
                         fix="make ids unique (or omit them to get <dataset>-<index>)")
    minimum = card.min_per_class if limit is None else min(card.min_per_class, limit)
    small = {name: counts.get(i, 0) for i, name in enumerate(card.labels.classes) if counts.get(i, 0) < minimum}
    if small and not {"min_per_class", "min_examples"} & set(card.waivers):  # the gate's name or the old key
        raise BuildError(f"dataset '{card.name}': classes below the minimum of {minimum}: {small}",
                         field="min_per_class", fix="add examples, drop the class, or write a waiver in the card")


def _check_values(card: DatasetCard, rows: list[dict], *, limit: int | None) -> None:
    """A regression card needs min_per_class targets in all and more than one distinct value."""
    values = [v for r in rows for v in row_values(r)]
    minimum = card.min_per_class if limit is None else min(card.min_per_class, limit)
    if len(values) < minimum and not {"min_per_class", "min_examples"} & set(card.waivers):
        raise BuildError(f"dataset '{card.name}' has {len(values)} targets, below the minimum of {minimum} "
                         "(min_per_class counts all targets of a regression card)", field="min_per_class",
                         fix="add examples, or lower min_per_class with a waiver in the card")
    if len(set(values)) < 2:
        raise BuildError(f"dataset '{card.name}': every target has the value {values[0]!r}", field="label",
                         fix="a regression probe needs values that vary across targets")


@dataclass
class BuiltDataset:
    card: DatasetCard
    dataset: Any  # datasets.Dataset
    content_hash: str
    path: Path
    limit: int | None

    @property
    def name(self) -> str:
        return self.card.name


def _build_key(card: DatasetCard, card_dir: Path | None, builder: Builder, limit: int | None) -> str:
    """What decides a build: the card, the limit, the code the builder reaches and the author-written files."""
    files = {}
    for pin in card.sources:
        if pin.kind in ("local", "author") and card_dir is not None and pin.path:
            path = safe_join(card_dir, pin.path)
            if path.is_file():
                files[pin.name] = sha256_file(path)
    # Waivers say how to read the gates and test sets where to score, not how to build: neither rebuilds the data.
    return json_digest({"card": card.model_dump(mode="json", exclude={"waivers", "test_sets"}), "limit": limit,
                        "format": BUILD_FORMAT, "builder": fingerprint(builder, _normalise, _apply_limit),
                        "files": files}, length=16)


def build_dataset(entry: CatalogEntry, *, builders: Mapping[str, Builder],
                  limit: int | None = None, include: Sequence[Path] = (), force: bool = False,
                  progress: bool = True) -> BuiltDataset:
    """Build (or load from the cache) the examples of one dataset."""
    from datasets.arrow_dataset import Dataset
    from datasets.utils.logging import disable_progress_bar
    from tqdm.auto import tqdm

    disable_progress_bar()  # our own bar says what is being built; datasets' save/load bars are noise

    card = entry.card
    if card.builder not in builders:
        raise BuildError(f"no builder named '{card.builder}' is registered", file=entry.card_path,
                         field="builder", fix=f"register it with register_datasets, or use one of: "
                                              f"{', '.join(sorted(builders))}")
    builder = builders[card.builder]
    folder = cache_dir("built", card.name) / f"v{card.version}-{_build_key(card, entry.folder, builder, limit)}"
    if not force and intact(folder):
        return _load_built(card, folder, limit)

    def make(staging: Path) -> None:
        ctx = BuildContext(card=card, card_dir=entry.folder, params=dict(card.params), limit=limit,
                           seed=card.split.seed, include=include)
        raw_iter: Iterator[Any] = iter(builder(ctx))
        rows = [_normalise(card, raw, i) for i, raw in
                enumerate(tqdm(raw_iter, desc=f"build {card.name}", unit="ex", disable=not progress, leave=False))]
        rows = _apply_limit(rows, limit, len(card.labels.classes), card.split.seed)
        check_examples(card, rows, limit=limit)
        ds = Dataset.from_list(rows, features=features(card.labels.type == "regression"))
        ds.save_to_disk(str(staging / "data"))
        (staging / "meta.json").write_text(json.dumps({"content_hash": content_hash(rows), "n": len(rows),
                                                       "version": card.version, "limit": limit}, indent=1))

    if force:
        remove(folder)
    reuse_or_make(folder, make, what=f"the built dataset {card.name}")
    return _load_built(card, folder, limit)


def _load_built(card: DatasetCard, folder: Path, limit: int | None) -> BuiltDataset:
    """A sealed, verified build folder as a BuiltDataset."""
    from datasets.load import load_from_disk

    meta = json.loads((folder / "meta.json").read_text())
    return BuiltDataset(card, load_from_disk(str(folder / "data")), meta["content_hash"], folder, limit)


def find_built(card: DatasetCard, content_hash: str) -> BuiltDataset | None:
    """The cached, intact build of `card` whose examples have `content_hash` (the one a store or a record was
    made from, at whatever limit), or None when the cache no longer holds it."""
    folder = cache_dir("built", card.name)
    for meta_path in sorted(folder.glob("*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("content_hash") == content_hash and intact(meta_path.parent):
            return _load_built(card, meta_path.parent, meta.get("limit"))
    return None
