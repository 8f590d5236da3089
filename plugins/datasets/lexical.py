"""Builders for lexical datasets: surface features of a word that a regex can compute."""
from __future__ import annotations

import random
import re
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext

from .code import sdist_root

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
    for version, items in by_version.items():
        for k, text in enumerate(pack(items, max_chars)):
            ex_id = f"changes-{version}-{k}"
            targets = [(m.start(), m.end(), shape) for m in WORD.finditer(text)
                       if (shape := word_shape(m.group())) in classes]
            if per_class is not None:
                targets = cap_per_class(targets, int(per_class), ctx.rng(ex_id))
            if targets:
                yield {"id": ex_id, "text": text, "targets": targets, "group": f"v{version}"}


BUILDERS = {"changelog-word-shape": build_changelog_word_shape}
