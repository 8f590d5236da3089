"""Char spans -> tokens: multi-token targets, truncation, leading spaces, non-ASCII, causal cuts."""
from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from probebank.data.align import align_examples

CORPUS = ["the cat sat on the mat", "a dog ran in the park", "naïve café in Zürich", "東京 is a city",
          "probing neurons in a haystack", "sparse probes find neurons"] * 20


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    """A byte-level BPE like GPT-2/SmolLM2's (spaces attach to the next word), trained offline."""
    inner = Tokenizer(models.BPE())
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    inner.decoder = decoders.ByteLevel()
    inner.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<bos>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=inner, bos_token="<bos>", pad_token="<bos>")


def _one(tok, text, spans, max_tokens=64, causal=True, label=1):
    targets = [[{"start": s, "end": e, "label": -1} for s, e in spans]]
    return align_examples(tok, [text], targets, [label], max_tokens=max_tokens, causal=causal)


def test_leading_space_word_is_one_whole_token(tok) -> None:
    text = "the cat sat on the mat"
    s = text.index("mat")
    aligned, report = _one(tok, text, [(s, s + 3)])
    (t_idx, a, b), = aligned[0].targets
    assert b - a == 1
    assert tok.decode(aligned[0].input_ids[a:b]).strip() == "mat"
    assert report.single_token == 1 and report.partial == 0 and report.split == 0


def test_multi_token_target_is_split_and_covered(tok) -> None:
    text = "the cat sat on the xylophonequartz"
    s = text.index("xylophonequartz")
    aligned, report = _one(tok, text, [(s, len(text))])
    (_, a, b), = aligned[0].targets
    assert b - a > 1 and report.split == 1
    assert tok.decode(aligned[0].input_ids[a:b]).strip() == "xylophonequartz"


def test_partial_word_target_is_reported(tok) -> None:
    text = "probing neurons"
    aligned, report = _one(tok, text, [(3, 7)])  # "bing" inside "probing"
    assert report.partial == 1


def test_non_ascii_offsets_are_characters(tok) -> None:
    text = "naïve café in Zürich and 東京"
    for word in ("café", "Zürich", "東京"):
        s = text.index(word)
        aligned, _ = _one(tok, text, [(s, s + len(word))])
        (_, a, b), = aligned[0].targets
        assert tok.decode(aligned[0].input_ids[a:b]).strip() == word


def test_truncation_drops_and_truncates(tok) -> None:
    text = " ".join(["cat"] * 40)
    late = len(text) - 3
    aligned, report = _one(tok, text, [(0, 3), (late, len(text))], max_tokens=10)
    assert report.dropped == 1 and len(aligned[0].targets) == 1
    whole, report2 = _one(tok, text, [(0, len(text))], max_tokens=10)
    assert report2.truncated == 1 and whole[0].targets[0][2] == 10
    assert len(whole[0].input_ids) == 10


def test_example_with_every_target_dropped_is_counted(tok) -> None:
    text = " ".join(["dog"] * 30)
    aligned, report = _one(tok, text, [(len(text) - 3, len(text))], max_tokens=5)
    assert aligned == [] and report.dropped_examples == 1


def test_causal_models_cut_after_last_target(tok) -> None:
    text = "the cat sat on the mat in the park"
    aligned, report = _one(tok, text, [(4, 7)], causal=True)
    (_, a, b), = aligned[0].targets
    assert len(aligned[0].input_ids) == b
    full, _ = _one(tok, text, [(4, 7)], causal=False)
    assert len(full[0].input_ids) > b
    assert report.tokens_run < report.tokens_in


def test_target_labels_override_example_label(tok) -> None:
    text = "the cat sat"
    targets = [[{"start": 0, "end": 3, "label": 2}, {"start": 4, "end": 7, "label": -1}]]
    aligned, _ = align_examples(tok, [text], targets, [5], max_tokens=32, causal=True)
    assert aligned[0].labels == [2, 5]
