"""Shared fixtures: an isolated cache per test session, and helpers to write bank folders."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Keep every cache write of the tests out of the user's home; reuse downloads across runs when
    # PROBEBANK_CACHE is set by the caller (CI sets it to a folder it keeps for the run).
    os.environ.setdefault("PROBEBANK_CACHE", str(Path(config.rootpath) / ".probebank-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


GOOD_CARD = """\
name: {name}
version: "1.0"
category: lexical
description: A tiny test dataset of words that are or are not capitalised.
citation: written for the probebank tests
license: CC0-1.0
builder: {builder}
labels:
  type: binary
  classes: [lower, capitalised]
targets:
  kind: spans
aggregation: last
min_per_class: 2
split:
  test_size: 0.5
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def empty_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point probebank at a bank with no datasets, so tests see only what they write."""
    root = tmp_path / "empty-bank"
    write(root / "registry.yaml", "version: 1\ndatasets: {}\n")
    (root / "datasets").mkdir()
    monkeypatch.setenv("PROBEBANK_BANK", str(root))
    return root


@pytest.fixture
def bank(tmp_path: Path, empty_bank: Path):
    """A function that writes an include folder with one card and a plugin module."""

    def make(card: str | None = None, plugin: str | None = None, name: str = "toy-words",
             builder: str = "toy-words") -> Path:
        folder = tmp_path / "bank"
        write(folder / name / "card.yaml", card if card is not None else GOOD_CARD.format(name=name, builder=builder))
        write(folder / "toy_plugin.py", plugin if plugin is not None else TOY_PLUGIN)
        return folder

    return make


TOY_PLUGIN = '''
from probebank.hookspecs import hookimpl

WORDS = ["apple", "Berlin", "river", "Paris", "stone", "London", "cloud", "Tokyo", "grass", "Lima",
         "table", "Oslo", "paper", "Rome", "water", "Cairo"]


def build(ctx):
    for i, w in enumerate(WORDS):
        text = f"we saw {w} today"
        start = text.index(w)
        yield {"text": text, "targets": [(start, start + len(w))],
               "label": "capitalised" if w[0].isupper() else "lower", "group": w}


@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''
