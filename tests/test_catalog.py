"""`probebank catalog` (DATASETS.md and --check), `probebank new` (scaffold -> fill -> validate), and the
weight-free tokenizer loader the gates use."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import write

from probebank.cli import main

TOK = "tiny:llama"


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# Five letters each, so that text length says nothing about the class.
WORDS_A = ["river", "stone", "cloud", "grass", "field", "ocean", "beach", "coast", "plain", "marsh", "creek", "ridge"]
WORDS_B = ["knife", "spoon", "brush", "broom", "clock", "towel", "plate", "chair", "shelf", "drill", "ruler", "scale"]


def fill_scaffold(card_dir: Path) -> None:
    """What an author does after `probebank new`: write the TODOs and the word lists."""
    card = card_dir / "card.yaml"
    text = card.read_text()
    text = re.sub(r'TODO:[^\n"]*(\n  [^\n]*)*', "Written for the probebank scaffold test: nature words versus "
                  "household objects.", text)
    card.write_text(text)
    words = card_dir / "words.yaml"
    words.write_text("other:\n" + "".join(f"  - {w}\n" for w in WORDS_A)
                     + "tools:\n" + "".join(f"  - {w}\n" for w in WORDS_B))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_new_then_fill_then_validate_passes(tmp_path, empty_bank, cache, capsys) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    code, out = run_cli(capsys, "new", "lexical-tools", "--category", "lexical", "--dest", str(dest))
    assert code == 0, out
    assert (dest / "lexical-tools" / "card.yaml").is_file() and (dest / "lexical_tools.py").is_file()
    assert "Next steps" in out and "probebank validate lexical-tools --include" in out
    # unfilled: validate refuses the TODOs, naming the field
    code, out = run_cli(capsys, "validate", "lexical-tools", "--include", str(dest), "--tokenizer", TOK)
    assert code == 2 and "TODOs in description" in out, out
    fill_scaffold(dest / "lexical-tools")
    code, out = run_cli(capsys, "validate", "lexical-tools", "--include", str(dest), "--tokenizer", TOK)
    assert code == 0, out
    assert "token_identity" in out and "all 1 dataset(s) valid" in out


@pytest.mark.parametrize("args, expected", [
    (["lexical-tools", "--category", "lexical"], "already exists"),
    (["Lexical_Tools", "--category", "lexical"], "is not a valid dataset name"),
    (["code-tools", "--category", "lexical"], "does not start with its category"),
    (["lexical-x", "--category", "poetry"], "unknown category 'poetry'"),
])
def test_new_refuses_bad_and_existing_names(tmp_path, empty_bank, cache, capsys, args, expected) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    assert run_cli(capsys, "new", "lexical-tools", "--category", "lexical", "--dest", str(dest))[0] == 0
    code, out = run_cli(capsys, "new", *args, "--dest", str(dest))
    assert code == 2 and expected in out and "Traceback" not in out, out


def test_new_first_party_writes_its_own_module(tmp_path, monkeypatch, cache, capsys) -> None:
    """`new` leaves its category's module byte-identical (so no cached build of that category goes stale)
    and writes a module of its own, which plugins/datasets/__init__.py finds; the new dataset builds."""
    import shutil
    import sys

    import probebank_plugins.datasets as first_party
    from probebank.data.examples import _build_key
    from probebank.data.registry import load_registry_file
    from probebank.plugins import clear_plugin_cache, get_registered

    repo = Path(__file__).resolve().parents[1]
    real = Path(first_party.__file__).parent
    root = tmp_path / "checkout"
    write(root / "registry.yaml", "version: 1\ndatasets: {}\n")
    (root / "datasets").mkdir()
    package = root / "plugins" / "datasets"
    package.mkdir(parents=True)
    for module_file in ("__init__.py", "lexical.py"):
        shutil.copy2(real / module_file, package / module_file)
    before = {p.name: p.read_bytes() for p in package.iterdir()}
    # This copy of the package comes first on its path: its lexical.py is the one imported and hashed.
    monkeypatch.setattr(first_party, "__path__", [str(package), *first_party.__path__])
    importlib.import_module("probebank_plugins.datasets.lexical")  # so that monkeypatch puts the real one back
    monkeypatch.delitem(sys.modules, "probebank_plugins.datasets.lexical")
    monkeypatch.setenv("PROBEBANK_BANK", str(root))
    monkeypatch.setenv("PROBEBANK_NO_ENTRY_POINTS", "1")
    lexical = {n: e for n, e in load_registry_file(repo / "registry.yaml").entries.items()
               if e.card.category == "lexical"}
    assert lexical

    def keys() -> dict[str, str]:
        clear_plugin_cache()
        builders = get_registered().builders
        assert builders["changelog-word-shape"].__code__.co_filename == str(package / "lexical.py")
        return {n: _build_key(e.card, e.folder, builders[e.card.builder], None) for n, e in lexical.items()}

    try:
        keys_before = keys()
        code, out = run_cli(capsys, "new", "lexical-tools", "--category", "lexical")
        assert code == 0, out
        assert {p.name for p in package.iterdir()} == {*before, "lexical_tools.py"}
        assert {n: (package / n).read_bytes() for n in before} == before
        assert "registry.yaml under '# ---- lexical'" in out and "card: datasets/lexical-tools/card.yaml" in out
        assert keys() == keys_before
        fill_scaffold(root / "datasets" / "lexical-tools")
        write(root / "registry.yaml", """\
            version: 1
            datasets:
              lexical-tools: {card: datasets/lexical-tools/card.yaml, version: "1.0", category: lexical}
        """)
        clear_plugin_cache()
        code, out = run_cli(capsys, "build", "lexical-tools")
        assert code == 0, out
        assert "lexical-tools v1.0: 72 examples" in out
        assert get_registered().builders["lexical-tools"].__module__ == "probebank_plugins.datasets.lexical_tools"
    finally:
        sys.modules.pop("probebank_plugins.datasets.lexical_tools", None)
        clear_plugin_cache()


def test_new_first_party_bias_card_asks_for_responsible_use(tmp_path, monkeypatch, cache, capsys) -> None:
    root = tmp_path / "checkout"
    write(root / "registry.yaml", "version: 1\ndatasets: {}\n")
    (root / "datasets").mkdir()
    write(root / "plugins" / "datasets" / "__init__.py", "")
    monkeypatch.setenv("PROBEBANK_BANK", str(root))
    code, out = run_cli(capsys, "new", "bias-pets", "--category", "bias")
    assert code == 0, out
    card = (root / "datasets" / "bias-pets" / "card.yaml").read_text()
    assert "responsible_use:" in card and "TODO" in card
    spec = importlib.util.spec_from_file_location("scaffolded_bias_pets", root / "plugins" / "datasets" / "bias_pets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.BUILDERS) == {"bias-pets"} and callable(module.BUILDERS["bias-pets"])
    code, out = run_cli(capsys, "new", "bias-pets", "--category", "bias")  # the card folder is there now
    assert code == 2 and "already exists" in out, out


def test_catalog_writes_and_checks(tmp_path, empty_bank, cache, capsys) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    assert run_cli(capsys, "new", "lexical-tools", "--category", "lexical", "--dest", str(dest))[0] == 0
    fill_scaffold(dest / "lexical-tools")
    out_md = tmp_path / "DATASETS.md"
    args = ["--out", str(out_md), "--include", str(dest), "--tokenizer", TOK]
    code, out = run_cli(capsys, "catalog", "--check", *args)
    assert code == 2 and "out of date (missing)" in out, out
    code, out = run_cli(capsys, "catalog", *args)
    assert code == 0, out
    text = out_md.read_text()
    assert "**1 datasets, 1 binary (one-vs-rest) features.**" in text
    assert "| lexical | 1 | 1 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| lexical-tools "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["lexical", "1.0", "1"]
    assert cells[4] == "72 (72)" and cells[6] == "author:words.yaml" and cells[7] == "no"
    assert cells[8] == "9/9 pass" and re.fullmatch(r"\d\.\d\d / \d\.\d\d / \d\.\d\d", cells[9])
    code, out = run_cli(capsys, "catalog", "--check", *args)
    assert code == 0 and "up to date" in out, out
    card = dest / "lexical-tools" / "card.yaml"
    card.write_text(card.read_text().replace("license: >-\n", "license: >-\n  CC0-1.0. "))
    code, out = run_cli(capsys, "catalog", "--check", *args)
    assert code == 2 and "out of date" in out and "+| lexical-tools" in out, out


def test_default_tokenizer_loads_without_the_weights(monkeypatch) -> None:
    import transformers

    import probebank.extract.tokenizer
    from probebank.extract.tokenizer import load_tokenizer

    def no_weights(*a, **k):
        raise AssertionError("the gate tokenizer must not load model weights")

    monkeypatch.setattr(probebank.extract.tokenizer, "load_model", no_weights)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_weights)
    load_tokenizer.cache_clear()
    tok = load_tokenizer("smollm2-135m")
    assert tok.tokenizer.is_fast and len(tok.revision) == 64
    ids = tok.tokenizer(" Paris")["input_ids"]
    assert len(ids) == 1 and tok.tokenizer.decode(ids) == " Paris"
