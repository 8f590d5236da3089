"""Invalid cards, registries and examples: each gives a clear message naming file/field, and exit code 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GOOD_CARD, write

from probebank.cli import main
from probebank.data.registry import load_card, load_registry_file
from probebank.data.schema import DatasetCard
from probebank.errors import BuildError, CardError, RegistryError


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_good_card_loads(bank) -> None:
    folder = bank()
    card = load_card(folder / "toy-words" / "card.yaml")
    assert isinstance(card, DatasetCard) and card.labels.classes == ["lower", "capitalised"]


def test_unknown_key_names_file_line_and_field(bank, capsys) -> None:
    folder = bank(card=GOOD_CARD.format(name="toy-words", builder="toy-words") + "colour: blue\n")
    with pytest.raises(CardError) as info:
        load_card(folder / "toy-words" / "card.yaml")
    msg = info.value.render()
    assert "card.yaml:17" in msg and "colour" in msg and "unknown key" in msg
    code, out = run_cli(capsys, "list", "--include", str(folder))
    assert code == 2 and "colour" in out and "Traceback" not in out


def test_duplicate_key_is_an_error_not_a_silent_override(bank, capsys) -> None:
    folder = bank(card=GOOD_CARD.format(name="toy-words", builder="toy-words") + "license: MIT\n")
    with pytest.raises(CardError) as info:
        load_card(folder / "toy-words" / "card.yaml")
    assert "duplicate key 'license'" in info.value.render() and "line 6" in info.value.render()
    code, out = run_cli(capsys, "validate", "--all", "--include", str(folder))
    assert code == 2 and "duplicate key" in out


def test_missing_field(bank) -> None:
    text = GOOD_CARD.format(name="toy-words", builder="toy-words").replace("license: CC0-1.0\n", "")
    folder = bank(card=text)
    with pytest.raises(CardError) as info:
        load_card(folder / "toy-words" / "card.yaml")
    assert "field 'license'" in info.value.render() and "missing" in info.value.render()


def test_wrong_type_and_bad_enum(bank) -> None:
    text = GOOD_CARD.format(name="toy-words", builder="toy-words").replace("category: lexical", "category: vibes")
    folder = bank(card=text)
    with pytest.raises(CardError) as info:
        load_card(folder / "toy-words" / "card.yaml")
    assert "field 'category'" in info.value.render() and "vibes" in info.value.render()
    assert ":3" in info.value.render()


def test_bias_card_needs_responsible_use(bank) -> None:
    text = GOOD_CARD.format(name="toy-words", builder="toy-words").replace("category: lexical", "category: bias")
    folder = bank(card=text)
    with pytest.raises(CardError, match="responsible_use"):
        load_card(folder / "toy-words" / "card.yaml")


def test_broken_yaml_reports_line(bank) -> None:
    folder = bank(card="name: toy\nversion: [unclosed\n")
    with pytest.raises(CardError) as info:
        load_card(folder / "toy-words" / "card.yaml")
    assert "invalid YAML" in info.value.render() and "card.yaml:" in info.value.render()


def test_registry_version_mismatch(tmp_path: Path) -> None:
    write(tmp_path / "datasets" / "toy-words" / "card.yaml", GOOD_CARD.format(name="toy-words", builder="toy-words"))
    write(tmp_path / "registry.yaml", """\
        version: 1
        datasets:
          toy-words: {card: datasets/toy-words/card.yaml, version: "2.0", category: lexical}
        """)
    with pytest.raises(RegistryError) as info:
        load_registry_file(tmp_path / "registry.yaml")
    assert "version" in info.value.render() and "registry.yaml" in info.value.render()


def test_registry_path_cannot_leave_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "registry.yaml", """\
        version: 1
        datasets:
          evil: {card: ../outside/card.yaml, version: "1.0", category: lexical}
        """)
    with pytest.raises(CardError, match=r"\.\."):
        load_registry_file(tmp_path / "registry.yaml")


def test_registry_suite_with_unknown_dataset(tmp_path: Path) -> None:
    write(tmp_path / "datasets" / "toy-words" / "card.yaml", GOOD_CARD.format(name="toy-words", builder="toy-words"))
    write(tmp_path / "registry.yaml", """\
        version: 1
        datasets:
          toy-words: {card: datasets/toy-words/card.yaml, version: "1.0", category: lexical}
        suites:
          quick: {datasets: [toy-words, nope]}
        """)
    with pytest.raises(RegistryError, match="nope"):
        load_registry_file(tmp_path / "registry.yaml")


BAD_SPAN_PLUGIN = '''
from probebank.hookspecs import hookimpl

def build(ctx):
    yield {"text": "short", "targets": [(2, 40)], "label": "lower"}
    yield {"text": "Other", "targets": [(0, 5)], "label": "capitalised"}

@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''

EMPTY_PLUGIN = '''
from probebank.hookspecs import hookimpl

def build(ctx):
    return []

@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''

ONE_CLASS_PLUGIN = '''
from probebank.hookspecs import hookimpl

def build(ctx):
    for i in range(10):
        yield {"text": f"word {i}", "targets": [(0, 4)], "label": "lower"}

@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''


@pytest.mark.parametrize("plugin, expected", [
    (BAD_SPAN_PLUGIN, "target span (2, 40) is not inside the text"),
    (EMPTY_PLUGIN, "built no examples"),
    (ONE_CLASS_PLUGIN, "single class ('lower')"),
])
def test_bad_examples_exit_2(bank, capsys, plugin: str, expected: str) -> None:
    folder = bank(plugin=plugin)
    code, out = run_cli(capsys, "build", "toy-words", "--include", str(folder))
    assert code == 2, out
    assert expected in out and "Traceback" not in out


def test_good_include_builds(bank, capsys) -> None:
    folder = bank()
    code, out = run_cli(capsys, "build", "toy-words", "--include", str(folder))
    assert code == 0, out
    assert "16 examples" in out and "capitalised" in out


def test_build_error_type(bank) -> None:
    from probebank.data.examples import build_dataset
    from probebank.data.registry import CatalogEntry
    card = load_card(bank()/"toy-words"/"card.yaml")
    with pytest.raises(BuildError):
        build_dataset(CatalogEntry(card, None, "test"), builders={"toy-words": lambda ctx: []}, force=True)


def test_unknown_dataset_suggests(capsys) -> None:
    code, out = run_cli(capsys, "show", "language")
    assert code == 2 and "language-udhr" in out


def test_console_script_exit_code(bank) -> None:
    """The installed command, not only main(), exits 2 with a short message and no traceback."""
    folder = bank(card=GOOD_CARD.format(name="toy-words", builder="toy-words") + "colour: blue\n")
    proc = subprocess.run([sys.executable, "-m", "probebank", "list", "--include", str(folder)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "colour" in proc.stderr and "Traceback" not in proc.stderr
    debug = subprocess.run([sys.executable, "-m", "probebank", "--debug", "list", "--include", str(folder)],
                           capture_output=True, text=True)
    assert "Traceback" in debug.stderr


def test_schema_command_prints_json_schemas(capsys) -> None:
    import json
    code, out = run_cli(capsys, "schema")
    data = json.loads(out)
    assert code == 0
    assert {"DatasetCard", "ResultRecord", "ExtractionPlan", "ProbeConfig", "RegistryEntry"} <= set(data)
    assert data["DatasetCard"]["additionalProperties"] is False
