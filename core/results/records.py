"""Result records on disk: one JSON line per record, validated on read.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from probebank.errors import ConfigError
from probebank.probing.schema import ResultRecord

RECORDS_FILE = "records.jsonl"


def append_records(path: Path, records: Iterable[ResultRecord]) -> int:
    n = 0
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(rec.model_dump_json() + "\n")
            n += 1
    return n


def read_records(folder: Path) -> list[ResultRecord]:
    """Every record of a results folder (records.jsonl, or any *.jsonl below it), validated."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
    if not files:
        raise ConfigError(f"no result records (*.jsonl) in {folder}", field="DIR",
                          fix="pass the --out folder of a `probebank run`")
    records = []
    for path in files:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(ResultRecord.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ConfigError(f"invalid result record: {err['msg']}", file=path, line=line_no,
                                  field=".".join(str(p) for p in err["loc"]),
                                  fix="regenerate it with `probebank run` or correct the field") from None
    return records
