"""Write the cards of the sae-probes bridge from the pinned wheel: one per task file, one per OOD set.

    python -m probebank_plugins.datasets.sae_probes_cards           # (re)write datasets/sae-probes-*/ + registry
    python -m probebank_plugins.datasets.sae_probes_cards --check   # exit 1 if the committed cards are stale

The wheel is fetched through the pypi source plugin (pinned by sha256) into the cache. What the
cards take from it is metadata: file names, task types from its table
(`probing_datasets_MASTER.csv.zst`), class names, row counts and the source names its table
gives; the prompts themselves are read at build time by the `sae-probes` builder. What the cards
say about each family (category, upstream citation) is in `sae_probes_meta`.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probebank.data.schema import DatasetCard, SourcePin
from probebank.data.sources import fetch_pin
from probebank.paths import bank_root
from probebank_plugins.datasets import sae_probes_meta as meta
from probebank_plugins.datasets.sae_probes import DEFAULT_MAX_CHARS, MASTER, OOD_DIR, TASK_DIR, read_table, task_rows

PIN = SourcePin(name="sae-probes", kind="pypi", package="sae-probes", version="0.4.2",
                sha256="245700c8df310760e3d5b23d657ae5196489813f3012b55975057d8239d8be03",
                filename="sae_probes-0.4.2-py3-none-any.whl",
                license="MIT (the package's license, the only one it states for its task files)")
PREFIX = "sae-probes"
SUITE_LIMIT = 40
MAX_TOKENS = 2048  # texts are cut to DEFAULT_MAX_CHARS characters first: about 500-700 tokens
TYPES = {"Binary Classification": "binary", "Multiclass Classification": "multiclass", "Continuous Data": "regression"}
BEGIN = "  # ---- sae-probes: written by `python -m probebank_plugins.datasets.sae_probes_cards`; do not edit by hand"
END = "  # ---- end of sae-probes"
SUITES_BEGIN = "  # ---- sae-probes suites (written by the same generator)"
SUITES_END = "  # ---- end of sae-probes suites"

# What each out-of-distribution file changes, read from the files (author-written).
OOD_SHIFT = {
    5: "fictional characters (cartoons, comics, anime, films) instead of historical figures",
    6: "the names of real people with letters changed (misspellings)",
    7: "names written family name first",
    66: "French text: the phrase 'living room' translated (salon)",
    67: "Spanish text: the phrase 'social security' translated (seguridad social)",
    73: "German text: the phrase 'control group' translated (Kontrollgruppe)",
    87: "sentences from another source (English-grammar exercises), judged grammatical or not",
    90: "question-sentence pairs from another source; the file names its classes '1' and 'not_entailment', "
        "read in sae-probes' LabelEncoder order ('1' is class 0, 'not_entailment' class 1, as sae-probes scores it)",
}


def slug(tag: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")


def number_of(filename: str) -> int:
    return int(filename.split("_", 1)[0])


@dataclass
class Task:
    """One file of the wheel and what the card needs to know of it."""

    file: str            # path inside the unpacked wheel
    number: int
    tag: str             # the file's name without number and suffix (sae-probes' dataset tag)
    kind: str            # binary | multiclass | regression
    source: str = ""     # the package table's Source and Dataset name (carried down its blank rows)
    name_in_table: str = ""
    rows: int = 0
    kept: int = 0
    cut: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    values: tuple[float, float] | None = None
    digest: str = ""
    ood_of: Task | None = None

    @property
    def name(self) -> str:
        if self.ood_of is not None:
            return self.ood_of.name + "-ood"
        return f"{PREFIX}-{self.number}-{slug(self.tag)}"


def master_table(wheel: Path) -> dict[str, dict[str, str]]:
    """The package table's rows by file name, with Source and Dataset name carried down blank rows."""
    out: dict[str, dict[str, str]] = {}
    source = name = ""
    for row in read_table(wheel / MASTER):
        source = (row.get("Source") or "").strip() or source
        name = (row.get("Dataset name") or "").strip() or name
        if (row.get("Dataset Tag") or "").strip():
            saved = Path(row["Dataset save name"]).name + ".zst"
            out[saved] = {**row, "Source": source, "Dataset name": name}
    return out


