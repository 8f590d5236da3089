"""Char-span targets -> token indices for one tokenizer, with a report of what alignment did.

Cards are tokenizer-independent; this module is where a tokenizer meets them. A target maps to
every non-special token whose character range overlaps the span. The report counts targets that
span several tokens (split), whose tokens reach outside the span (partial: the token boundary
falls inside the word), that no token overlaps (no_token, e.g. a span of pure whitespace), that
lost tokens to truncation (truncated) and that lost all of them (dropped: no_token ones and those
past max_tokens).

Partial and no-token targets are "off token boundaries": the probe reads tokens that are not the
span the card describes (a shifted span reads the neighbouring word). The report keeps the first
few of them, quoted, so the `alignment` gate (gates.py) and alignment.json can show what went wrong.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

OFF_BOUNDARY_MAX = 0.05   # the `alignment` gate's threshold: share of targets off token boundaries
OFF_BOUNDARY_KEPT = 5     # offending targets quoted in the report
CONTEXT_CHARS = 30        # characters of text shown on each side of a quoted span


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
    no_token: int = 0
    truncated: int = 0
    dropped: int = 0
    tokens_in: int = 0      # tokens before truncation / cutting
    tokens_run: int = 0     # tokens actually sent through the model
    dropped_examples: int = 0
    notes: list[str] = field(default_factory=list)
    off_boundary_examples: list[dict[str, Any]] = field(default_factory=list)  # the first few, see quote_target

    @property
    def off_boundary(self) -> int:
        """Targets that do not start and end on token boundaries (partial or no token)."""
        return self.partial + self.no_token

    @property
    def off_boundary_share(self) -> float:
        return self.off_boundary / self.targets if self.targets else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "off_boundary": self.off_boundary,
                "off_boundary_share": round(self.off_boundary_share, 4)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignmentReport:
        """The report `as_dict` wrote (its derived figures are recomputed, not read)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _elide(text: str, width: int = 2 * CONTEXT_CHARS) -> str:
    return text if len(text) <= width else text[: width // 2] + "..." + text[-(width // 2):]


def _visible(text: str) -> str:
    """Text on one line: newlines and tabs escaped, long text elided in the middle."""
    return _elide(text).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def quote_target(text: str, start: int, end: int, tokens: Sequence[tuple[int, int]]) -> str:
    """One line showing a span in its text and the tokens it hit (character ranges of `text`).

    E.g. `"the c⟦at s⟧at on the mat" span 'at s' -> tokens ' cat' ' sat'`: the span (between ⟦ ⟧)
    starts inside " cat" and ends inside " sat".
    """
    lo, hi = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
    snippet = (("..." if lo else "") + _visible(text[lo:start]) + "⟦" + _visible(text[start:end]) + "⟧"
               + _visible(text[end:hi]) + ("..." if hi < len(text) else ""))
    shown = [repr(text[a:b]) for a, b in tokens]
    if len(shown) > 6:  # the ends are where a span leaves its tokens
        shown = shown[:3] + [f"... ({len(shown) - 6} more)"] + shown[-3:]
    return f'"{snippet}" span {_elide(text[start:end])!r} -> tokens {" ".join(shown) or "none"}'


def _note_off_boundary(report: AlignmentReport) -> None:
    if not report.off_boundary:
        return
    first = report.off_boundary_examples[0]
    report.notes.append(f"{report.off_boundary} of {report.targets} targets ({report.off_boundary_share:.1%}) do not "
                        f"start and end on token boundaries ({report.partial} partial, {report.no_token} no token); "
                        f"first: example {first['example']}: {first['quote']}")


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
                text = texts[i]
                if hit.size == 0:  # e.g. a span of pure whitespace
                    report.no_token += 1
                    report.dropped += 1
                    _keep_offender(report, i, t_idx, text, s, e, [])
                    continue
                first, last = int(hit[0]), int(hit[-1]) + 1
                if last - first > 1:
                    report.split += 1
                else:
                    report.single_token += 1
                a = int(starts[first])
                a += len(text[a:ends[first]]) - len(text[a:ends[first]].lstrip())  # a leading space is not a partial
                if a < s or ends[last - 1] > e:
                    report.partial += 1
                    _keep_offender(report, i, t_idx, text, s, e,
                                   [(int(starts[k]), int(ends[k])) for k in hit])
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
    _note_off_boundary(report)
    return out, report


def _keep_offender(report: AlignmentReport, example: int, target: int, text: str, start: int, end: int,
                   tokens: list[tuple[int, int]]) -> None:
    if len(report.off_boundary_examples) < OFF_BOUNDARY_KEPT:
        report.off_boundary_examples.append({"example": example, "target": target, "start": start, "end": end,
                                             "quote": quote_target(text, start, end, tokens)})
