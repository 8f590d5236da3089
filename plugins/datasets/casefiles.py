"""Case descriptions read at the decision point: the shared part of the justice and decisions builders.

A source record (a COMPAS defendant, a German credit applicant, an Adult census respondent) becomes a
`Case`: the words each template slot takes, the record's labels and a stable id. A template from
the card turns it into a text that ends in the card's decision cue ("... Should the defendant be
detained before trial? Answer:"); the target is that cue, read with aggregation `last`, so the
probe sees the token where a model would give its decision.

Two shapes of dataset:
- recorded labels (`cases_as_recorded`): each case once, labelled with a field of its record
  (two-year recidivism, credit risk, charge degree);
- counterfactual twins (`counterfactual_twins`): each case once per class of a protected
  attribute, only the attribute's words changed (Black / White, man / woman with its pronouns, an
  age in each band); the twins share one `group`, so a case never straddles the split, and the
  attribute is independent of every other fact in the dataset.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from probebank.data.examples import BuildContext
from probebank.errors import BuildError

SLOT = re.compile(r"\{([A-Za-z_]+)\}")


@dataclass(frozen=True)
class Case:
    """One source record: the words of every template slot, and its labels by label family."""

    id: str
    slots: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)


def count_phrase(n: int, singular: str, plural: str) -> str:
    """'no prior offenses', '1 prior offense', '4 prior offenses'."""
    if n == 0:
        return f"no {plural}"
    return f"{n} {singular if n == 1 else plural}"


def fill(template: str, slots: Mapping[str, str]) -> str:
    """The template with every {slot} replaced; an empty slot's doubled space is closed up."""
    missing = sorted({s for s in SLOT.findall(template) if s not in slots})
    if missing:
        raise BuildError(f"template names slots the records do not give: {missing} (in {template!r}); "
                         f"known slots: {sorted(slots)}", field="params.templates",
                         fix="use only the slots the card's construction lists")
    text = SLOT.sub(lambda m: slots[m.group(1)], template)
    return re.sub(r" {2,}", " ", text).replace(" ,", ",").replace(" \n", "\n")


def param(ctx: BuildContext, key: str) -> Any:
    """A required builder parameter of the card, or a BuildError naming it."""
    if key not in ctx.params:
        raise BuildError(f"card '{ctx.card.name}' has no params.{key}", field=f"params.{key}",
                         fix="see the card's construction and the other justice and decisions cards for its shape")
    return ctx.params[key]


def check_templates(ctx: BuildContext) -> tuple[list[str], list[str], str]:
    """The card's templates, questions and decision cue: every template holds {question} and ends in the cue."""
    templates, questions = list(param(ctx, "templates")), list(param(ctx, "questions"))
    cue = str(param(ctx, "decision_cue"))
    bad = [t for t in templates if "{question}" not in t or not t.endswith(cue)]
    if bad or not questions:
        raise BuildError(f"every template must hold {{question}} and end with the decision cue {cue!r}; "
                         f"these do not: {bad}" if bad else "the card lists no decision questions",
                         field="params.templates" if bad else "params.questions",
                         fix="end each template with the cue (the target) and give at least one question")
    return templates, questions, cue


def decision_text(ctx: BuildContext, case: Case, slots: Mapping[str, str]) -> tuple[str, tuple[int, int]]:
    """The case in the template and question chosen for it (seeded by the case), and the cue's span."""
    templates, questions, cue = check_templates(ctx)
    rng = ctx.rng(case.id)
    template, question = templates[rng.randrange(len(templates))], questions[rng.randrange(len(questions))]
    text = fill(template, {**slots, "question": question})
    return text, (len(text) - len(cue), len(text))


def unique_cases(cases: Iterable[Case], ignore: Iterable[str] = ()) -> list[Case]:
    """The first case of each set whose slots (less `ignore`) are equal: equal facts would give equal texts."""
    skip = set(ignore)
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for case in cases:
        key = tuple(sorted((k, v) for k, v in case.slots.items() if k not in skip))
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out


