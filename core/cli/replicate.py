"""The replicate command: are the pre-registered findings true of this model?"""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import app, console, err_console, parse_ints
from probebank.errors import ConfigError


@app.command()
def replicate(model: str = typer.Option("smollm2-135m", help="Model to check (default: the embedded SmolLM2-135M)."),
              findings: Path | None = typer.Option(None, help="Pre-registered findings file (default: the one shipped "
                                                               "with probebank, core/results/findings.yaml)."),
              register: bool = typer.Option(False, "--register", help="Record the findings file's version and hash "
                                                                      "in its lock, and stop (before any run)."),
              layers: str | None = typer.Option(None, help="Override the file's layers (exploratory run)."),
              limit: int | None = typer.Option(None, help="Override the texts per language (exploratory run)."),
              category_limit: int | None = typer.Option(None, help="Override the examples per class of the category "
                                                                   "datasets (exploratory run)."),
              seeds: str | None = typer.Option(None, help="Override the split seeds (exploratory run)."),
              causal: bool = typer.Option(True, help="Run the causal finding (--no-causal: skip it, exploratory)."),
              device: str | None = typer.Option(None, help="Device for the model, e.g. cuda:0 (default: cpu)."),
              out: Path | None = typer.Option(None, help="Also write records, causal checks and findings.json here "
                                                         "(`probebank report` shows them)."),
              progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Judge the pre-registered findings (single language neurons, privileged basis overall and per category,
    F1 grows with k, early layers more distributed, selectivity, causal effect of top neurons) under the
    standard protocol and the paper's; print the table with 95% intervals; exit 1 when a finding fails."""
    from probebank.results.preregistered import load_findings
    from probebank.results.preregistered import register as register_findings

    if register:
        version, digest, new = register_findings(findings)
        console.print(f"findings version {version} {'registered' if new else 'was already registered'}: "
                      f"sha256 {digest}")
        return
    if limit is not None and limit < 10:  # the shuffled copy needs every language in several articles on both sides
        raise ConfigError(f"--limit {limit} is too small for grouped splits of 12 languages", field="--limit",
                          fix="use at least 10")
    from probebank.results.replicate import ReplicateConfig, render_findings
    from probebank.results.replicate import replicate as run_replicate

    prereg = load_findings(findings)
    config = ReplicateConfig(model=model, findings=prereg, layers=parse_ints(layers, "--layers"), limit=limit,
                             category_limit=category_limit, seeds=parse_ints(seeds, "--seeds"), causal=causal,
                             out=out, progress=progress, device=device)
    result = run_replicate(config, log=lambda msg: err_console.print(msg))
    console.print(render_findings(result, prereg))
    n_pass = sum(f.passed for f in result.findings)
    console.print(f"{n_pass}/{len(result.findings)} findings hold; {result.seconds:.0f} s")
    if n_pass < len(result.findings):
        raise typer.Exit(1)
