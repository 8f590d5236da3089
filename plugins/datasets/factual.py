"""Builders for factual datasets.

factual-country-continent: author-written facts (country -> continent, after the UN M49
geoscheme) placed into author-written templates; the target is the country's name.
"""
from __future__ import annotations

import re
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext
from probebank.yamlio import load_yaml

SLOT = "{country}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def fill(template: str, country: str) -> tuple[str, tuple[int, int]]:
    """Put `country` (maybe with a leading article, "the Netherlands") into the template.

    Returns the text and the char span of the name without its article.
    """
    article, name = ("the", country[4:]) if country.startswith("the ") else ("", country)
    at = template.index(SLOT)
    if article:
        article = ("The" if at == 0 else "the") + " "
    start = at + len(article)
    return template[:at] + article + name + template[at + len(SLOT):], (start, start + len(name))


def build_country_continent(ctx: BuildContext) -> Iterator[dict]:
    """One example per (country, template); label = continent; group = country."""
    facts = load_yaml(ctx.fetch("countries")).data
    templates: list[str] = ctx.params["templates"]
    classes = ctx.card.labels.classes
    unknown = sorted(set(facts) - set(classes))
    if unknown:
        raise BuildError(f"countries file lists continents {unknown} that are not classes of the card",
                         field="labels.classes", fix="add them to the classes or drop them from the file")
    bad = [t for t in templates if t.count(SLOT) != 1]
    if bad:
        raise BuildError(f"templates must hold {SLOT} exactly once: {bad}", field="params.templates")
    seen: dict[str, str] = {}
    for continent in classes:
        for country in facts.get(continent) or []:
            slug = _slug(country.removeprefix("the "))
            if slug in seen:
                raise BuildError(f"'{country}' is listed under both {seen[slug]} and {continent}",
                                 field="sources.countries", fix="keep one continent per country")
            seen[slug] = continent
            for i, template in enumerate(templates):
                text, span = fill(template, country)
                yield {"id": f"{slug}-t{i}", "text": text, "targets": [span], "label": continent,
                       "group": slug}


BUILDERS = {"factual-country-continent": build_country_continent}
