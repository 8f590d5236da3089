"""Trivial-cue baselines for datasets, on each card's own split: how far do shortcuts get?

For each one-vs-rest feature it prints the F1 of the label predicted from
  - token: the target's last token id alone (lookup table, as the token_identity gate),
  - position: the target's last token index alone (depth-3 tree, as the position gate),
  - length: the text's length in tokens alone (depth-3 tree, as the length gate),
  - bow: a logistic regression on word presence over the whole text (bag of words),
so that probe scores can be read against them. One row per target (aggregation `last`).

    PROBEBANK_CACHE=... python bench/dataset_baselines.py safety-dna-harmful bias-crows-pairs
"""
from __future__ import annotations

import sys

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from probebank.data.examples import build_dataset, row_labels
from probebank.data.registry import load_catalog
from probebank.data.shortcuts import categorical_shortcut_f1, numeric_shortcut_f1
from probebank.data.splits import grouped_stratified_split
from probebank.extract.providers import load_model
from probebank.plugins import get_registered


def target_rows(dataset, tokenizer):
    """(text, last token id, last token index, text length in tokens, label, group) per target."""
    rows = []
    texts = list(dataset["text"])
    enc = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
    for ex, ids, offsets in zip(dataset, enc["input_ids"], enc["offset_mapping"]):
        targets = ex["targets"]
        if isinstance(targets, dict):
            targets = [dict(zip(targets, v)) for v in zip(*targets.values())]
        for t, label in zip(targets, row_labels(ex)):
            hit = [i for i, (a, b) in enumerate(offsets) if b > a and a < t["end"] and b > t["start"]]
            if hit:
                rows.append((ex["text"], ids[hit[-1]], hit[-1], len(ids), label, ex["group"]))
    return rows


def main(names: list[str], limit: int | None = None) -> None:
    catalog = load_catalog([])
    builders = get_registered([]).builders
    tokenizer = load_model("smollm2-135m").tokenizer
    print(f"{'dataset':26s} {'feature':26s} {'n':>6s} {'token':>6s} {'posit':>6s} {'length':>6s} {'bow':>6s}")
    for name in names:
        built = build_dataset(catalog.entries[name], builders=builders, limit=limit, progress=False)
        card = built.card
        rows = target_rows(built.dataset, tokenizer)
        y_all = np.array([r[4] for r in rows])
        groups = np.array([r[5] for r in rows])
        tr, te = grouped_stratified_split(y_all, groups if card.split.grouped else None,
                                          card.split.test_size, card.split.seed)
        texts = [r[0] for r in rows]
        vec = CountVectorizer(binary=True, lowercase=True, token_pattern=r"(?u)\b\w+\b")
        X = vec.fit_transform([texts[i] for i in tr])
        Xte = vec.transform([texts[i] for i in te])
        positives = range(len(card.labels.classes)) if card.labels.type != "binary" else [1]
        for c in positives:
            y = (y_all == c).astype(int)
            tok = categorical_shortcut_f1([rows[i][1] for i in tr], y[tr], [rows[i][1] for i in te], y[te])
            pos = numeric_shortcut_f1(np.array([rows[i][2] for i in tr]), y[tr], np.array([rows[i][2] for i in te]), y[te])
            length = numeric_shortcut_f1(np.array([rows[i][3] for i in tr]), y[tr], np.array([rows[i][3] for i in te]), y[te])
            bow = LogisticRegression(max_iter=2000, class_weight="balanced").fit(X, y[tr])
            bow_f1 = f1_score(y[te], bow.predict(Xte), zero_division=0)
            print(f"{name:26s} {card.labels.classes[c]:26s} {len(rows):6d} {tok:6.2f} {pos:6.2f} {length:6.2f} {bow_f1:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
