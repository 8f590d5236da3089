"""findings.json: the replicate findings of one model, machine-readable, for the HTML report.

`write_findings(path, model, protocol, findings)` takes the Finding objects of
probebank.results.replicate (name, claim, passed, figures) and, where a finding carries them, its
numbers: `estimate`, `low` / `high` (a 95% interval), `threshold` (the pass line) and `unit`.
`read_findings(path)` reads a file (or a results folder's findings.json) back, checking every field,
so a hand-edited or truncated file is a clear ConfigError, not a broken page.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from probebank.data.schema import Strict
from probebank.errors import ConfigError

FINDINGS_FILE = "findings.json"
FORMAT = "probebank-findings/1"


class FindingEntry(Strict):
    name: str
    claim: str
    passed: bool
    figures: str = ""
    estimate: float | None = Field(None, description="The figure the finding is judged on.")
    low: float | None = Field(None, description="Lower end of its 95% interval.")
    high: float | None = Field(None, description="Upper end of its 95% interval.")
    threshold: float | None = Field(None, description="The pass line the estimate is compared with.")
    unit: str = Field("", description="What the estimate measures, e.g. 'k=1 F1' or 'p-value'.")
    finding_protocol: str | None = Field(None, description="The protocol this finding was judged under "
                                                           "(standard or paper), when a file holds several.")
    check: str = Field("", description="The pass rule, in words.")


class FindingsReport(Strict):
    format: str = FORMAT
    model: str
    protocol: str = Field(description="How the findings were made, e.g. the findings file's version, layers and seeds.")
    findings: list[FindingEntry]
    findings_version: int | None = Field(None, description="The pre-registered findings file's version.")
    findings_sha256: str | None = Field(None, description="Its content hash, as its lock records it.")
    exploratory: list[str] = Field(default_factory=list, description="Overrides of the file (empty: the "
                                                                    "pre-registered run).")
    layers: list[int] = Field(default_factory=list)
    seconds: float | None = None


def _entry(f: Any) -> FindingEntry:
    fields = {name: getattr(f, name) for name in FindingEntry.model_fields if getattr(f, name, None) is not None}
    return FindingEntry(**fields)


def write_findings(path: Path, model: str, protocol: str, findings: Iterable[Any], **run: Any) -> Path:
    """Write findings.json (into `path` when it is a folder); returns the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / FINDINGS_FILE
    doc = FindingsReport(model=model, protocol=protocol, findings=[_entry(f) for f in findings], **run)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc.model_dump(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_findings(path: Path) -> FindingsReport:
    """Read findings.json (or the one in a results folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / FINDINGS_FILE
    fix = "write it again with `probebank replicate --out DIR`"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", file=path, fix=fix) from None
    except ValueError as exc:
        raise ConfigError(f"{path.name} is not valid JSON: {exc}", file=path, fix=fix) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(f"{path.name} is not a findings file of this probebank (format "
                          f"{raw.get('format') if isinstance(raw, dict) else None!r}, expected {FORMAT!r})",
                          file=path, field="format", fix=fix)
    try:
        return FindingsReport.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path.name}: {err['msg']}", file=path, field=where, fix=fix) from None


def folder_findings(folders: Iterable[Path]) -> list[tuple[Path, FindingsReport]]:
    """The findings.json of each results folder that has one."""
    return [(Path(f), read_findings(Path(f) / FINDINGS_FILE)) for f in folders
            if (Path(f) / FINDINGS_FILE).is_file()]
