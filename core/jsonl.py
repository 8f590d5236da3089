"""Records on disk as JSON lines: one pydantic model per line, appended, and validated on read."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from probebank.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def append_jsonl(path: Path, models: Iterable[BaseModel]) -> int:
    """Append one JSON line per model; returns how many were written."""
    n = 0
    with open(path, "a", encoding="utf-8") as f:
        for m in models:
            f.write(m.model_dump_json() + "\n")
            n += 1
    return n


def read_jsonl(path: Path, model: type[M], *, what: str, fix: str) -> list[M]:
    """Every non-blank line of `path` as a `model`; a bad line is a ConfigError naming its line and field."""
    out = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"invalid {what}: {err['msg']}", file=path, line=line_no,
                              field=".".join(str(p) for p in err["loc"]) or None, fix=fix) from None
    return out
