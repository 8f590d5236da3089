"""The sae-probes bridge: every task file of the pinned sae-probes wheel as a probebank dataset.

sae-probes (Kantamneni et al. 2025, "Are Sparse Autoencoders Useful? A Case Study in Sparse
Probing"; used inside SAEBench) ships its probing tasks as zstandard-compressed CSV files with a
`prompt` and a `target` column: `sae_probes/data/cleaned_data/<n>_<tag>.csv.zst` (binary,
multiclass and regression tasks, typed by `probing_datasets_MASTER.csv.zst`) and
`sae_probes/data/OOD data/<n>_<tag>_OOD.csv.zst` (out-of-distribution test sets of 8 binary tasks).
The cards (datasets/sae-probes-*/card.yaml) are written by `sae_probes_cards`; one builder reads
any of the files, so every card names its file in `params.file`.

What a built example is, and where it departs from the wheel on purpose:
- the text is the prompt (trailing whitespace dropped; a causal model never sees past the target);
  a prompt longer than `params.max_chars` keeps its last characters, from a word boundary, as
  sae-probes truncates from the left (at 1,024 tokens);
- the target is the last word and the card reads its last token (`aggregation: last`): the token
  sae-probes probes;
- labels follow sae-probes' LabelEncoder: the file's distinct targets, sorted, are classes 0, 1,
  ...; so the positive class of a binary task is theirs (their ROC-AUC, accuracy and weighted F1
  do not depend on it; probebank's F1 is the positive class's);
- the wheel balances classes by repeating rows; a repeated prompt is kept once (also one that
  differs only in case and punctuation, as the near-duplicate gate compares, when its label is the
  same), and a prompt with two labels is dropped, so no text sits on both sides of a split.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path

from probebank.data.examples import BuildContext
from probebank.errors import BuildError

DEFAULT_MAX_CHARS = 2000
TASK_DIR = "sae_probes/data/cleaned_data"
OOD_DIR = "sae_probes/data/OOD data"
MASTER = "sae_probes/data/probing_datasets_MASTER.csv.zst"


def read_table(path: Path) -> list[dict[str, str]]:
    """The rows of one .csv.zst file of the wheel."""
    import zstandard  # a core dependency, needed only when a bridge dataset is built

    csv.field_size_limit(1 << 30)  # some prompts are whole documents
    with open(path, "rb") as raw:
        text = zstandard.ZstdDecompressor().stream_reader(raw).read().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def cut_left(text: str, max_chars: int) -> str:
    """The last `max_chars` characters of `text`, starting after a whitespace when one is near the cut."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    space = re.search(r"\s", tail[:200])
    return tail[space.end():] if space and space.end() < len(tail) else tail


def last_word(text: str) -> tuple[int, int]:
    """Character span of the last whitespace-delimited word of a text without trailing whitespace."""
    start = max(text.rfind(c) for c in (" ", "\n", "\t", "\r", "\f", "\v")) + 1
    return start, len(text)


def _key(text: str) -> str:
    """Two texts equal after lowercasing and dropping non-alphanumerics (the near-duplicate gate's comparison)."""
    return re.sub(r"[\W_]+", "", text.lower()) or text


def task_rows(rows: list[dict[str, str]], max_chars: int) -> list[tuple[str, str]]:
    """(text, target) per distinct prompt, in file order.

    A prompt repeated with one target is kept once, a prompt with two targets is dropped; prompts that
    differ only in case and punctuation count as repeats when their targets agree (when they do not,
    e.g. '3 + 4 =' and '3 * 4 =', they are different questions and both stay).
    """
    by_text: dict[str, str] = {}
    conflicting: set[str] = set()
    for row in rows:
        text = cut_left((row.get("prompt") or "").rstrip(), max_chars)
        target = (row.get("target") or "").strip()
        if not text.strip() or not target:
            continue
        if by_text.setdefault(text, target) != target:
            conflicting.add(text)
    out: list[tuple[str, str]] = []
    near: set[tuple[str, str]] = set()
    for text, target in by_text.items():
        if text in conflicting or (_key(text), target) in near:
            continue
        near.add((_key(text), target))
        out.append((text, target))
    return out


def build_sae_probes(ctx: BuildContext) -> Iterator[dict]:
    """One example per distinct prompt of the card's file (`params.file`, inside the wheel)."""
    card = ctx.card
    path = ctx.fetch("sae-probes") / str(ctx.params["file"])
    if not path.is_file():
        raise BuildError(f"the sae-probes wheel has no file '{ctx.params['file']}'", field="params.file",
                         fix="regenerate the cards: python -m probebank_plugins.datasets.sae_probes_cards")
    items = task_rows(read_table(path), int(ctx.params.get("max_chars", DEFAULT_MAX_CHARS)))
    regression = card.labels.type == "regression"
    ranks = {t: i for i, t in enumerate(sorted({t for _, t in items}))}  # LabelEncoder's order
    if not regression and len(ranks) != len(card.labels.classes):
        raise BuildError(f"{ctx.params['file']} has {len(ranks)} distinct targets, the card names "
                         f"{len(card.labels.classes)} classes", field="labels.classes",
                         fix="regenerate the cards: python -m probebank_plugins.datasets.sae_probes_cards")
    for i, (text, target) in enumerate(items):
        if regression:
            try:
                value = float(target)
            except ValueError:
                raise BuildError(f"{ctx.params['file']}: target {target!r} is not a number", field="labels.type",
                                 fix="regenerate the cards: the generator types a task by its targets") from None
            if not math.isfinite(value):
                continue
            label: str | float = value
        else:
            label = card.labels.classes[ranks[target]]
        yield {"id": f"{card.name}-{i}", "text": text, "targets": [last_word(text)], "label": label}


BUILDERS = {"sae-probes": build_sae_probes}