def shuffled(ctx: BuildContext, cases: list[Case]) -> list[Case]:
    """The cases in a seeded order (the card's name and split seed), so any cap takes a fair sample."""
    order = list(cases)
    ctx.rng("cases").shuffle(order)
    return order


def cases_as_recorded(ctx: BuildContext, cases: Iterable[Case], family: str) -> Iterator[dict]:
    """Each distinct case once, labelled with its `family` label; at most params.max_per_class per class."""
    cap = ctx.params.get("max_per_class")
    taken: dict[str, int] = {}
    seen: set[str] = set()
    for case in shuffled(ctx, unique_cases(cases)):
        label = case.labels.get(family)
        if label is None or (cap is not None and taken.get(label, 0) >= cap):
            continue
        text, span = decision_text(ctx, case, case.slots)
        if text in seen:  # a template that leaves out the one slot two cases differ in
            continue
        seen.add(text)
        taken[label] = taken.get(label, 0) + 1
        yield {"id": case.id, "text": text, "targets": [span], "label": label, "group": case.id}


def counterfactual_twins(ctx: BuildContext, cases: Iterable[Case],
                         variants: Callable[[Case], Mapping[str, Mapping[str, str]]]) -> Iterator[dict]:
    """Each case once per class, the slots of `variants(case)[class]` swapped in; one group per case.

    Cases whose facts are equal apart from the swapped slots are kept once (their twins would be
    the same texts). At most params.max_cases cases, and at most ctx.limit, so a limited build
    keeps whole twin sets: every class gets the same cases.
    """
    classes = ctx.card.labels.classes
    cases = list(cases)
    swapped = {slot for case in cases[:1] for words in variants(case).values() for slot in words}
    cap = min(x for x in (ctx.params.get("max_cases"), ctx.limit, len(cases)) if x is not None)
    seen: set[str] = set()
    taken = 0
    for case in shuffled(ctx, unique_cases(cases, ignore=swapped)):
        if taken == cap:
            return
        by_class = variants(case)
        if list(by_class) != classes:
            raise BuildError(f"case {case.id}: twin variants {list(by_class)} are not the card's classes {classes}",
                             field="params.twin_words", fix="give one set of words per class, in the card's order")
        twins = [(label, *decision_text(ctx, case, {**case.slots, **words})) for label, words in by_class.items()]
        if any(text in seen for _, text, _ in twins):  # a template that leaves out the one slot two cases differ in
            continue
        taken += 1
        for label, text, span in twins:
            seen.add(text)
            yield {"id": f"{case.id}-{label}", "text": text, "targets": [span], "label": label, "group": case.id}


def twin_words(ctx: BuildContext) -> Callable[[Case], Mapping[str, Mapping[str, str]]]:
    """Variants from the card's params.twin_words: {class: {slot: words}}, the same for every case."""
    words = {str(label): {str(k): str(v) for k, v in slots.items()} for label, slots in param(ctx, "twin_words").items()}
    return lambda case: words


def twin_ages(ctx: BuildContext) -> Callable[[Case], Mapping[str, Mapping[str, str]]]:
    """Variants from params.twin_ages: {class: [youngest, oldest]}; each case gets a seeded age in each band."""
    bands = {str(label): (int(lo), int(hi)) for label, (lo, hi) in param(ctx, "twin_ages").items()}

    def ages(case: Case) -> dict[str, dict[str, str]]:
        rng = ctx.rng(f"age:{case.id}")
        return {label: {"age": str(rng.randint(lo, hi))} for label, (lo, hi) in bands.items()}
    return ages


def age_band(age: int) -> str:
    """The three bands COMPAS records (age_cat), used for every source: under_25, 25_to_45, over_45."""
    return "under_25" if age < 25 else "25_to_45" if age <= 45 else "over_45"


SEX_WORDS = {
    "male": {"noun": "man", "Pronoun": "He", "pronoun": "he", "possessive": "his"},
    "female": {"noun": "woman", "Pronoun": "She", "pronoun": "she", "possessive": "her"},
}
