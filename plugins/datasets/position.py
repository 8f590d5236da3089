"""Builders for position datasets: where in the text is this word?"""
from __future__ import annotations

import re
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext

from .language import udhr_paragraphs

# A word: letters/digits, with inner hyphens or apostrophes ("co-operation", "everyone's").
WORD = re.compile(r"[^\W_]+(?:[-'\u2010\u2019][^\W_]+)*")


def parse_bucket(name: str) -> tuple[int, float]:
    """'4-7' -> (4, 7); '32+' -> (32, inf): inclusive bounds of a word-index bucket."""
    if name.endswith("+"):
        return int(name[:-1]), float("inf")
    lo, hi = name.split("-")
    return int(lo), int(hi)


def bucket_of(index: int, buckets: list[str]) -> str:
    for name in buckets:
        lo, hi = parse_bucket(name)
        if lo <= index <= hi:
            return name
    raise BuildError(f"word index {index} falls in no bucket of {buckets}", field="labels.classes",
                     fix="make the buckets cover 0, 1, 2, ... without gaps (the last one 'N+')")


def build_udhr_word_position(ctx: BuildContext) -> Iterator[dict]:
    """Each English UDHR paragraph is one text; every word is a target labelled with its index bucket."""
    root = ctx.fetch("udhr")
    buckets = list(ctx.card.labels.classes)
    min_words = int(ctx.params.get("min_words", 4))
    for para in udhr_paragraphs(root, ctx.params.get("declaration", "eng")):
        words = list(WORD.finditer(para.text))
        if len(words) < min_words:
            continue
        targets = [(m.start(), m.end(), bucket_of(i, buckets)) for i, m in enumerate(words)]
        pid = f"{para.section}-p{para.index}"
        yield {"id": pid, "text": para.text, "targets": targets, "group": pid}


BUILDERS = {"udhr-word-position": build_udhr_word_position}
