"""Result records on disk: one JSON line per record, validated on read.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from probebank.causal.record import CAUSAL_FILE
from probebank.errors import ConfigError
from probebank.jsonl import append_jsonl, read_jsonl
from probebank.probing.schema import ResultRecord

RECORDS_FILE = "records.jsonl"
OTHER_KINDS = (CAUSAL_FILE,)  # JSON lines of other record kinds that a results folder may hold


def result_files(folder: Path) -> list[Path]:
    """The files of result records in a results folder: every *.jsonl below it but those of other kinds
    (a file given by name is taken as it is)."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*.jsonl") if p.name not in OTHER_KINDS)


def append_records(path: Path, records: Iterable[ResultRecord]) -> int:
    return append_jsonl(path, records)


def read_records(folder: Path) -> list[ResultRecord]:
    """Every record of a results folder (records.jsonl, or any *.jsonl below it but causal.jsonl), validated."""
    folder = Path(folder)
    files = result_files(folder)
    if not files:
        raise ConfigError(f"no result records (*.jsonl) in {folder}", field="DIR",
                          fix="pass the --out folder of a `probebank run`")
    records: list[ResultRecord] = []
    for path in files:
        records += read_jsonl(path, ResultRecord, what="result record",
                              fix="regenerate it with `probebank run` or correct the field")
    return records
