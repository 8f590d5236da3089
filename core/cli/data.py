"""Commands that read the bank: list, show, build, export, schema."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from probebank.cli.common import IncludeOpt, app, console, short_text
from probebank.errors import ConfigError


@app.command("list")
def list_cmd(format: str = typer.Option("table", "--format", help="table or json"),
             include: list[Path] | None = IncludeOpt) -> None:
    """List the datasets of the bank (reads cards only; imports no builder code)."""
    from probebank.data.registry import load_catalog

    catalog = load_catalog(include or [])
    items: list[dict[str, Any]] = []
    for name in catalog.names():
        card = catalog.entries[name].card
        n_classes = len(card.labels.classes)
        items.append({"name": name, "version": card.version, "category": card.category,
                      "label_type": card.labels.type, "classes": card.labels.classes,
                      "binary_features": 1 if card.labels.type == "binary" else
                      0 if card.labels.type == "regression" else n_classes,  # a regression card: one value
                      "aggregation": card.aggregation, "silver": card.silver, "license": card.license,
                      "tags": card.tags, "origin": catalog.entries[name].origin})
    if format == "json":
        print(json.dumps({"datasets": items, "suites": {k: v.model_dump() for k, v in catalog.suites.items()}},
                         indent=1))
        return
    if format != "table":
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table or json")
    from rich.table import Table
    n_values = sum(i["label_type"] == "regression" for i in items)
    table = Table(title=f"{len(items)} datasets, {sum(i['binary_features'] for i in items)} binary features"
                        + (f", {n_values} regression" if n_values else ""))
    for col in ("name", "category", "version", "labels", "features", "aggregation", "license"):
        table.add_column(col)
    for i in items:
        table.add_row(i["name"], i["category"], i["version"], i["label_type"] + (" (silver)" if i["silver"] else ""),
                      "value" if i["label_type"] == "regression" else str(i["binary_features"]), i["aggregation"],
                      short_text(i["license"]))
    console.print(table)


@app.command()
def show(name: str, include: list[Path] | None = IncludeOpt) -> None:
    """Print one dataset's card."""
    import yaml

    from probebank.data.registry import load_catalog

    entry = load_catalog(include or []).get(name)
    console.print(f"[bold]{name}[/bold]  ({entry.origin}{', ' + str(entry.card_path) if entry.card_path else ''})")
    print(yaml.safe_dump(entry.card.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True))


@app.command()
def build(name: str, limit: int | None = typer.Option(None, help="Max examples per class."),
          force: bool = typer.Option(False, help="Rebuild even if cached."),
          include: list[Path] | None = IncludeOpt) -> None:
    """Build one dataset's examples (fetching its pinned sources) and print their statistics."""
    from collections import Counter

    from probebank.data.examples import build_dataset, row_labels
    from probebank.data.registry import load_catalog
    from probebank.plugins import get_registered

    entry = load_catalog(include or []).get(name)
    built = build_dataset(entry, builders=get_registered(include or []).builders, limit=limit,
                          include=include or [], force=force)
    counts = Counter(lab for ex in built.dataset for lab in row_labels(ex))
    console.print(f"{name} v{built.card.version}: {len(built.dataset)} examples, "
                  f"{sum(counts.values())} targets, content hash {built.content_hash[:16]}")
    if built.card.labels.type == "regression":  # one value per target: its range, not class counts
        import numpy as np

        from probebank.data.examples import row_values
        values = np.asarray([v for ex in built.dataset for v in row_values(ex)])
        q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
        console.print(f"  {built.card.labels.value_name:<24} min {q[0]:.4g}, quartiles {q[1]:.4g} / {q[2]:.4g} / "
                      f"{q[3]:.4g}, max {q[4]:.4g}; mean {values.mean():.4g}, {np.unique(values).size} distinct")
    for idx, n in sorted(counts.items()) if built.card.labels.type != "regression" else ():
        console.print(f"  {built.card.labels.classes[idx]:<24} {n}")
    console.print(f"cached at {built.path}")


@app.command()
def schema(name: str | None = typer.Argument(None, help="One schema (default: all).")) -> None:
    """Print the JSON Schemas of the card, registry, plan, probe config and result record."""
    from probebank.cli.schemas import SCHEMAS

    if name and name not in SCHEMAS:
        raise ConfigError(f"no schema named '{name}'", field="NAME", fix=f"use one of: {', '.join(SCHEMAS)}")
    chosen = {name: SCHEMAS[name]} if name else SCHEMAS
    print(json.dumps({k: v.model_json_schema() for k, v in chosen.items()}, indent=1))


@app.command()
def export(names: list[str] | None = typer.Argument(None, help="Datasets to export."),
           suite: str | None = typer.Option(None, "--suite", help="Export every dataset of a suite (at its limit)."),
           out: Path = typer.Option(..., "--out", help="Folder to write; each dataset goes to OUT/NAME/."),
           limit: int | None = typer.Option(None, help="Max examples per class (default: all; a suite's own limit)."),
           include: list[Path] | None = IncludeOpt) -> None:
    """Write built datasets as Hugging Face datasets folders (Parquet + README.md dataset card).

    Each OUT/NAME/ loads with `datasets.load_dataset("OUT/NAME")`, without probebank installed.
    """
    from probebank.data.examples import build_dataset
    from probebank.data.export import check_destination, check_out, export_dataset
    from probebank.data.registry import load_catalog
    from probebank.data.sources import SourceUnavailable
    from probebank.plugins import get_registered
    from probebank.settings import did_you_mean

    check_out(out)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit} keeps no example", field="--limit",
                          fix="give at least 1 example per class, or leave it out for the full build")
    catalog = load_catalog(include or [])
    if bool(names) == bool(suite):
        raise ConfigError("name the datasets to export, or give --suite, not both" if names else
                          "name the datasets to export, or give --suite", field="NAMES",
                          fix="e.g. `probebank export language-udhr --out hf/` or `probebank export --suite quick --out hf/`")
    if suite:
        if suite not in catalog.suites:
            raise ConfigError(f"no suite named '{suite}'", field="--suite",
                              fix=did_you_mean(suite, catalog.suites) + f"use one of: {', '.join(sorted(catalog.suites))}")
        chosen, limit = list(catalog.suite(suite).datasets), limit if limit is not None else catalog.suite(suite).limit
    else:
        chosen = [catalog.get(n).card.name for n in names or []]  # every name checked (did-you-mean) before any build
    for name in chosen:  # every destination checked before anything is built
        check_destination(out, name)
    builders = get_registered(include or []).builders
    for name in chosen:
        try:
            built = build_dataset(catalog.entries[name], builders=builders, limit=limit, include=include or [])
        except SourceUnavailable as exc:  # a missing client (npm): skipped with its line, as validate does
            console.print(f"[yellow]{name}: {exc.message}[/yellow]", highlight=False)
            continue
        done = export_dataset(built, out)
        sizes = ", ".join(f"{s} {z.texts} texts / {z.targets} targets" for s, z in done.splits.items())
        console.print(f"{name}: {sizes} -> {done.path}", highlight=False)
