"""Char spans -> tokens: multi-token targets, truncation, leading spaces, non-ASCII, causal cuts, and the
targets off token boundaries (partial, no token) with their quotes."""
from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from probebank.data.align import align_examples, quote_target

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


def test_a_shifted_span_is_off_boundary_and_quoted(tok) -> None:
    text = "the cat sat on the mat"
    s = text.index("cat")
    _, report = _one(tok, text, [(s + 1, s + 4)])  # "at " instead of "cat"
    assert report.partial == 1 and report.no_token == 0 and report.off_boundary == 1
    (q,) = report.off_boundary_examples
    assert (q["example"], q["target"], q["start"], q["end"]) == (0, 0, s + 1, s + 4)
    assert q["quote"].startswith('"the c⟦at ⟧sat on the mat" span \'at \' -> tokens ')
    assert "cat" in q["quote"].split("-> tokens ")[1]  # the token the span starts inside
    assert report.notes == [f"1 of 1 targets (100.0%) do not start and end on token boundaries (1 partial, "
                            f"0 no token); first: example 0: {q['quote']}"]


def test_a_span_no_token_overlaps_is_off_boundary() -> None:
    from probebank.extract.tiny import tiny_tokenizer

    trimmed = tiny_tokenizer("bpe")  # trims offsets: the spaces between words belong to no token
    text = "the cat  sat"
    _, report = align_examples(trimmed, [text], [[{"start": 0, "end": 3, "label": -1},
                                                  {"start": 7, "end": 9, "label": -1}]], [1],
                               max_tokens=64, causal=True)
    assert report.no_token == 1 and report.dropped == 1 and report.partial == 0
    assert report.off_boundary == 1 and report.off_boundary_share == 0.5
    assert report.off_boundary_examples[0]["quote"] == '"the cat⟦  ⟧sat" span \'  \' -> tokens none'


def test_whole_words_are_on_boundaries_and_only_the_first_offenders_are_kept(tok) -> None:
    text = "the cat sat on the mat"
    words = [(m, m + len(w)) for w, m in ((w, text.index(w)) for w in ("the", "cat", "sat", "mat"))]
    _, report = _one(tok, text, words)
    assert report.off_boundary == 0 and report.off_boundary_examples == [] and report.notes == []
    texts = [f"the cat sat on the mat {i}" for i in range(8)]
    targets = [[{"start": 5, "end": 7, "label": -1}] for _ in texts]  # "at" of "cat"
    _, report = align_examples(tok, texts, targets, [1] * 8, max_tokens=64, causal=True)
    assert report.partial == 8 and [q["example"] for q in report.off_boundary_examples] == [0, 1, 2, 3, 4]
    saved = json.loads(json.dumps(report.as_dict()))
    assert saved["off_boundary"] == 8 and saved["off_boundary_share"] == 1.0 and len(saved["off_boundary_examples"]) == 5


def test_quote_escapes_newlines_and_elides_long_spans() -> None:
    text = "line one\nline two " + "x" * 100 + " end"
    s = text.index("x")
    q = quote_target(text, s, s + 100, [(s, s + 50), (s + 50, s + 100)])
    assert "\n" not in q and "line one\\nline two ⟦" in q
    assert "..." in q.split("⟦")[1].split("⟧")[0] and len(q) < 300


SHIFTED_PLUGIN = '''
from probebank.hookspecs import hookimpl

WORDS = ["cat", "Paris", "dog", "Berlin", "river", "Tokyo", "book", "Lima", "garden", "Oslo", "doctor", "Cairo",
         "pilot", "Delhi", "nurse", "Rome"]


def build(ctx):
    for w in WORDS:
        text = f"we saw {w} today"
        start = text.index(w) + 1  # off by one: "we saw c[at ]today"
        yield {"text": text, "targets": [(start, start + len(w))],
               "label": "capitalised" if w[0].isupper() else "lower", "group": w}


@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''


def test_a_run_on_shifted_spans_warns_and_alignment_json_quotes_them(bank, tmp_path) -> None:
    from probebank.run import RunConfig, run

    folder = bank(plugin=SHIFTED_PLUGIN)
    logged: list[str] = []
    run(RunConfig(model="tiny:llama", datasets=["toy-words"], include=[folder], out=tmp_path / "out",
                  methods=["mean_diff"], controls=False, progress=False), log=logged.append)
    alignment = json.loads((tmp_path / "out" / "alignment.json").read_text())["toy-words"]
    assert alignment["targets"] == 16 and alignment["partial"] == 16 and alignment["off_boundary_share"] == 1.0
    assert alignment["off_boundary_examples"][0]["quote"].startswith('"we saw c⟦at ⟧today" span \'at \'')
    assert alignment["notes"][0].startswith("16 of 16 targets (100.0%) do not start and end on token boundaries")
    warning = [line for line in logged if "warning" in line]
    assert len(warning) == 1 and "probebank validate toy-words" in warning[0]
    # a card that waives the gate has said why: no warning
    card = folder / "toy-words" / "card.yaml"
    card.write_text(card.read_text() + "waivers:\n  alignment: shifted on purpose\n")
    logged.clear()
    run(RunConfig(model="tiny:llama", datasets=["toy-words"], include=[folder], out=tmp_path / "out2",
                  methods=["mean_diff"], controls=False, progress=False), log=logged.append)
    assert not [line for line in logged if "warning" in line]
