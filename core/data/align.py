"""Char-span targets -> token indices for one tokenizer, with a report of what alignment did.

Cards are tokenizer-independent; this module is where a tokenizer meets them. A target maps to
every non-special token whose character range overlaps the span. The report counts targets that
span several tokens (split), whose tokens reach outside the span (partial: the token boundary
falls inside the word), that lost tokens to truncation (truncated) and that lost all of them
(dropped).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AlignedExample:
    index: int              # position in the dataset
    input_ids: list[int]    # cut after the last target token when the model is causal
    targets: list[tuple[int, int, int]]  # (target index, first token, last token + 1), kept targets only
    labels: list[int]       # label of each kept target


@dataclass
class AlignmentReport:
    examples: int = 0
    targets: int = 0
    single_token: int = 0
    split: int = 0
    partial: int = 0
    truncated: int = 0
    dropped: int = 0
    tokens_in: int = 0      # tokens before truncation / cutting
    tokens_run: int = 0     # tokens actually sent through the model
    dropped_examples: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _offsets_for(tokenizer: Any, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]], list[int]]]:
    enc = tokenizer(list(texts), add_special_tokens=True, return_offsets_mapping=True,
                    return_special_tokens_mask=True, truncation=False, verbose=False)
    return list(zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]))


def align_examples(tokenizer: Any, texts: Sequence[str], targets: Sequence[Sequence[dict]],
                   labels: Sequence[int], *, max_tokens: int, causal: bool,
                   batch: int = 512) -> tuple[list[AlignedExample], AlignmentReport]:
    """Align every example; targets are lists of {start, end, label} dicts (label -1 = the example's)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("alignment needs a fast tokenizer (offset mappings)")
    report = AlignmentReport(examples=len(texts))
    out: list[AlignedExample] = []
    for lo in range(0, len(texts), batch):
        encoded = _offsets_for(tokenizer, texts[lo:lo + batch])
        for j, (ids, offsets, special) in enumerate(encoded):
            i = lo + j
            report.tokens_in += len(ids)
            starts = np.array([a for a, _ in offsets], dtype=np.int64)
            ends = np.array([b for _, b in offsets], dtype=np.int64)
            usable = (np.array(special) == 0) & (ends > starts)
            kept: list[tuple[int, int, int]] = []
            kept_labels: list[int] = []
            for t_idx, tgt in enumerate(targets[i]):
                report.targets += 1
                s, e = int(tgt["start"]), int(tgt["end"])
                hit = np.nonzero(usable & (starts < e) & (ends > s))[0]
                if hit.size == 0:  # e.g. a span of pure whitespace
                    report.dropped += 1
                    continue
                first, last = int(hit[0]), int(hit[-1]) + 1
                if last - first > 1:
                    report.split += 1
                else:
                    report.single_token += 1
                text = texts[i]
                a = int(starts[first])
                a += len(text[a:ends[first]]) - len(text[a:ends[first]].lstrip())  # a leading space is not a partial
                if a < s or ends[last - 1] > e:
                    report.partial += 1
                if last > max_tokens:
                    if first >= max_tokens:
                        report.dropped += 1
                        continue
                    report.truncated += 1
                    last = max_tokens
                kept.append((t_idx, first, last))
                label = int(tgt["label"]) if int(tgt["label"]) >= 0 else int(labels[i])
                kept_labels.append(label)
            if not kept:
                report.dropped_examples += 1
                continue
            cut = max(last for _, _, last in kept) if causal else min(len(ids), max_tokens)
            input_ids = list(ids[:cut])
            report.tokens_run += len(input_ids)
            out.append(AlignedExample(i, input_ids, kept, kept_labels))
    return out, report
