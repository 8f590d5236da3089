"""Builders for gold syntax datasets: per-word labels read from a human-annotated CoNLL-U treebank.

syntax-upos-gold-tr, syntax-deprel-gold-tr: the Turkish Web Treebank (Kayadelen, Ozturel and Bohnet
2020), as shipped in the turkish-treebanks 1.0.0 wheel (data/web.conllu, data/wiki.conllu). The
labels are the annotators' own (gold), unlike the spaCy-labelled (silver) syntax-upos and friends.
One example per sentence (the treebank's `# text`), one target per word.

The treebank's tokens are inflectional groups (IGs): a derived word is split into pieces, each with
its own part of speech, linked to the next piece by the relation `ig`. A target is the whole word
(first piece to last); its label is the last piece's, which carries the word's part of speech and
its relation to the rest of the sentence (the earlier pieces only point inside the word).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probebank.data.examples import BuildContext
from probebank.data.sources import builder_extra
from probebank.errors import BuildError
from probebank.paths import safe_join

IG_RELATION = "ig"  # the treebank's link from an inflectional group to the next piece of the same word
ATTRIBUTES = ("upos", "deprel")


@dataclass(frozen=True)
class Word:
    """One surface word of a sentence: its char span in the sentence text and the labels of its last IG."""

    start: int
    end: int
    upos: str
    deprel: str


def read_sentences(path: Path, dataset: str) -> list[Any]:
    """Every sentence of a CoNLL-U file, parsed with the conllu package (a TokenList per sentence)."""
    conllu = builder_extra("conllu", "bank", dataset)
    with open(path, encoding="utf-8") as f:
        return list(conllu.parse_incr(f))


def sentence_words(sentence: Any, file: str) -> list[Word]:
    """The words of one sentence, IG pieces merged, with char spans into the sentence's `# text`.

    Each token's form must follow the previous one in the text with only whitespace between; a file
    where it does not is not a treebank this builder can align, and is an error naming the sentence.
    """
    sent_id = sentence.metadata.get("sent_id", "?")
    text = sentence.metadata.get("text")
    if not text:
        raise BuildError(f"{file}: sentence {sent_id} has no '# text =' line", field="params.files",
                         fix="point params.files at CoNLL-U files that carry each sentence's text")
    words: list[Word] = []
    cursor, word_start = 0, None
    for token in sentence:
        if not isinstance(token["id"], int):  # multiword ranges (1-2) and empty nodes (1.1) carry no label
            continue
        start = text.find(token["form"], cursor)
        if start < 0 or text[cursor:start].strip():
            raise BuildError(f"{file}: sentence {sent_id}: token {token['id']} {token['form']!r} is not the next "
                             f"word of its text after character {cursor}", field="params.files",
                             fix="use the treebank's files unchanged (each token's form must appear in `# text`)")
        cursor = start + len(token["form"])
        word_start = start if word_start is None else word_start
        if token["deprel"] == IG_RELATION and token["head"] == token["id"] + 1:
            continue  # a non-final piece of a word: the word goes on with the next token
        words.append(Word(word_start, cursor, token["upos"], token["deprel"]))
        word_start = None
    return words


def document_of(sent_id: str) -> str:
    """The document a sentence comes from: its sent_id without the last `:S<n>` part."""
    return sent_id.rsplit(":", 1)[0]


def build_gold_words(ctx: BuildContext) -> Iterator[dict]:
    """Sentences of the treebank; targets = words whose gold label (params.attribute) is a class."""
    builder_extra("conllu", "bank", ctx.card.name)  # before any fetch: without conllu the dataset is skipped
    p = ctx.params
    if p.get("attribute") not in ATTRIBUTES:
        raise BuildError(f"params.attribute must be one of {list(ATTRIBUTES)}", field="params.attribute",
                         fix="upos (part of speech) or deprel (dependency relation)")
    attribute = p["attribute"]
    classes = set(ctx.card.labels.classes)
    min_words, max_words = p.get("min_words", 3), p.get("max_words", 60)
    root = ctx.fetch("treebank")
    seen: set[str] = set()
    for relative in p["files"]:
        path = safe_join(root, relative, field="params.files")
        if not path.is_file():
            raise BuildError(f"no file {relative} in the unpacked treebank source {root}",
                             field="params.files", fix="list CoNLL-U files of the pinned package, relative to it")
        section = Path(relative).stem
        for index, sentence in enumerate(read_sentences(path, ctx.card.name)):
            text = sentence.metadata.get("text", "")
            words = sentence_words(sentence, relative)
            n_words = sum(w.upos != "PUNCT" for w in words)
            if not (min_words <= n_words <= max_words) or text in seen:
                continue
            targets = [(w.start, w.end, getattr(w, attribute)) for w in words if getattr(w, attribute) in classes]
            if not targets:
                continue
            seen.add(text)
            doc = document_of(sentence.metadata.get("sent_id", f"{index}"))
            yield {"id": f"twt-{section}-{index}", "text": text, "targets": targets, "group": f"twt-{section}:{doc}"}


BUILDERS = {"syntax-upos-gold-tr": build_gold_words, "syntax-deprel-gold-tr": build_gold_words}
