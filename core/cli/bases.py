"""Commands for unsupervised bases: bases."""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from probebank.cli.common import IncludeOpt, app, console
from probebank.errors import ConfigError


def _settings(factory: Callable[..., Any]) -> str:
    """The constructor settings of a basis, with defaults (random_state defaults to the run's seed)."""
    from probebank.bases.spec import settings_of

    return ", ".join(f"{p.name}={p.default!r}" if p.default is not inspect.Parameter.empty else p.name
                     for p in settings_of(factory))


def _fmt(value: object, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@app.command()
def bases(compare: Path | None = typer.Option(None, "--compare", help="A results folder of a run with --bases: "
                                                 "print the basis comparison table."),
          category: str | None = typer.Option(None, help="With --compare: only datasets of this category."),
          format: str = typer.Option("table", "--format", help="table, md or json"),
          include: list[Path] | None = IncludeOpt) -> None:
    """List the registered unsupervised bases, or compare them on a results folder."""
    if format not in ("table", "md", "json"):
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table, md or json")
    if compare is None:
        from probebank.plugins import get_registered

        reg = get_registered(include or [])
        items = [{"name": name, "trainable": bool(getattr(f, "trainable", False)), "settings": _settings(f),
                  "about": (inspect.getdoc(f) or "").split("\n")[0]} for name, f in sorted(reg.bases.items())]
        if format == "json":
            print(json.dumps(items, indent=1))
            return
        from rich.table import Table
        table = Table(title=f"{len(items)} bases (use: probebank run --bases identity,pca,...)")
        for col in ("name", "fit", "settings (name:key=value)", "about"):
            table.add_column(col)
        for i in items:
            table.add_row(str(i["name"]), "yes" if i["trainable"] else "no", str(i["settings"]), str(i["about"]))
        console.print(table)
        return
    from probebank.bases.run import compare as compare_rows
    from probebank.bases.run import read_basis_records

    rows = compare_rows(read_basis_records(compare), category=category)
    if format == "json":
        print(json.dumps(rows, indent=1))
        return
    cols = [("basis", "basis"), ("site", "site"), ("units", "units"), ("f1_k1", "F1 k=1"),
            ("best_unit_f1", "best unit F1"), ("coverage_80", "cov>=0.8"), ("coverage_90", "cov>=0.9"),
            ("dead", "dead"), ("always_on", "always on"), ("fvu", "FVU"), ("n", "n"), ("flags", "flags")]

    def cell(row: dict, key: str) -> str:
        v = row[key]
        return ", ".join(v) if isinstance(v, list) else _fmt(v)
    if format == "md":
        print("| " + " | ".join(c[1] for c in cols) + " |")
        print("|" + "---|" * len(cols))
        for row in rows:
            print("| " + " | ".join(cell(row, k) for k, _ in cols) + " |")
        return
    from rich.table import Table
    title = f"bases on {compare}" + (f" ({category})" if category else "") + ": means over datasets x layers"
    table = Table(title=title)
    for _, head in cols:
        table.add_column(head)
    for row in rows:
        table.add_row(*(cell(row, k) for k, _ in cols))
    console.print(table)
