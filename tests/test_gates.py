"""Quality gates: each gate catches what it names, waivers turn a failure into 'waived', results are cached,
and `validate --all` reports every failure at the end (exit 2) without losing what it computed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from probebank.cli import main
from probebank.data.examples import build_dataset
from probebank.data.gates import GATES, measure_gates, run_gates, target_rows
from probebank.data.registry import load_catalog
from probebank.extract.tokenizer import load_tokenizer
from probebank.plugins import get_registered

TOK = "tiny:llama"

CARD = """\
name: {name}
version: "1.0"
category: lexical
description: A small test dataset for the quality gates.
citation: written for the probebank tests
license: CC0-1.0
builder: {name}
labels:
  type: binary
  classes: [lower, capitalised]
targets:
  kind: spans
aggregation: last
min_per_class: 10
split:
  test_size: 0.3
  grouped: {grouped}
{extra}
"""

# Sixty distinct words per class; the plugin decides how texts, groups and labels are made.
PLUGIN = '''
from probebank.hookspecs import hookimpl

LOWER = ["apple", "river", "stone", "cloud", "grass", "table", "paper", "water", "field", "glass", "honey",
         "lemon", "mouse", "night", "ocean", "piano", "queen", "radio", "sheep", "tiger", "uncle", "voice",
         "wheat", "yacht", "zebra", "bread", "chair", "dress", "eagle", "flame", "grape", "heart", "island",
         "jelly", "knife", "light", "money", "noise", "onion", "plant", "quilt", "robin", "sugar", "towel",
         "union", "valley", "window", "yellow", "garden", "forest", "bottle", "candle", "dinner", "engine",
         "finger", "hammer", "jacket", "kettle", "ladder", "mirror"]
CAPITAL = [w.capitalize() for w in LOWER]
# Same lengths and word positions, different words: "apple" and "Apple" never share a template, so the
# two classes hold no near-duplicate texts.
TEMPLATES = {"lower": ["we saw {w} today", "{w} was here before noon", "nobody said {w} at the long meeting"],
             "capitalised": ["we met {w} today", "{w} sat here before noon", "nobody said {w} at the last meeting"]}


def words_in_texts(by_word):
    """One text per (word, template); the target is the word."""
    for words, label in ((LOWER, "lower"), (CAPITAL, "capitalised")):
        for w in words:
            for t, tpl in enumerate(TEMPLATES[label]):
                text = tpl.format(w=w)
                yield {"id": f"{label}-{w}-{t}", "text": text, "targets": [(text.index(w), text.index(w) + len(w))],
                       "label": label, "group": w.lower() if by_word else f"{w}-{t}"}


def fair(ctx):
    # the same word in both classes ("apple" / "Apple") in one group: identity of the lowercase word says nothing
    yield from words_in_texts(by_word=True)


def shortcut(ctx):
    # the label is a function of one token: every capitalised row targets "Paris", in the same templates
    # and positions as the lowercase words, each text made distinct by a number
    for i, ex in enumerate(words_in_texts(by_word=False)):
        if ex["label"] == "capitalised":
            text = TEMPLATES["capitalised"][i % 3].format(w="Paris")
            ex = {**ex, "text": text, "targets": [(text.index("Paris"), text.index("Paris") + 5)]}
        yield {**ex, "text": ex["text"] + f" ({i})"}


def duplicated(ctx):
    rows = list(words_in_texts(by_word=True))
    yield from rows
    for ex in rows[:12]:  # the same text again, with the other label
        yield {**ex, "id": ex["id"] + "-again", "label": "lower" if ex["label"] == "capitalised" else "capitalised"}


@hookimpl
def register_datasets(register):
    register("lexical-fair", fair)
    register("lexical-shortcut", shortcut)
    register("lexical-duplicated", duplicated)
'''


@pytest.fixture
def gate_bank(tmp_path: Path, empty_bank: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))

    def make(*cards: tuple[str, str, str]) -> Path:
        folder = tmp_path / "bank"
        for name, grouped, extra in cards:
            write(folder / name / "card.yaml", CARD.format(name=name, grouped=grouped, extra=extra))
        write(folder / "gate_plugin.py", PLUGIN)
        return folder

    return make


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def built_of(folder: Path, name: str, limit: int | None = None):
    entry = load_catalog([folder]).get(name)
    return build_dataset(entry, builders=get_registered([folder]).builders, limit=limit, include=[folder],
                         progress=False)


def results(folder: Path, name: str) -> dict:
    tok = load_tokenizer(TOK)
    return run_gates(built_of(folder, name), tok.tokenizer, tok.revision).by_gate()


def test_fair_dataset_passes_every_gate(gate_bank) -> None:
    folder = gate_bank(("lexical-fair", "true", ""))
    res = results(folder, "lexical-fair")
    assert list(res) == list(GATES)
    assert {g: r.status for g, r in res.items()} == {g: "pass" for g in GATES}, res
    assert res["min_examples"].value == 180 and res["class_balance"].value == 1.0
    assert res["leakage"].value == 0 and res["duplicates"].value == 0.0
    assert 0.0 <= res["token_identity"].value < 0.9
    assert res["alignment"].value == 0.0 and res["alignment"].examples == []
    assert res["alignment"].detail == "0 of 360 targets (0 partial, 0 no token)"


def test_token_shortcut_fails_then_waiver_turns_it_to_waived(gate_bank, capsys) -> None:
    folder = gate_bank(("lexical-shortcut", "true", ""))
    res = results(folder, "lexical-shortcut")
    assert res["token_identity"].status == "fail" and res["token_identity"].value == pytest.approx(1.0)
    assert res["token_identity"].per_feature == {"capitalised": 1.0}
    code, out = run_cli(capsys, "validate", "lexical-shortcut", "--include", str(folder), "--tokenizer", TOK)
    assert code == 2, out
    assert "lexical-shortcut" in out and "gate token_identity failed: 1.000" in out and "waivers:" in out
    card = folder / "lexical-shortcut" / "card.yaml"
    card.write_text(card.read_text() + "waivers:\n  token_identity: every capitalised row targets Zed, on purpose\n")
    code, out = run_cli(capsys, "validate", "lexical-shortcut", "--include", str(folder), "--tokenizer", TOK)
    assert code == 0, out
    assert "waived" in out and "on purpose" in out


def test_duplicates_with_other_labels_fail(gate_bank) -> None:
    folder = gate_bank(("lexical-duplicated", "true", ""))
    res = results(folder, "lexical-duplicated")
    assert res["duplicates"].status == "fail"
    assert res["duplicates"].value == pytest.approx(12 / 372)
    assert "12 with different labels" in res["duplicates"].detail
    assert res["near_duplicates"].value == pytest.approx(12 / 372)  # 3.2%: under 5%, passes
    assert res["near_duplicates"].status == "pass"


def test_ungrouped_split_leaks_groups(gate_bank) -> None:
    # one group per word, but the card does not group the split: the word's texts land on both sides
    folder = gate_bank(("lexical-fair", "false", ""))
    res = results(folder, "lexical-fair")
    assert res["leakage"].status == "fail" and res["leakage"].value > 0
    assert "groups on both sides" in res["leakage"].detail


def test_min_examples_fails_and_its_waiver_also_lets_the_build_through(gate_bank) -> None:
    folder = gate_bank(("lexical-fair", "true", ""))
    card = folder / "lexical-fair" / "card.yaml"
    card.write_text(card.read_text().replace("min_per_class: 10", "min_per_class: 500"))
    with pytest.raises(Exception, match="classes below the minimum of 500"):
        built_of(folder, "lexical-fair")
    card.write_text(card.read_text() + "waivers:\n  min_examples: a test of the gate\n")
    res = results(folder, "lexical-fair")
    assert res["min_examples"].threshold == ">= 500" and not res["min_examples"].passed
    assert res["min_examples"].status == "waived" and res["min_examples"].reason == "a test of the gate"


def test_editing_a_waiver_rebuilds_nothing(gate_bank) -> None:
    folder = gate_bank(("lexical-shortcut", "true", ""))
    first = built_of(folder, "lexical-shortcut")
    card = folder / "lexical-shortcut" / "card.yaml"
    card.write_text(card.read_text() + "waivers:\n  token_identity: on purpose\n")
    again = built_of(folder, "lexical-shortcut")
    assert again.path == first.path and again.content_hash == first.content_hash


def test_target_rows_follow_the_aggregation(gate_bank) -> None:
    folder = gate_bank(("lexical-fair", "true", ""))
    built = built_of(folder, "lexical-fair")
    tok = load_tokenizer(TOK).tokenizer
    rows = target_rows(built, tok)
    ex = built.dataset[0]
    ids = tok(ex["text"], add_special_tokens=True)["input_ids"]
    first = int(np.flatnonzero(rows["example"] == 0)[0])
    assert rows["token"][first] == ids[rows["position"][first]]
    assert rows["length"][first] == len(ex["text"])
    built.card.aggregation = "each"
    rows_each = target_rows(built, tok)
    assert len(rows_each["label"]) >= len(rows["label"])


def test_gates_are_cached_by_content(gate_bank, monkeypatch) -> None:
    folder = gate_bank(("lexical-fair", "true", ""))
    first = results(folder, "lexical-fair")
    files = list((Path(os.environ["PROBEBANK_CACHE"]) / "gates").glob("*.json"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr("probebank.data.gates.measure_gates", boom)
    again = results(folder, "lexical-fair")
    assert {g: r.value for g, r in again.items()} == {g: r.value for g, r in first.items()}
    saved = json.loads(files[0].read_text())
    assert [r["gate"] for r in saved] == list(GATES)


def test_validate_all_keeps_going_and_reports_every_failure(gate_bank, capsys) -> None:
    folder = gate_bank(("lexical-shortcut", "true", ""), ("lexical-duplicated", "true", ""),
                       ("lexical-fair", "true", "waivers:\n  no_such_gate: typo on purpose\n"))
    code, out = run_cli(capsys, "validate", "--all", "--limit", "500", "--include", str(folder), "--tokenizer", TOK)
    assert code == 2, out
    tail = out[out.index("problem(s)"):]
    assert "lexical-shortcut" in tail and "token_identity" in tail
    assert "lexical-duplicated" in tail and "duplicates" in tail
    assert "lexical-fair" not in tail.split("Fix:")[0]
    assert "waiver 'no_such_gate' names no gate" in out
    # every dataset's gates were computed and kept
    assert len(list((Path(os.environ["PROBEBANK_CACHE"]) / "gates").glob("*.json"))) == 3


def test_measure_gates_without_a_possible_split_reports_instead_of_crashing(gate_bank) -> None:
    folder = gate_bank(("lexical-fair", "true", ""))
    built = built_of(folder, "lexical-fair", limit=1)  # one word per class: a grouped split is impossible
    res = {r.gate: r for r in measure_gates(built, load_tokenizer(TOK).tokenizer)}
    assert not res["leakage"].passed and "no split possible" in res["leakage"].detail



ALIGN_CARD = """\
name: {name}
version: "1.0"
category: lexical
description: Which verb precedes the word (a test dataset for the alignment gate).
citation: written for the probebank tests
license: CC0-1.0
builder: {name}
labels:
  type: binary
  classes: [found, moved]
