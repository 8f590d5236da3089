"""docs/example-package, an outside dataset package: installed as a user installs it (pip, no network) and
driven through the `probebank` command in a fresh process, as CONTRIBUTING.md says to test such a package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example-package"
NAME = "factual-element-state"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The package pip-installed into a --target folder; the environment that makes probebank see it."""
    root = tmp_path_factory.mktemp("example-package")
    src = root / "src"  # a copy: pip builds in place and would leave build/ and *.egg-info in the checkout
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")])),
               PROBEBANK_CACHE=str(root / "cache"))
    for var in ("PROBEBANK_NO_ENTRY_POINTS", "PROBEBANK_BANK"):  # the real bank, with entry points on
        env.pop(var, None)
    env["SITE"] = str(target)
    return env


def probebank(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "probebank", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"probebank {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_list_and_show_find_the_packaged_card(installed: dict[str, str]) -> None:
    listed = {d["name"]: d for d in json.loads(probebank(installed, "list", "--format", "json"))["datasets"]}
    assert listed[NAME]["origin"] == "package probebank-elements (probebank_elements.plugin)"
    assert listed[NAME]["classes"] == ["solid", "gas"] and listed[NAME]["category"] == "factual"
    assert "language-udhr" in listed  # the bank's own datasets are still there
    shown = probebank(installed, "show", NAME)
    card = Path(installed["SITE"]) / "probebank_elements" / "card.yaml"  # package data, installed with the code
    assert str(card) in shown and f"builder: {NAME}" in shown


def test_validate_builds_from_the_packaged_facts(installed: dict[str, str]) -> None:
    out = probebank(installed, "validate", NAME, "--tokenizer", "tiny:llama")
    assert f"{NAME}: 100 examples" in out  # 25 elements of elements.txt x 4 templates of the card
    assert "'gas' 44 / 'solid' 56" in out and "all 1 dataset(s) valid" in out


def test_run_probes_the_packaged_dataset(installed: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    probebank(installed, "run", "--datasets", NAME, "--model", "tiny:llama", "--limit", "20", "--seeds", "0",
              "--methods", "mean_diff", "--no-controls", "--no-progress", "--out", str(out))
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert records and {r["provenance"]["dataset"] for r in records} == {NAME}
    assert {r["feature"] for r in records} == {"gas"}  # a binary card probes its second class
    assert {r["layer"] for r in records} == {0, 1, 2, 3}
    # --limit 20: 20 texts per class are built, then the card's grouped split (test_size 0.3) and balancing
    assert all(r["n_train"] + r["n_test"] <= 40 and r["n_test_pos"] >= 4 for r in records)
    assert json.loads((out / "alignment.json").read_text())[NAME]["targets"] == 40


def _blocks(lang: str) -> list[str]:
    """The fenced code blocks of CONTRIBUTING.md in one language, dedented."""
    import re
    import textwrap

    text = (EXAMPLE.parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8")
    return [textwrap.dedent(b) for b in re.findall(rf"^ *```{lang}\n(.*?)^ *```", text, flags=re.S | re.M)]


def test_contributing_selection_method_snippet_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from probebank.plugins import clear_plugin_cache, get_registered

    snippet = next(b for b in _blocks("python") if b.startswith("# my_methods.py"))
    (tmp_path / "my_methods.py").write_text(snippet, encoding="utf-8")
    monkeypatch.setenv("PROBEBANK_NO_ENTRY_POINTS", "1")
    clear_plugin_cache()
    try:
        method = get_registered([tmp_path]).methods["median_gap"]
        X = np.random.default_rng(0).normal(size=(40, 6))
        y = np.repeat([0, 1], 20)
        X[y == 1, 4] += 3.0  # the planted unit
        selector = method(ks=[1, 2], random_state=0).fit(X, y)
        assert selector.supports_[1].tolist() == [4] and len(selector.supports_[2]) == 2
        assert selector.get_params() == {"ks": [1, 2], "random_state": 0}
    finally:
        clear_plugin_cache()


def test_contributing_card_snippet_is_a_valid_card() -> None:
    import yaml

    from probebank.data.schema import DatasetCard

    card = DatasetCard.model_validate(yaml.safe_load(next(b for b in _blocks("yaml") if b.startswith("name:"))))
    assert card.labels.classes[1] == "gas" and card.sources[0].kind == "author"
