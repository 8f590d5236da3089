"""Dataset quality gates: cheap checks that a built dataset can be probed honestly.

Each gate measures one number on a built dataset and compares it with a threshold:

- min_examples     smallest class count (targets) >= the card's min_per_class (capped by a build limit)
- class_balance    smallest class / largest class >= 0.1
- duplicates       exact duplicate texts <= 1% of examples, and none carrying different labels
- near_duplicates  texts equal after lowercasing and dropping non-alphanumerics <= 5%
- leakage          no identical text and no group on both sides of the card's train/test split
- alignment        targets off the gate tokenizer's token boundaries (partial or no token) <= 5%
- token_identity   label predicted from the target token's id alone: F1 < 0.9 on every feature
- position         ... from the target token's position alone: F1 < 0.9
- length           ... from the text's length in characters alone: F1 < 0.9
  (on a regression card the three shortcuts predict the value instead: R2 < 0.9, see
  probebank.data.values; min_examples and class_balance do not apply)

The split and the one-vs-rest features are made exactly as the probes make them
(`evaluate.feature_splits` on the rows `grouped_stratified_split` sees); the target token and
its position come from `align.align_examples` with the gate tokenizer (the default model's),
the token the card's aggregation reads: the first token of a target for `first`, else the last.
The same alignment counts the targets off token boundaries and quotes the first few (`alignment`).

Measurements are cached by (dataset content hash, tokenizer, card fields they read, this code);
waivers are applied afterwards, so editing a waiver never recomputes anything.
"""
from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from probebank.cache.atomic import write_text
from probebank.cache.checksums import file_problem, seal_file
from probebank.cache.quarantine import quarantine
from probebank.data.align import OFF_BOUNDARY_MAX, AlignedExample, AlignmentReport, align_examples
from probebank.data.examples import BuiltDataset, row_labels, targets_as_rows
from probebank.data.shortcuts import categorical_shortcut_f1, numeric_shortcut_f1
from probebank.data.splits import feature_splits, grouped_stratified_split
from probebank.data.values import value_shortcuts
from probebank.hashing import fingerprint, json_digest
from probebank.paths import cache_dir

GATES = ("min_examples", "class_balance", "duplicates", "near_duplicates", "leakage", "alignment",
         "token_identity", "position", "length")
SHORTCUT_GATES = ("token_identity", "position", "length")
BALANCE_MIN = 0.1
DUPLICATE_MAX = 0.01
NEAR_DUPLICATE_MAX = 0.05
ALIGNMENT_MAX = OFF_BOUNDARY_MAX  # share of targets off token boundaries (defined next to the alignment)
ALIGNMENT_QUOTED = 3              # offending targets a failure message quotes
SHORTCUT_F1_MAX = 0.9
SHORTCUT_R2_MAX = 0.9  # the same bar for a regression card's value
GATE_FORMAT = 3  # 3: sealed with a .sum file beside it
# Examples per class that `probebank validate` builds by default; CI samples the same number, so what an
# author sees locally is what CI checks (shortcut F1s move with the sample size).
VALIDATE_LIMIT = 60

FIX_HINT = {
    "min_examples": "add examples to the small classes, drop them, or lower min_per_class with a reason",
    "class_balance": "cap the large classes in the builder, or drop the small ones",
    "duplicates": "drop repeated texts in the builder (and never give one text two labels)",
    "near_duplicates": "vary the templates or drop texts that differ only in case and punctuation",
    "leakage": "give examples that share text or origin the same `group` (split.grouped: true)",
    "alignment": "check the builder's character offsets: a span shifted by a character, or cut inside a word, "
                 "reads tokens it does not name",
    "token_identity": "vary the target tokens across classes, or explain why the label is a function of the token",
    "position": "vary where targets sit in the text, or explain why the label is a function of position",
    "length": "match text lengths across classes, or explain why length is part of the label",
}