targets:
  kind: spans
aggregation: last
min_per_class: 10
{extra}
"""

ALIGN_PLUGIN = '''
from probebank.hookspecs import hookimpl

# Words the tiny tokenizer holds as whole tokens after a space, so a span one character off always
# starts or ends inside a token. Every word sits in both classes (one group), in templates of equal
# shape: no shortcut gate fails, only the spans can be wrong.
WORDS = ("cat dog teacher engineer child river city book ball code garden doctor farmer pilot singer painter "
         "nurse baker lawyer student Paris Berlin Tokyo Lagos Lima Oslo Cairo Delhi Rome Madrid").split()
TEMPLATES = {"found": ["we found {w} today", "nobody found {w} at the long meeting"],
             "moved": ["we moved {w} today", "nobody moved {w} at the long meeting"]}


def examples(shift_every):
    i = 0
    for label, templates in TEMPLATES.items():
        for w in WORDS:
            for t, template in enumerate(templates):
                text = template.format(w=w)
                start = text.index(f" {w} ") + 1
                # the bug under test: an offset computed one character late ("we found c[at ]today")
                shift = 1 if shift_every and i % shift_every == 0 else 0
                yield {"id": f"{label}-{w}-{t}", "text": text, "label": label, "group": w,
                       "targets": [(start + shift, start + len(w) + shift)]}
                i += 1


def correct(ctx):
    yield from examples(0)


def shifted(ctx):
    yield from examples(1)


def few_shifted(ctx):
    yield from examples(40)  # 3 of 120 targets: under the gate's 5%


@hookimpl
def register_datasets(register):
    register("lexical-verb", correct)
    register("lexical-verb-shifted", shifted)
    register("lexical-verb-few-shifted", few_shifted)
'''


@pytest.fixture
def align_bank(tmp_path: Path, empty_bank: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))

    def make(*cards: tuple[str, str]) -> Path:
        folder = tmp_path / "align-bank"
        for name, extra in cards:
            write(folder / name / "card.yaml", ALIGN_CARD.format(name=name, extra=extra))
        write(folder / "align_plugin.py", ALIGN_PLUGIN)
        return folder

    return make


def test_shifted_spans_fail_validate_with_the_first_targets_quoted(align_bank, capsys) -> None:
    folder = align_bank(("lexical-verb", ""), ("lexical-verb-shifted", ""))
    res = results(folder, "lexical-verb-shifted")
    assert res["alignment"].status == "fail" and res["alignment"].value == 1.0
    assert res["alignment"].detail == "120 of 120 targets (120 partial, 0 no token)"
    assert [g for g, r in res.items() if r.status != "pass"] == ["alignment"]  # nothing else is wrong
    code, out = run_cli(capsys, "validate", "lexical-verb-shifted", "--include", str(folder), "--tokenizer", TOK)
    assert code == 2, out
    tail = out[out.index("problem(s)"):]
    assert "lexical-verb-shifted" in tail and "gate alignment failed: 1.000 (needs <= 5%" in tail
    # the first three offending targets, in dataset order: the text with the span marked, the span, its tokens
    quotes = [line.strip() for line in tail.splitlines() if line.strip().startswith("example ")]
    assert quotes == ["example 'found-cat-0' target 0: \"we found c⟦at ⟧today\" span 'at ' -> tokens 'cat'",
                      "example 'found-cat-1' target 0: \"nobody found c⟦at ⟧at the long meeting\" span 'at ' -> "
                      "tokens 'cat'",
                      "example 'found-dog-0' target 0: \"we found d⟦og ⟧today\" span 'og ' -> tokens 'dog'"]
    assert "waivers: {alignment: <reason>}" in tail
    # the same builder without the bug passes
    code, out = run_cli(capsys, "validate", "lexical-verb", "--include", str(folder), "--tokenizer", TOK)
    assert code == 0, out
    assert results(folder, "lexical-verb")["alignment"].value == 0.0


def test_a_few_off_boundary_targets_pass_and_a_waiver_shows_its_reason(align_bank, capsys) -> None:
    folder = align_bank(("lexical-verb-few-shifted", ""),
                        ("lexical-verb-shifted", "waivers:\n  alignment: spans cut words on purpose\n"))
    few = results(folder, "lexical-verb-few-shifted")["alignment"]
    assert few.status == "pass" and few.value == pytest.approx(3 / 120)
    assert [q.split(":")[0] for q in few.examples] == ["example 'found-cat-0' target 0",
                                                       "example 'found-Paris-0' target 0",
                                                       "example 'moved-garden-0' target 0"]  # kept even on a pass
    code, out = run_cli(capsys, "validate", "--all", "--include", str(folder), "--tokenizer", TOK)
    assert code == 0, out
    assert "spans cut words on purpose" in out
    waived = results(folder, "lexical-verb-shifted")["alignment"]
    assert waived.status == "waived" and waived.reason == "spans cut words on purpose"
