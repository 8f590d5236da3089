"""Commands that check and grow the bank: validate (quality gates), catalog, new."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .common import IncludeOpt, app, console


@app.command()
def validate(names: Optional[List[str]] = typer.Argument(None), all_: bool = typer.Option(False, "--all"),
             limit: Optional[int] = typer.Option(60, help="Examples per class to build (0 = cards only)."),
             include: Optional[List[Path]] = IncludeOpt) -> None:
    """Check cards and registry; build each dataset (small) and check its examples."""
    from ..examples import build_dataset
    from ..plugins import get_registered
    from ..registry import load_catalog
    from ..sources import SourceUnavailable

    catalog = load_catalog(include or [])
    if not names and not all_:
        raise ConfigError("name datasets to validate, or pass --all", field="NAMES",
                          fix="e.g. `probebank validate language-udhr` or `probebank validate --all`")
    targets = catalog.names() if all_ else [catalog.get(n).card.name for n in names]
    builders = get_registered(include or []).builders
    for name in targets:
        entry = catalog.entries[name]
        if entry.card.builder not in builders:
            raise ConfigError(f"dataset '{name}' names builder '{entry.card.builder}' which no plugin registers",
                              file=entry.card_path, field="builder",
                              fix=f"use one of: {', '.join(sorted(builders))}")
        if not limit:
            console.print(f"[green]ok[/green] {name} (card)")
            continue
        try:
            built = build_dataset(entry, builders=builders, limit=limit, include=include or [])
        except SourceUnavailable as exc:
            console.print(f"[yellow]skipped[/yellow] {name}: {exc.message}")
            continue
        console.print(f"[green]ok[/green] {name}: {len(built.dataset)} examples")
