"""The quality gates of the datasets a report shows, at the run's limit (from the build and gate caches).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from probebank.data.examples import build_dataset
from probebank.data.gates import run_gates
from probebank.data.registry import load_catalog
from probebank.data.sources import SourceUnavailable
from probebank.extract.tokenizer import load_tokenizer
from probebank.plugins import get_registered


def gate_tables(names: Sequence[str], *, limit: int | None, include: Sequence[Any] = (),
                tokenizer_name: str = "smollm2-135m", progress: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """{dataset: {gate: {passed, value, threshold, waiver, detail}}} for the HTML report's dataset pages.

    Datasets are built at `limit` (the run's), so the gates describe the examples that were probed;
    builds and gate results come from the cache when present. A dataset whose source is unavailable
    is left out (its page says no gate results were given). `progress`: a bar over the datasets.
    """
    from tqdm.auto import tqdm

    catalog = load_catalog(list(include))
    builders = get_registered(list(include)).builders
    tok = None
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in tqdm(names, desc="quality gates", unit="dataset", disable=not progress, leave=False):
        if name not in catalog.entries:
            continue
        try:
            built = build_dataset(catalog.entries[name], builders=builders, limit=limit, include=list(include),
                                  progress=False)
        except SourceUnavailable:
            continue
        tok = tok or load_tokenizer(tokenizer_name)
        report = run_gates(built, tok.tokenizer, tok.revision)
        out[name] = {r.gate: {"passed": r.status in ("pass", "n/a"), "value": r.value, "threshold": r.threshold,
                              "waiver": r.reason or None, "detail": r.detail, "examples": r.examples[:3]}
                     for r in report.results}
    return out
