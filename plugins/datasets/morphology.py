"""Syntax datasets made of minimal pairs in author-written templates (gold labels).

syntax-verb-tense: the same sentence with a verb in the past (VBD) or present (VBZ / VBP)
form, inflected by lemminflect's lookup table. syntax-noun-number: the same sentence with a
noun in the singular or plural. syntax-compound: "social security" (a WordNet compound)
against "national security" (the same second word after a modifier with which WordNet lists
no compound). The target is always the inflected / second word; group = its lemma.
"""
from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.wordnet import index_lemmas, read_nouns

SLOT = "{word}"


def read_word_list(path: Path) -> list[str]:
    """One word per line; '#' starts a comment."""
    words = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w]
    if len(set(words)) != len(words):
        raise BuildError(f"{path.name} lists a word twice", file=path, fix="keep one line per word")
    return words


def read_inflections(resources: Path) -> dict[tuple[str, str], list[str]]:
    """(lemma, 'verb'|'noun') -> forms from lemminflect's infl_lu.csv.gz (plain CSV, never unpickled).

    verb forms: [VBD, VBN, VBG, VBZ]; noun forms: [NNS]; each the first listed spelling.
    """
    path = resources / "infl_lu.csv.gz"
    if not path.is_file():
        raise BuildError(f"lemminflect table infl_lu.csv.gz not found in {resources}", field="params.resources_dir")
    out: dict[tuple[str, str], list[str]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            word, category, *forms = line.rstrip("\n").split(",")
            if category in ("verb", "noun") and (word, category) not in out:
                out[(word, category)] = [form.split("/")[0] for form in forms]
    return out


def _fill(template: str, before: dict[str, str], word: str) -> tuple[str, tuple[int, int]]:
    """Fill {subject}-style slots, then put `word` at {word}; return text and the word's span."""
    text = template
    for key, value in before.items():
        text = text.replace("{" + key + "}", value)
    at = text.index(SLOT)
    return text.replace(SLOT, word, 1), (at, at + len(word))


def _check(templates: list[str], needs: tuple[str, ...]) -> list[str]:
    bad = [t for t in templates if t.count(SLOT) != 1 or any(t.count("{" + n + "}") != 1 for n in needs)]
    if not templates or bad:
        raise BuildError(f"templates must hold {SLOT} and {needs} once each: {bad or 'none given'}",
                         field="params.templates")
    return templates


def build_verb_tense(ctx: BuildContext) -> Iterator[dict]:
    """Each verb x template x subject number, in the past and in the present."""
    p = ctx.params
    forms = read_inflections(ctx.fetch("lemminflect") / p["resources_dir"])
    verbs = read_word_list(ctx.fetch("verbs"))
    templates = _check(p["templates"], ("subject",))
    subjects = {"singular": p["singular_subjects"], "plural": p["plural_subjects"]}
    rng = ctx.rng("subjects")
    for verb in verbs:
        if (verb, "verb") not in forms:
            raise BuildError(f"lemminflect has no verb '{verb}'", field="sources.verbs", fix="drop or respell it")
        past, _, _, third = forms[(verb, "verb")]
        if past in (verb, third):
            continue  # "put", "read": the past form equals a present form, no contrast
        for i, template in enumerate(templates):
            for number, present in (("singular", third), ("plural", verb)):
                subject = rng.choice(subjects[number])
                if template.startswith("{subject}"):
                    subject = subject[0].upper() + subject[1:]
                for label, form in (("past", past), ("present", present)):
                    text, span = _fill(template, {"subject": subject}, form)
                    yield {"id": f"{verb}-t{i}-{number}-{label}", "text": text, "targets": [span],
                           "label": label, "group": verb}


def build_noun_number(ctx: BuildContext) -> Iterator[dict]:
    """Each noun x template, in the singular and in the plural."""
    p = ctx.params
    forms = read_inflections(ctx.fetch("lemminflect") / p["resources_dir"])
    nouns = read_word_list(ctx.fetch("nouns"))
    templates = _check(p["templates"], ())
    for noun in nouns:
        if (noun, "noun") not in forms or not forms[(noun, "noun")][0]:
            raise BuildError(f"lemminflect has no plural of '{noun}'", field="sources.nouns", fix="drop or respell it")
        plural = forms[(noun, "noun")][0]
        if plural == noun:
            continue  # "sheep": no contrast
        for i, template in enumerate(templates):
            for label, form in (("singular", noun), ("plural", plural)):
                text, span = _fill(template, {}, form)
                yield {"id": f"{noun}-t{i}-{label}", "text": text, "targets": [span], "label": label,
                       "group": noun}


_TWO_WORDS = re.compile(r"[a-z]{3,}_[a-z]{3,}")


def wordnet_compounds(root: Path, min_tagged: int) -> tuple[list[tuple[str, str]], set[str]]:
    """Two-word lowercase noun compounds seen at least `min_tagged` times in SemCor, and all multiword lemmas."""
    nouns = index_lemmas(root, "noun")
    every = {lemma for pos in ("noun", "verb", "adj", "adv") for lemma in index_lemmas(root, pos) if "_" in lemma}
    # index files are lowercased: drop compounds WordNet writes with a capital ("Aegean_Sea")
    capitalised = {lemma.lower() for syn in read_nouns(root).values() for lemma in syn.lemmas
                   if "_" in lemma and lemma != lemma.lower()}
    pairs = [(lemma.split("_")[0], lemma.split("_")[1]) for lemma, tagged in nouns.items()
             if tagged >= min_tagged and _TWO_WORDS.fullmatch(lemma) and lemma not in capitalised]
    return sorted(pairs), every


def build_compound(ctx: BuildContext) -> Iterator[dict]:
    """A WordNet compound "a b" and a contrast "a' b": same b, a' a first word of another compound."""
    p = ctx.params
    root = ctx.fetch("wordnet") / p["dict_dir"]
    pairs, every = wordnet_compounds(root, p.get("min_tagged", 1))
    rng = ctx.rng("compounds")
    if p.get("max_pairs") and len(pairs) > p["max_pairs"]:
        pairs = sorted(rng.sample(pairs, p["max_pairs"]))
    firsts = sorted({a for a, _ in pairs})
    templates = _check(p["templates"], ("modifier",))
    seen: set[str] = set()
    for a, b in pairs:
        candidates = [x for x in firsts if x != a and f"{x}_{b}" not in every and x != b]
        other = rng.choice(candidates)
        for label, modifier in (("compound", a), ("not-compound", other)):
            if f"{modifier} {b}" in seen:
                continue
            seen.add(f"{modifier} {b}")
            for i, template in enumerate(templates):
                text, span = _fill(template, {"modifier": modifier}, b)
                yield {"id": f"{modifier}-{b}-t{i}", "text": text, "targets": [span], "label": label,
                       "group": b}


MORPHOLOGY_BUILDERS: dict[str, Callable[[BuildContext], Iterator[dict]]] = {
    "syntax-verb-tense": build_verb_tense,
    "syntax-noun-number": build_noun_number,
    "syntax-compound": build_compound,
}
