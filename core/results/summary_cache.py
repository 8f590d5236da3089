"""The summary of a records file, kept in the cache under the file's content and the summarising code.

Parsing every record of a large run takes seconds (the demo: 73,440 records, 150 MB, about 4 s of
pydantic validation); a repeated run whose probe results are all reused writes the same bytes, so its
summary is read back instead. The key is the sha256 of the records file and the fingerprint of the
code that summarises it, so a summary never outlives either; the entry is sealed like every other.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probebank.cache.entry import reuse_or_make
from probebank.hashing import fingerprint, json_digest, sha256_file
from probebank.paths import cache_dir
from probebank.results.records import read_records
from probebank.results.summary import certificates, summarise

SUMMARY_FORMAT = 1
SUMMARY_FILE = "summary.json"
_INT_KEYED = ("gain_1_8_by_layer",)  # dicts keyed by layer: JSON turns their keys into strings


def summary_of(records_path: Path, method: str | None = None,
               pick: str = "validation") -> tuple[list[dict[str, Any]], str | None]:
    """`summarise(read_records(records_path), method, pick)` and the certificates line, from the cache when
    the same records were summarised before by the same code."""
    key = json_digest([SUMMARY_FORMAT, sha256_file(records_path), method, pick,
                       fingerprint(summarise, certificates, read_records)])
    entry = cache_dir("summaries") / key

    def make(staging: Path) -> None:
        records = read_records(records_path)
        rows = summarise(records, method, pick) if records else []
        (staging / SUMMARY_FILE).write_text(json.dumps({"rows": rows, "certificates":
                                                        certificates(r for r in records if method in (None, r.method))}),
                                            encoding="utf-8")

    reuse_or_make(entry, make, what="the summary of a records file")
    saved = json.loads((entry / SUMMARY_FILE).read_text(encoding="utf-8"))
    return [_restore(row) for row in saved["rows"]], saved["certificates"]


def _restore(row: dict[str, Any]) -> dict[str, Any]:
    for name in _INT_KEYED:
        if isinstance(row.get(name), dict):
            row[name] = {int(layer): value for layer, value in row[name].items()}
    return row
