"""Result records on disk: one JSON line per record, validated on read.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from probebank.errors import ConfigError
from probebank.jsonl import append_jsonl, read_jsonl
from probebank.probing.schema import ResultRecord

RECORDS_FILE = "records.jsonl"


def append_records(path: Path, records: Iterable[ResultRecord]) -> int:
    return append_jsonl(path, records)


def read_records(folder: Path) -> list[ResultRecord]:
    """Every record of a results folder (records.jsonl, or any *.jsonl below it), validated."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
    if not files:
        raise ConfigError(f"no result records (*.jsonl) in {folder}", field="DIR",
                          fix="pass the --out folder of a `probebank run`")
    records: list[ResultRecord] = []
    for path in files:
        records += read_jsonl(path, ResultRecord, what="result record",
                              fix="regenerate it with `probebank run` or correct the field")
    return records
