"""What a newcomer meets first: `run --help` names the valid values, `probebank schema` carries no
internal notes, and the README tour's output folders stay out of `git status`."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from probebank.cli import main
from probebank.data.registry import load_catalog
from probebank.plugins import get_registered

ROOT = Path(__file__).resolve().parents[1]


def _words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())  # rich draws help in boxes and wraps it


def test_run_help_lists_every_builtin_model_method_basis_site_and_suite(capsys, monkeypatch) -> None:
    monkeypatch.setenv("PROBEBANK_NO_ENTRY_POINTS", "1")
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "--help"]) == 0
    help_text = _words(capsys.readouterr().out)
    registered = get_registered()
    names = [*registered.models, *registered.methods, *registered.bases, "mlp", "resid", "attn",
             *load_catalog([]).suites]
    missing = [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", help_text)]
    assert not missing, f"`probebank run --help` does not name {missing}"


def test_schema_descriptions_carry_no_internal_notes(capsys) -> None:
    assert main(["schema"]) == 0
    text = capsys.readouterr().out
    descriptions = re.findall(r'"description": "((?:[^"\\]|\\.)*)"', text)
    assert descriptions
    noted = [d for d in descriptions if re.search(r"\bissue \d+|\bTODO\b|\bXXX\b", json.loads(f'"{d}"'))]
    assert not noted, noted


@pytest.mark.parametrize("folder", ["out-lang", "out-bases", "out-a", "site", "hf", "probebank-out"])
def test_the_readme_tour_folders_are_ignored_by_git(folder: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert folder in readme  # the tour writes it
    proc = subprocess.run(["git", "check-ignore", "-q", f"{folder}/records.jsonl"], cwd=ROOT)
    assert proc.returncode == 0, f"{folder}/ would show in git status"


def test_results_explain_needs_no_folder_and_a_missing_folder_is_named(capsys) -> None:
    assert main(["results", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "selectivity_k1" in out and "k1 changes" in out and "r2_k1" in out
    assert main(["results"]) == 2
    assert "no results folder given" in capsys.readouterr().err
    assert main(["results", "--explain", "--columns", "rotaton_k1"]) == 0  # --explain answers first


def test_settings_name_the_same_devices_as_the_engine() -> None:
    from probebank.extract.device import DEVICE_CHOICES
    from probebank.settings import DEVICE_CHOICES as SETTINGS_DEVICES

    assert SETTINGS_DEVICES == DEVICE_CHOICES
