"""The replicate command: checks that the paper's findings hold on the default model."""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import app, console, err_console, parse_ints
from probebank.errors import ConfigError


@app.command()
def replicate(model: str = typer.Option("smollm2-135m", help="Model to check (default: the embedded SmolLM2-135M)."),
              layers: str | None = typer.Option(None, help="Layers, e.g. 0,6,12 or 0-29 (default: every 3rd and the last)."),
              limit: int = typer.Option(30, help="Texts per language of language-udhr."),
              seeds: str = typer.Option("0,1,2", help="Comma-separated split seeds."),
              method: str = typer.Option("f_stat", help="Selection method (f_stat: scale-free, see docs/controls.md)."),
              out: Path | None = typer.Option(None, help="Also write the records to this folder."),
              progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Run the checks behind Gurnee et al.'s findings (single language neurons, privileged basis, F1 grows
    with k, selectivity) and print a findings table; exit 1 when a finding fails."""
    from probebank.plugins import get_registered
    from probebank.results.replicate import ReplicateConfig, render_findings
    from probebank.results.replicate import replicate as run_replicate

    if method not in get_registered().methods:
        raise ConfigError(f"unknown method '{method}'", field="--method",
                          fix=f"use one of: {', '.join(sorted(get_registered().methods))}")
    if limit < 10:  # the shuffled copy needs every language in several articles on both sides of the split
        raise ConfigError(f"--limit {limit} is too small for grouped splits of 12 languages", field="--limit",
                          fix="use at least 10")
    config = ReplicateConfig(model=model, layers=parse_ints(layers, "--layers"), limit=limit,
                             seeds=parse_ints(seeds, "--seeds") or [0], method=method, out=out, progress=progress)
    found, seconds = run_replicate(config, log=lambda msg: err_console.print(msg))
    console.print(render_findings(found, title=f"{model}: Gurnee et al. findings on language-udhr "
                                              f"(limit {limit}, seeds {config.seeds})"))
    n_pass = sum(f.passed for f in found)
    console.print(f"{n_pass}/{len(found)} findings hold; {seconds:.0f} s")
    if n_pass < len(found):
        raise typer.Exit(1)