def _measure(task: Task, wheel: Path) -> None:
    path = wheel / task.file
    task.digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = read_table(path)
    items = task_rows(rows, DEFAULT_MAX_CHARS)
    task.rows, task.kept = len(rows), len(items)
    task.cut = sum(1 for r in rows if len((r.get("prompt") or "").rstrip()) > DEFAULT_MAX_CHARS)
    if task.kind == "regression":
        vals = [float(t) for _, t in items]
        task.values = (min(vals), max(vals))
    else:
        task.counts = dict(sorted(Counter(t for _, t in items).items()))


def read_tasks(wheel: Path) -> list[Task]:
    """Every task file and every OOD file of the unpacked wheel, measured; tasks in number order."""
    table = master_table(wheel)
    tasks: dict[int, Task] = {}
    for path in sorted((wheel / TASK_DIR).glob("*.csv.zst")):
        row = table.get(path.name)
        if row is None or row.get("Data type") not in TYPES:
            raise ValueError(f"{path.name}: not typed by {MASTER} (Data type {row and row.get('Data type')!r})")
        n = number_of(path.name)
        tasks[n] = Task(f"{TASK_DIR}/{path.name}", n, path.name.removesuffix(".csv.zst").split("_", 1)[1],
                        TYPES[row["Data type"]], row["Source"], row["Dataset name"])
    oods = []
    for path in sorted((wheel / OOD_DIR).glob("*_OOD.csv.zst")):
        parent = tasks[number_of(path.name)]
        oods.append(Task(f"{OOD_DIR}/{path.name}", parent.number, parent.tag, parent.kind, ood_of=parent))
    out = [tasks[n] for n in sorted(tasks)] + oods
    for task in out:
        _measure(task, wheel)
    return out


def _classes(task: Task) -> list[str]:
    parent = task.ood_of or task
    return list(parent.counts) if parent.kind != "regression" else []


def _label_text(task: Task) -> str:
    if task.kind == "regression":
        lo, hi = task.values or (0.0, 0.0)
        return f"Regression: the file's `target`, a number from {lo:g} to {hi:g}."
    counts = ", ".join(f"'{c}' {n:,}" for c, n in task.counts.items())
    order = "negative, positive" if task.kind == "binary" else "one-vs-rest features"
    return (f"{task.kind.capitalize()}: the file's `target` values in sae-probes' LabelEncoder order ({order}); "
            f"examples per class after de-duplication: {counts}.")


def card_of(task: Task, first_with: dict[str, Task], ood_sets: dict[str, Task]) -> dict[str, Any]:
    """The card of one file; `first_with`: the first task of each file digest, `ood_sets`: task name -> its OOD set."""
    parent = task.ood_of or task
    family = meta.family_of(task.number)
    category = meta.category_of(task.number)
    twin = first_with.get(task.digest)
    facts = [f"{task.file} in the sae-probes 0.4.2 wheel: {task.rows:,} rows, {task.kept:,} distinct prompts kept "
             f"({task.rows - task.kept:,} repeats or prompts with two labels dropped)."]
    if task.cut:
        facts.append(f"{task.cut:,} prompts longer than {DEFAULT_MAX_CHARS:,} characters keep their last "
                     f"{DEFAULT_MAX_CHARS:,} (sae-probes keeps the last 1,024 tokens).")
    if twin is not None and twin is not task:
        facts.append(f"The file's bytes are those of {twin.file}: the same rows as {twin.name}"
                     + (f", although the package's table names it '{task.name_in_table}'." if task.name_in_table else "."))
    desc = (f"Out-of-distribution test set of {parent.name} ({parent.number}_{parent.tag}): "
            f"{OOD_SHIFT.get(task.number, 'a shifted variant of the task')}. Fit on the task and score here with "
            f"`probebank run --datasets {parent.name} --test-on ood`."
            if task.ood_of is not None else
            f"sae-probes task {task.number}_{task.tag}: each example is {family.prompt}, labelled with the "
            f"task's target; the probe reads the prompt's last token, as sae-probes does.")
    table = (f" The package's table names the data '{parent.name_in_table}' (source given: '{parent.source}')."
             if parent.name_in_table else "")
    card: dict[str, Any] = {
        "name": task.name, "version": "1.0", "category": category,
        "tags": [PREFIX, *family.tags, task.kind] + (["ood"] if task.ood_of is not None else []),
        "description": desc,
        "construction": " ".join(facts) + " Each prompt is one example (its own group); trailing whitespace is "
                        "dropped; the target is the last word, read at its last token (`aggregation: last`). "
                        + _label_text(task),
        "citation": f"{meta.PACKAGE_CITATION}. Task data: {family.citation}.{table}",
        "license": "MIT, as the sae-probes 0.4.2 package ships the file (the only license it states for its task "
                   "files). The rows come from the upstream data named in the citation; its own terms apply too.",
        "sources": [PIN.model_dump(exclude_none=True)],
        "builder": "sae-probes",
        "params": {"file": task.file, "max_chars": DEFAULT_MAX_CHARS},
        "labels": {"type": task.kind, "classes": _classes(task)},
        "targets": {"kind": "spans"}, "aggregation": "last", "max_tokens": MAX_TOKENS,
        "split": {"test_size": 0.3, "seed": 0, "grouped": True, "stratified": True},
        "min_per_class": 20, "silver": False,
    }
    if family.responsible_use or category in ("bias", "safety", "justice", "decisions"):
        card["responsible_use"] = family.responsible_use
    card["waivers"] = {} if task.ood_of is not None else meta.WAIVERS.get(task.number, {})
    if task.name in ood_sets:
        card["test_sets"] = {"ood": ood_sets[task.name].name}
    DatasetCard.model_validate(card)  # a card the schema refuses is never written
    return card


