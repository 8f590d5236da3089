"""Plugin loading: built-ins, third-party entry points of group `probebank`, --include folders, overrides."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from probebank.plugins import clear_plugin_cache, get_registered


@pytest.fixture(autouse=True)
def fresh_registry():
    clear_plugin_cache()
    yield
    clear_plugin_cache()


def test_builtins_register_every_kind() -> None:
    reg = get_registered()
    assert {"pypi", "npm", "local"} <= set(reg.sources)
    assert {"smollm2-135m", "default", "gguf", "hf", "tiny"} <= set(reg.models)
    assert {"mean_diff", "f_stat", "mutual_info", "l1", "adaptive", "random"} <= set(reg.methods)
    assert "identity" in reg.bases
    assert {"udhr-language", "syntax-upos", "pygments-code"} <= set(reg.builders)


def test_entry_point_plugin_is_loaded(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "thirdparty_probe_plugin.py").write_text(textwrap.dedent('''
        from probebank.hookspecs import hookimpl

        @hookimpl
        def register_methods(register):
            from probebank.probing.selection import RandomUnits
            register("third-party-random", RandomUnits)
    '''))
    dist = tmp_path / "thirdparty_probe_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-probe-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[probebank]\nthirdparty = thirdparty_probe_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PROBEBANK_NO_ENTRY_POINTS", raising=False)
    assert "third-party-random" in get_registered().methods
    clear_plugin_cache()
    monkeypatch.setenv("PROBEBANK_NO_ENTRY_POINTS", "1")
    assert "third-party-random" not in get_registered().methods
    sys.modules.pop("thirdparty_probe_plugin", None)


def test_include_overrides_a_builtin_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "override.py").write_text(textwrap.dedent('''
        from probebank.hookspecs import hookimpl

        def build(ctx):
            return []

        @hookimpl
        def register_datasets(register):
            register("syntax-upos", build)
    '''))
    reg = get_registered([tmp_path])  # hooks run on first use of each kind
    with pytest.warns(UserWarning, match=r"include .*override.py overrides the dataset 'syntax-upos' registered by "
                                         r"plugin probebank_plugins.datasets"):
        builders = reg.builders
    assert builders["syntax-upos"].__module__.startswith("probebank_include_override")


def test_broken_include_module_names_the_file(tmp_path: Path) -> None:
    from probebank.errors import PluginError

    (tmp_path / "broken.py").write_text("raise RuntimeError('nope')\n")
    with pytest.raises(PluginError) as info:
        get_registered([tmp_path])
    assert "broken.py" in info.value.render() and "nope" in info.value.render()


def test_a_packaged_dataset_is_listed_and_shown_without_include(tmp_path: Path, empty_bank: Path, monkeypatch,
                                                                capsys) -> None:
    """Issue 11, bug 1: `list` and `show` read the cards of entry-point packages, not only of --include folders."""
    import json

    from conftest import GOOD_CARD, write

    from probebank.cli import main

    pkg = tmp_path / "site" / "thirdparty_words"
    write(pkg / "card.yaml", GOOD_CARD.format(name="lexical-thirdparty", builder="lexical-thirdparty"))
    write(pkg / "__init__.py", '''
        from pathlib import Path

        from probebank import hookimpl

        def build(ctx):
            return []

        @hookimpl
        def register_datasets(register):
            register("lexical-thirdparty", build, card=Path(__file__).parent / "card.yaml")
    ''')
    dist = tmp_path / "site" / "thirdparty_words-0.1.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: thirdparty-words\nVersion: 0.1\n")
    write(dist / "entry_points.txt", "[probebank]\nwords = thirdparty_words\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv("PROBEBANK_NO_ENTRY_POINTS", raising=False)
    try:
        assert main(["list", "--format", "json"]) == 0
        listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)["datasets"]}
        assert listed["lexical-thirdparty"]["origin"] == "package thirdparty-words (thirdparty_words)"
        assert main(["show", "lexical-thirdparty"]) == 0
        shown = capsys.readouterr().out
        assert "package thirdparty-words" in shown and str(pkg / "card.yaml") in shown
        assert "builder: lexical-thirdparty" in shown
    finally:
        sys.modules.pop("thirdparty_words", None)