@dataclass
class GateResult:
    gate: str
    value: float | None         # None: not applicable (e.g. shortcuts on a regression label)
    threshold: str              # human-readable, e.g. ">= 60" or "< 0.9"
    passed: bool
    detail: str = ""            # e.g. the feature with the worst shortcut F1
    status: str = ""            # pass / fail / waived / n/a (set by apply_waivers)
    reason: str = ""            # the waiver's text when waived
    per_feature: dict[str, float] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # quoted offending rows (alignment), first ones first

    def shown_value(self) -> str:
        if self.value is None:
            return "-"
        if float(self.value).is_integer() and self.gate in ("min_examples", "leakage"):
            return str(int(self.value))
        return f"{self.value:.3f}"


@dataclass
class GateReport:
    dataset: str
    content_hash: str
    tokenizer: str
    results: list[GateResult]

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if r.status == "fail"]

    def by_gate(self) -> dict[str, GateResult]:
        return {r.gate: r for r in self.results}


# --------------------------------------------------------------------------- rows


def align_built(built: BuiltDataset, tokenizer: Any) -> tuple[list[AlignedExample], AlignmentReport]:
    """The dataset aligned to the gate tokenizer, cut at the card's max_tokens (and the tokenizer's limit)."""
    ds = built.dataset
    limit_tokens = min(built.card.max_tokens, int(getattr(tokenizer, "model_max_length", 10**6) or 10**6))
    return align_examples(tokenizer, ds["text"], ds["targets"], ds["label"], max_tokens=limit_tokens, causal=True)


def target_rows(built: BuiltDataset, tokenizer: Any,
                aligned: list[AlignedExample] | None = None) -> dict[str, np.ndarray]:
    """One row per probe row (per target; per token for aggregation `each`): example, label, token, position."""

    card = built.card
    texts = built.dataset["text"]
    if aligned is None:
        aligned, _ = align_built(built, tokenizer)
    cols: dict[str, list[int]] = {"example": [], "target": [], "label": [], "token": [], "position": [], "length": []}
    for ex in aligned:
        n_chars = len(texts[ex.index])
        for (t_idx, first, last), label in zip(ex.targets, ex.labels):
            spans = ([(tok, tok + 1) for tok in range(first, last)] if card.aggregation == "each"
                     else [(first, last)])
            for a, b in spans:
                tok = a if card.aggregation == "first" else b - 1
                cols["example"].append(ex.index)
                cols["target"].append(t_idx)
                cols["label"].append(label)
                cols["token"].append(ex.input_ids[tok])
                cols["position"].append(tok)
                cols["length"].append(n_chars)
    return {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}


