"""The plugin: one dataset, `factual-element-state`, registered with its card.

probebank loads this module through the entry point in pyproject.toml and calls the hook below.
Only the public API is used: names imported from `probebank` itself.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probebank import BuildContext, ConfigError, Example, RegisterDataset, hookimpl

# The card sits next to this file (package data). Its folder is the dataset's folder: the `author`
# source `elements.txt` named in the card is found there.
CARD = Path(__file__).parent / "card.yaml"


def read_facts(path: Path, classes: list[str]) -> list[tuple[str, str]]:
    """(element, class) pairs from lines `element = class`; `#` starts a comment."""
    facts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        element, sep, state = (part.strip() for part in line.partition("="))
        if not sep or not element or state not in classes:
            raise ConfigError(f"cannot read '{line}'", file=path, line=number,
                              fix=f"write `element = class` with a class of the card: {', '.join(classes)}")
        facts.append((element, state))
    return facts


def build_element_state(ctx: BuildContext) -> Iterator[Example]:
    """One text per (element, template). The target is the element's name, the label its state and
    the group the element, so that no element sits on both sides of the train/test split."""
    facts = read_facts(ctx.fetch("elements"), ctx.card.labels.classes)  # ctx.fetch: the file's Path
    for element, state in facts:
        for number, template in enumerate(ctx.params["templates"]):
            start = template.index("{element}")
            text = template.replace("{element}", element, 1)
            yield {"id": f"{element}-{number}", "text": text, "targets": [(start, start + len(element))],
                   "label": state, "group": element}


@hookimpl
def register_datasets(register: RegisterDataset) -> None:
    """register(name, build, card=None): `card` adds a dataset that the bank's registry.yaml does not list."""
    register("factual-element-state", build_element_state, card=CARD)
