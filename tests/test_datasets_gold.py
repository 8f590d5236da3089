"""The gold syntax datasets (syntax-upos-gold-tr, syntax-deprel-gold-tr): the CoNLL-U word builder on a
small authored treebank in the Turkish Web Treebank's format, then full builds from the real pinned
turkish-treebanks 1.0.0 wheel (1.2 MB, fetched once into PROBEBANK_CACHE) checked against its annotation.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from probebank.data.examples import BuildContext, BuiltDataset, build_dataset, labelled_targets
from probebank.data.registry import CatalogEntry, load_registry_file
from probebank.data.splits import grouped_stratified_split
from probebank.errors import BuildError, ConfigError
from probebank_plugins.datasets import treebank

REPO = Path(__file__).resolve().parents[1]
NAMES = ["syntax-upos-gold-tr", "syntax-deprel-gold-tr"]

# Written for this test, in the treebank's format: inflectional groups linked by `ig` to the next piece.
# "okuyan" = oku (VERB) + yan (ADJ, a relative-clause participle); "buradayız" = burada (NOUN) + yız (VERB).
AUTHORED = """\
# sent_id = tr-test:001:S001
# text = Kitapları okuyan çocuk geldi.
1	Kitapları	kitap	NOUN	NN	_	2	dobj	_	_
2	oku	oku	VERB	VB	_	3	ig	_	SpaceAfter=No
3	yan	_	ADJ	VJ	_	4	rcmod	_	_
4	çocuk	çocuk	NOUN	NN	_	5	nsubj	_	_
5	geldi	gel	VERB	VB	_	0	root	_	SpaceAfter=No
6	.	.	PUNCT	.	_	5	p	_	_

# sent_id = tr-test:001:S002
# text = Ben ve sen buradayız.
1	Ben	ben	PRON	PRP	_	5	nsubj	_	_
2	ve	ve	CONJ	CC	_	3	cc	_	_
3	sen	sen	PRON	PRP	_	1	conj	_	_
4	burada	burada	NOUN	NN	_	5	ig	_	SpaceAfter=No
5	yız	_	VERB	NOMP	_	0	root	_	SpaceAfter=No
6	.	.	PUNCT	.	_	5	p	_	_

# sent_id = tr-test:002:S001
# text = Merhaba dünya .
1	Merhaba	merhaba	NOUN	NN	_	2	nn	_	_
2	dünya	dünya	NOUN	NN	_	0	root	_	_
3	.	.	PUNCT	.	_	2	p	_	_

# sent_id = tr-test:002:S007
# text = Bu çok güzel bir ev .
1	Bu	bu	DET	DT	_	5	det	_	_
2	çok	çok	ADV	RB	_	3	advmod	_	_
3	güzel	güzel	ADJ	JJ	_	5	amod	_	_
4	bir	bir	DET	DT	_	5	det	_	_
5	ev	ev	NOUN	NN	_	0	root	_	_
6	.	.	PUNCT	.	_	5	p	_	_