def render_card(card: dict[str, Any]) -> str:
    return yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100)


def registry_text(current: str, tasks: list[Task], cards: dict[str, dict[str, Any]]) -> str:
    """registry.yaml with the sae-probes entries and suites replaced (or added)."""
    entries = [BEGIN] + [
        f"  {t.name}:\n    card: datasets/{t.name}/card.yaml\n    version: \"1.0\"\n    category: "
        f"{cards[t.name]['category']}\n    tags: [{', '.join(cards[t.name]['tags'])}]" for t in tasks] + [END]
    main = [t.name for t in tasks if t.ood_of is None]
    with_ood = [t.ood_of.name for t in tasks if t.ood_of is not None]
    suites = [SUITES_BEGIN,
              "  sae-probes:",
              "    description: Every task of the sae-probes wheel (Kantamneni et al. 2025), last token, a small sample.",
              f"    limit: {SUITE_LIMIT}",
              "    datasets: [" + ", ".join(main) + "]",
              "  sae-probes-ood:",
              "    description: The sae-probes tasks with an out-of-distribution test set (run with --test-on ood).",
              f"    limit: {SUITE_LIMIT}",
              "    datasets: [" + ", ".join(with_ood) + "]",
              SUITES_END]
    text = _replace(current, BEGIN, END, "\n".join(entries), before="\nsuites:")
    return _replace(text, SUITES_BEGIN, SUITES_END, "\n".join(suites), before=None)


def _replace(text: str, begin: str, end: str, block: str, *, before: str | None) -> str:
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    if before is None:
        return text.rstrip("\n") + "\n" + block + "\n"
    head, tail = text.split(before, 1)
    return head.rstrip("\n") + "\n\n" + block + "\n" + before + tail


def generate(root: Path, wheel: Path) -> dict[Path, str]:
    """Every file the bridge consists of (cards and registry.yaml) with its content."""
    tasks = read_tasks(wheel)
    first_with: dict[str, Task] = {}
    for t in tasks:
        first_with.setdefault(t.digest, t)
    ood_sets = {t.ood_of.name: t for t in tasks if t.ood_of is not None}
    cards = {t.name: card_of(t, first_with, ood_sets) for t in tasks}
    files = {root / "datasets" / name / "card.yaml": render_card(card) for name, card in cards.items()}
    files[root / "registry.yaml"] = registry_text((root / "registry.yaml").read_text(encoding="utf-8"), tasks, cards)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed card or registry.yaml is stale")
    args = parser.parse_args(argv)
    root = bank_root()
    files = generate(root, fetch_pin(PIN))
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(root)}", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
    print(f"{len(files) - 1} cards; {len(stale)} files written under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
