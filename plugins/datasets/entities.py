"""Entity facts in author-written templates: the helpers every factual builder shares."""
from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from probebank.errors import BuildError


def slug(name: str) -> str:
    """A group / id slug: "Côte d'Ivoire" -> "c-te-d-ivoire"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


ENTITY = "{entity}"


def check_templates(templates: list[str], slot: str = ENTITY) -> list[str]:
    bad = [t for t in templates if t.count(slot) != 1]
    if not templates or bad:
        raise BuildError(f"templates must each hold {slot} exactly once: {bad or 'none given'}",
                         field="params.templates", fix=f"write {slot} once in every template")
    return templates


def entity_examples(entities: Iterable[tuple[str, str, str]], templates: list[str]) -> Iterator[dict]:
    """One example per (entity, template): target = the entity's char span; group = the entity."""
    check_templates(templates)
    for name, label, group in entities:
        for i, template in enumerate(templates):
            at = template.index(ENTITY)
            text = template[:at] + name + template[at + len(ENTITY):]
            yield {"id": f"{group}-t{i}", "text": text, "targets": [(at, at + len(name))],
                   "label": label, "group": group}


def cap_per_class(items: list[tuple[str, str, str]], cap: int | None, rng: random.Random) -> list[tuple[str, str, str]]:
    """At most `cap` entities per label, sampled with the card's seed (keeps classes balanced)."""
    if cap is None:
        return items
    by_label: dict[str, list] = defaultdict(list)
    for item in items:
        by_label[item[1]].append(item)
    kept = []
    for label in by_label:
        group = sorted(by_label[label])
        kept += group if len(group) <= cap else rng.sample(group, cap)
    return sorted(kept, key=lambda it: (it[1], it[0]))


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise BuildError(f"expected data file {path.name} in the fetched source at {path.parent}",
                         field="params", fix="check the file paths in the card's params against the package")
    return json.loads(path.read_text(encoding="utf-8"))