# sent_id = tr-test:003:S001
# text = Kitapları okuyan çocuk geldi.
1	Kitapları	kitap	NOUN	NN	_	2	dobj	_	_
2	oku	oku	VERB	VB	_	3	ig	_	SpaceAfter=No
3	yan	_	ADJ	VJ	_	4	rcmod	_	_
4	çocuk	çocuk	NOUN	NN	_	5	nsubj	_	_
5	geldi	gel	VERB	VB	_	0	root	_	SpaceAfter=No
6	.	.	PUNCT	.	_	5	p	_	_
"""


@pytest.fixture(scope="module")
def entries() -> dict[str, CatalogEntry]:
    catalog = load_registry_file(REPO / "registry.yaml")
    return {name: catalog.get(name) for name in NAMES}


def authored_build(entry: CatalogEntry, folder: Path, **params) -> list[dict]:
    """Run the builder on the authored treebank in `folder` (standing in for the unpacked wheel)."""
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "web.conllu").write_text(AUTHORED, encoding="utf-8")
    card = entry.card
    ctx = BuildContext(card=card, card_dir=None, params={**card.params, "files": ["data/web.conllu"], **params},
                       _fetched={"treebank": folder})
    return list(treebank.build_gold_words(ctx))


def spans(row: dict) -> list[tuple[str, str]]:
    return [(row["text"][s:e], label) for s, e, label in row["targets"]]


def test_words_merge_inflectional_groups_and_take_the_last_pieces_labels(entries, tmp_path: Path) -> None:
    upos = authored_build(entries["syntax-upos-gold-tr"], tmp_path)
    deprel = authored_build(entries["syntax-deprel-gold-tr"], tmp_path)
    # the two-word sentence is below min_words (3) and the repeated text of page 003 is skipped
    assert [r["id"] for r in upos] == ["twt-web-0", "twt-web-1", "twt-web-3"]
    assert spans(upos[0]) == [("Kitapları", "NOUN"), ("okuyan", "ADJ"), ("çocuk", "NOUN"), ("geldi", "VERB")]
    assert spans(upos[1]) == [("Ben", "PRON"), ("ve", "CONJ"), ("sen", "PRON"), ("buradayız", "VERB")]
    assert spans(upos[2]) == [("Bu", "DET"), ("çok", "ADV"), ("güzel", "ADJ"), ("bir", "DET"), ("ev", "NOUN")]
    assert spans(deprel[0]) == [("Kitapları", "dobj"), ("okuyan", "rcmod"), ("çocuk", "nsubj"), ("geldi", "root")]
    assert spans(deprel[1]) == [("Ben", "nsubj"), ("ve", "cc"), ("sen", "conj"), ("buradayız", "root")]
    # sentences of one page share a group; another page has its own
    assert [r["group"] for r in upos] == ["twt-web:tr-test:001", "twt-web:tr-test:001", "twt-web:tr-test:002"]


def test_sentence_length_limits_come_from_the_card(entries, tmp_path: Path) -> None:
    rows = authored_build(entries["syntax-upos-gold-tr"], tmp_path, min_words=2, max_words=4)
    assert [r["text"] for r in rows] == ["Kitapları okuyan çocuk geldi.", "Ben ve sen buradayız.", "Merhaba dünya ."]


@pytest.mark.parametrize("text_line, message", [
    ("# text = Kitapları okuyan kedi geldi.", "token 4 'çocuk'"),  # the text has another word than the token
    ("# note = no text line", "has no '# text ='"),
])
def test_a_treebank_whose_text_does_not_match_its_tokens_is_an_error_naming_the_sentence(
        tmp_path: Path, text_line: str, message: str) -> None:
    first = AUTHORED.split("\n\n")[0].replace("# text = Kitapları okuyan çocuk geldi.", text_line)
    path = tmp_path / "bad.conllu"
    path.write_text(first + "\n\n", encoding="utf-8")
    sentence = treebank.read_sentences(path, "syntax-upos-gold-tr")[0]
    with pytest.raises(BuildError) as err:
        treebank.sentence_words(sentence, "data/bad.conllu")
    assert "data/bad.conllu" in str(err.value) and "tr-test:001:S001" in str(err.value) and message in str(err.value)
    assert err.value.field == "params.files"


def test_bad_params_are_errors_naming_the_field(entries, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as err:
        authored_build(entries["syntax-upos-gold-tr"], tmp_path, attribute="xpos")
    assert err.value.field == "params.attribute"
    entry = entries["syntax-upos-gold-tr"]
    ctx = BuildContext(card=entry.card, card_dir=None, params={**entry.card.params, "files": ["data/none.conllu"]},
                       _fetched={"treebank": tmp_path})
    with pytest.raises(BuildError) as err:
        list(treebank.build_gold_words(ctx))
    assert err.value.field == "params.files" and "data/none.conllu" in str(err.value)
    ctx = BuildContext(card=entry.card, card_dir=None, params={**entry.card.params, "files": ["../outside.conllu"]},
                       _fetched={"treebank": tmp_path})
    with pytest.raises(ConfigError):
        list(treebank.build_gold_words(ctx))


# --- the real treebank ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(entries: dict[str, CatalogEntry]) -> dict[str, BuiltDataset]:
    return {name: build_dataset(entries[name], builders=treebank.BUILDERS, progress=False) for name in NAMES}


def by_id(b: BuiltDataset) -> dict[str, list[tuple[str, str]]]:
    classes = b.card.labels.classes
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row, text, label in labelled_targets(b.dataset, classes):
        out[row["id"]].append((text, label))
    return out


def test_cards_are_gold_and_pinned(entries) -> None:
    for name in NAMES:
        card = entries[name].card
        assert not card.silver and "gold" in card.tags and card.builder == name
        (pin,) = card.sources
        assert (pin.package, pin.version, pin.filename) == ("turkish-treebanks", "1.0.0",
                                                           "turkish_treebanks-1.0.0-py3-none-any.whl")
        assert len(pin.sha256 or "") == 64 and "Apache-2.0" in card.license
    suite = load_registry_file(REPO / "registry.yaml").suite("bank").datasets
    assert set(NAMES) <= set(suite)


def test_every_spacy_labelled_syntax_card_is_marked_silver() -> None:
    catalog = load_registry_file(REPO / "registry.yaml")
    for name in catalog.names():
        card = catalog.get(name).card
        if card.category == "syntax" and any("spacy" in (p.package or "") or "core-web" in (p.package or "")
                                             for p in card.sources):
            assert card.silver and "silver" in card.tags, name


def test_real_sentences_carry_the_annotators_labels(built) -> None:
    upos, deprel = by_id(built["syntax-upos-gold-tr"]), by_id(built["syntax-deprel-gold-tr"])
    # the first web sentence: "Burda da öylemi yoksa kiloyla mı ?"
    assert upos["twt-web-0"] == [("Burda", "PRON"), ("da", "PRT"), ("öylemi", "VERB"), ("yoksa", "CONJ"),
                                 ("kiloyla", "VERB"), ("mı", "PRT")]
    assert deprel["twt-web-0"] == [("Burda", "npadvmod"), ("da", "prt"), ("öylemi", "conj"), ("yoksa", "cc"),
                                   ("kiloyla", "root"), ("mı", "prt")]
    # the second: "Açıklanmayan" (Açık+la+nma+yan) is one word, an adjective modifying "soruların"
    second = dict(upos["twt-web-1"])
    assert second["Açıklanmayan"] == "ADJ" and second["soruların"] == "NOUN" and second["bilmek"] == "NOUN"
    assert dict(deprel["twt-web-1"])["Açıklanmayan"] == "rcmod"
    assert dict(deprel["twt-web-1"])["imkansız"] == "root"


def test_closed_class_words_get_their_class(built) -> None:
    words: dict[str, Counter] = defaultdict(Counter)
    for _, text, label in labelled_targets(built["syntax-upos-gold-tr"].dataset,
                                           built["syntax-upos-gold-tr"].card.labels.classes):
        words[text.lower()][label] += 1
    for word, expected in (("ve", "CONJ"), ("bir", "DET"), ("bu", "DET"), ("için", "ADP"), ("ben", "PRON")):
        counts = words[word]
        assert counts.most_common(1)[0][0] == expected and counts[expected] / sum(counts.values()) > 0.7, (word, counts)


def test_targets_are_whole_words_and_every_sentence_has_a_root(built) -> None:
    for name in NAMES:
        for row in built[name].dataset.to_list():
            for t in row["targets"]:
                word = row["text"][t["start"]:t["end"]]
                assert word == word.strip() and " " not in word, (row["id"], word)
    root = built["syntax-deprel-gold-tr"].card.labels.classes.index("root")
    assert all(sum(t["label"] == root for t in r["targets"]) == 1 for r in built["syntax-deprel-gold-tr"].dataset)


def test_pages_are_groups_and_stay_on_one_side_of_the_split(built) -> None:
    b = built["syntax-upos-gold-tr"]
    rows = b.dataset.to_list()
    assert len({r["text"] for r in rows}) == len(rows) == 4773
    groups = Counter(r["group"] for r in rows)
    assert all(g.startswith(("twt-web:tr-", "twt-wiki:http")) for g in groups)
    assert max(groups.values()) > 1 and len(groups) == 2345  # wiki pages give up to 14 sentences
    first_label = np.array([r["targets"][0]["label"] for r in rows])
    group_ids = np.array([r["group"] for r in rows])
    train, test = grouped_stratified_split(first_label, group_ids, b.card.split.test_size, b.card.split.seed)
    assert not set(group_ids[train]) & set(group_ids[test])


def test_a_limited_build_samples_both_sections(entries) -> None:
    b = build_dataset(entries["syntax-upos-gold-tr"], builders=treebank.BUILDERS, limit=60, progress=False)
    sections = Counter(r["id"].split("-")[1] for r in b.dataset.to_list())
    assert set(sections) == {"web", "wiki"} and min(sections.values()) > 20