def _normalise_text(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


# --------------------------------------------------------------------------- measurements


def _class_counts(built: BuiltDataset) -> dict[str, int]:
    classes = built.card.labels.classes
    counts = Counter(lab for ex in built.dataset for lab in row_labels(ex))
    return {name: counts.get(i, 0) for i, name in enumerate(classes)}


def _min_examples(built: BuiltDataset, counts: dict[str, int]) -> GateResult:
    card = built.card
    minimum = card.min_per_class if built.limit is None else min(card.min_per_class, built.limit)
    smallest = min(counts, key=counts.__getitem__)
    return GateResult("min_examples", counts[smallest], f">= {minimum}", counts[smallest] >= minimum,
                      detail=f"smallest class '{smallest}'")


def _class_balance(counts: dict[str, int]) -> GateResult:
    lo, hi = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
    ratio = counts[lo] / counts[hi] if counts[hi] else 0.0
    detail = (f"every class {counts[lo]}" if counts[lo] == counts[hi]
              else f"'{lo}' {counts[lo]} / '{hi}' {counts[hi]}")
    return GateResult("class_balance", ratio, f">= {BALANCE_MIN}", ratio >= BALANCE_MIN, detail=detail)


def _duplicates(built: BuiltDataset) -> tuple[GateResult, GateResult]:
    texts = built.dataset["text"]
    n = len(texts)
    # Labels per (text, target span): one text carrying two labels for the same span is a conflict.
    span_labels: dict[tuple[str, int, int], set[int]] = defaultdict(set)
    for ex in built.dataset:
        for t, lab in zip(targets_as_rows(ex["targets"]), row_labels(ex)):
            span_labels[(ex["text"], t["start"], t["end"])].add(lab)
    conflicts = len({key[0] for key, labs in span_labels.items() if len(labs) > 1})
    dup_share = (n - len(set(texts))) / n if n else 0.0
    dup = GateResult("duplicates", dup_share, f"<= {DUPLICATE_MAX:.0%}, 0 with other labels",
                     dup_share <= DUPLICATE_MAX and conflicts == 0,
                     detail=f"{n - len(set(texts))} repeated texts, {conflicts} with different labels")
    norm = [_normalise_text(t) for t in texts]
    near_share = (n - len(set(norm))) / n if n else 0.0
    near = GateResult("near_duplicates", near_share, f"<= {NEAR_DUPLICATE_MAX:.0%}",
                      near_share <= NEAR_DUPLICATE_MAX, detail=f"{n - len(set(norm))} near-repeats")
    return dup, near


def _alignment(built: BuiltDataset, report: AlignmentReport) -> GateResult:
    detail = (f"{report.off_boundary} of {report.targets} targets ({report.partial} partial, "
              f"{report.no_token} no token)")
    ids = built.dataset["id"]
    quotes = [f"example {ids[q['example']]!r} target {q['target']}: {q['quote']}" for q in report.off_boundary_examples]
    return GateResult("alignment", report.off_boundary_share, f"<= {ALIGNMENT_MAX:.0%}",
                      report.off_boundary_share <= ALIGNMENT_MAX, detail=detail, examples=quotes)


def _card_split(built: BuiltDataset, rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:

    card = built.card
    groups = np.asarray(built.dataset["group"])[rows["example"]] if card.split.grouped else None
    return grouped_stratified_split(rows["label"], groups, card.split.test_size, card.split.seed,
                                    stratified=card.split.stratified)


def _leakage(built: BuiltDataset, rows: dict[str, np.ndarray], train: np.ndarray, test: np.ndarray) -> GateResult:
    texts = np.asarray(built.dataset["text"], dtype=object)
    groups = np.asarray(built.dataset["group"], dtype=object)
    ex_train, ex_test = set(rows["example"][train].tolist()), set(rows["example"][test].tolist())
    same_text = set(texts[list(ex_train)].tolist()) & set(texts[list(ex_test)].tolist())
    same_group = set(groups[list(ex_train)].tolist()) & set(groups[list(ex_test)].tolist())
    n = len(same_text) + len(same_group)
    return GateResult("leakage", n, "= 0", n == 0,
                      detail=f"{len(same_text)} texts and {len(same_group)} groups on both sides")


def _shortcuts(built: BuiltDataset, rows: dict[str, np.ndarray]) -> list[GateResult]:

    splits = feature_splits(built, rows)  # the probes' default: seed 0, balanced one-vs-rest
    out = []
    for gate in SHORTCUT_GATES:
        values = rows["token" if gate == "token_identity" else gate]
        per: dict[str, float] = {}
        for sp in splits:
            if gate == "token_identity":
                f1 = categorical_shortcut_f1(values[sp.train].tolist(), sp.y_train, values[sp.test].tolist(), sp.y_test)
            else:
                f1 = numeric_shortcut_f1(values[sp.train], sp.y_train, values[sp.test], sp.y_test)
            per[sp.feature] = round(float(f1), 4)
        if not per:
            out.append(GateResult(gate, None, f"< {SHORTCUT_F1_MAX}", False,
                                  detail="no feature has enough rows on both sides of the split"))
            continue
        worst = max(per, key=per.__getitem__)
        out.append(GateResult(gate, per[worst], f"< {SHORTCUT_F1_MAX}", per[worst] < SHORTCUT_F1_MAX,
                              detail=f"worst feature '{worst}'", per_feature=per))
    return out


def measure_gates(built: BuiltDataset, tokenizer: Any) -> list[GateResult]:
    """Compute every gate on a built dataset (no waivers applied), in the order of GATES."""
    card = built.card
    results: list[GateResult] = []
    counts = _class_counts(built)
    classification = card.labels.type != "regression"
    if classification:
        results += [_min_examples(built, counts), _class_balance(counts)]
    else:
        results += [GateResult(g, None, "-", True, detail="regression label") for g in ("min_examples", "class_balance")]
    results += list(_duplicates(built))
    aligned, report = align_built(built, tokenizer)
    rows = target_rows(built, tokenizer, aligned)
    try:
        train, test = _card_split(built, rows)
    except ValueError as exc:  # e.g. a class in one group only: no honest split exists
        results += [GateResult("leakage", None, "= 0", False, detail=f"no split possible: {exc}"), _alignment(built, report)]
        results += [GateResult(g, None, f"< {SHORTCUT_F1_MAX}", False, detail="no split possible")
                    for g in SHORTCUT_GATES]
        return results
    results += [_leakage(built, rows, train, test), _alignment(built, report)]
    if classification:
        results += _shortcuts(built, rows)
    else:
        r2 = value_shortcuts(built, rows)
        results += [GateResult(g, r2.get(g), f"R2 < {SHORTCUT_R2_MAX}", g in r2 and r2[g] < SHORTCUT_R2_MAX,
                               detail="regression label: R2 of the value" if g in r2 else "no split possible")
                    for g in SHORTCUT_GATES]
    return results


# --------------------------------------------------------------------------- cache + waivers


_MEASURE_GATES = measure_gates  # the code the key covers, as defined here (not as patched later)


@functools.cache
def _gate_code() -> str:
    """The fingerprint of the gate code (taken once per process)."""
    return fingerprint(_MEASURE_GATES)


def _gate_key(built: BuiltDataset, tokenizer_revision: str) -> str:
    card = built.card
    return json_digest({"hash": built.content_hash, "limit": built.limit, "tokenizer": tokenizer_revision,
                        "labels": card.labels.model_dump(mode="json"), "split": card.split.model_dump(mode="json"),
                        "aggregation": card.aggregation, "max_tokens": card.max_tokens,
                        "min_per_class": card.min_per_class, "format": GATE_FORMAT,
                        "code": _gate_code()})


def apply_waivers(results: list[GateResult], waivers: dict[str, str]) -> list[GateResult]:
    for r in results:
        if r.value is None and r.passed:
            r.status = "n/a"
        elif r.passed:
            r.status = "pass"
        elif r.gate in waivers and waivers[r.gate].strip():
            r.status, r.reason = "waived", waivers[r.gate].strip()
        else:
            r.status = "fail"
    return results


def run_gates(built: BuiltDataset, tokenizer: Any, tokenizer_revision: str, *, use_cache: bool = True) -> GateReport:
    """Measure (or reuse) the gates of one built dataset and apply its card's waivers."""
    path = cache_dir("gates") / f"{_gate_key(built, tokenizer_revision)}.json"
    results: list[GateResult] | None = None
    if use_cache and path.is_file():
        why = file_problem(path)
        try:
            if why is None:
                results = [GateResult(**r) for r in json.loads(path.read_text(encoding="utf-8"))]
        except (ValueError, TypeError) as exc:
            why = f"it is unreadable ({exc})"
        if why is not None:  # a damaged cache file is recomputed, not trusted
            quarantine(path, why)
            results = None
    if results is None:
        results = measure_gates(built, tokenizer)
        write_text(path, json.dumps([asdict(r) for r in results], indent=1))
        seal_file(path)
    for r in results:
        r.status, r.reason = "", ""
    return GateReport(built.name, built.content_hash, tokenizer_revision,
                      apply_waivers(results, built.card.waivers))


def unknown_waivers(waivers: dict[str, str]) -> list[str]:
    """Waiver keys that name no gate (min_per_class is the build-time check's own key)."""
    return [k for k in waivers if k not in GATES and k != "min_per_class"]


def failure_message(dataset: str, r: GateResult, card_path: Any = None) -> str:
    where = f" ({card_path})" if card_path else ""
    quoted = "".join(f"\n      {q}" for q in r.examples[:ALIGNMENT_QUOTED])
    return (f"{dataset}{where}: gate {r.gate} failed: {r.shown_value()} (needs {r.threshold}; {r.detail})"
            + (f"; first offending targets:{quoted}\n    " if quoted else ". ")
            + f"Fix: {FIX_HINT.get(r.gate, 'fix the data')}; or, if this is by design, add "
            f"`waivers: {{{r.gate}: <reason>}}` to the card")


# --------------------------------------------------------------------------- for reports


