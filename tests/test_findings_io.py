"""findings.json: what `probebank replicate` findings look like to the HTML report, and clear errors for bad files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from probebank.errors import ConfigError
from probebank.results.findings_io import FINDINGS_FILE, folder_findings, read_findings, write_findings
from probebank.results.judge import Finding


def test_findings_round_trip_with_and_without_numbers(tmp_path: Path) -> None:
    plain = Finding("F1 grows with k", "mean F1 rises", "standard", False, None, None, "k=1: 0.5, k=32: 0.4")
    numbered = Finding("single neurons", "mean k=1 F1 >= 0.75", "paper", True, 0.91, (0.85, 0.95), "mean 0.91",
                       threshold=0.75, unit="k=1 F1")
    path = write_findings(tmp_path, "smollm2-135m", "language-udhr, 11 layers, seeds 0-2", [plain, numbered],
                          findings_version=1)
    assert path == tmp_path / FINDINGS_FILE
    doc = read_findings(tmp_path)
    assert doc.model == "smollm2-135m" and [f.name for f in doc.findings] == ["F1 grows with k", "single neurons"]
    assert doc.findings[0].estimate is None and not doc.findings[0].passed
    got = doc.findings[1]
    assert (got.estimate, got.low, got.high, got.threshold, got.unit) == (0.91, 0.85, 0.95, 0.75, "k=1 F1")
    assert got.finding_protocol == "paper" and doc.findings_version == 1
    assert [d.model for _, d in folder_findings([tmp_path, tmp_path / "elsewhere"])] == ["smollm2-135m"]


@pytest.mark.parametrize("content, field, words", [
    ("{not json", None, "not valid JSON"),
    (json.dumps({"format": "other/2", "model": "m", "protocol": "p", "findings": []}), "format", "expected"),
    (json.dumps({"format": "probebank-findings/1", "model": "m", "protocol": "p",
                 "findings": [{"name": "a", "claim": "c", "passed": "maybe"}]}), "findings.0.passed", "boolean"),
])
def test_a_bad_findings_file_names_the_file_and_the_field(tmp_path: Path, content: str, field: str | None,
                                                          words: str) -> None:
    path = tmp_path / FINDINGS_FILE
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        read_findings(path)
    assert words in str(err.value) and err.value.file == str(path)
    if field:
        assert err.value.field == field
    assert "probebank replicate --out" in (err.value.fix or "")
