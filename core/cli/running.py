"""The main job and its results: run, results."""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import IncludeOpt, app, console, err_console, parse_csv, parse_ints
from probebank.errors import ConfigError


@app.command()
def run(model: str = typer.Option("smollm2-135m", help="Registered model name, a .gguf path, a local HF folder "
                                                      "or hf:ORG/NAME (a hub id)."),
        revision: str | None = typer.Option(None, help="Hub branch, tag or commit of an hf: model (recorded: the commit)."),
        datasets: str | None = typer.Option(None, help="Comma-separated dataset names."),
        suite: str | None = typer.Option(None, help="A suite from registry.yaml (default: quick)."),
        sites: str = typer.Option("mlp", help="Comma-separated sites: mlp, resid, attn."),
        layers: str | None = typer.Option(None, help="Layers, e.g. 0,4,8 or 0-11 (default: all)."),
        methods: str = typer.Option("mean_diff", help="Comma-separated selection methods."),
        limit: int | None = typer.Option(None, help="Max examples per class (default: the suite's)."),
        seeds: str = typer.Option("0,1,2", help="Comma-separated split seeds (intervals are over seeds)."),
        controls: bool = typer.Option(True, help="Shuffled-label, random-rotation and token-identity controls."),
        random_init: bool = typer.Option(False, "--random-init",
                                         help="Also probe a random-init copy of the model (a second extraction)."),
        batch_size: int = typer.Option(16, help="Sequences per forward pass."),
        out: Path = typer.Option(Path("probebank-out"), help="Results folder."),
        include: list[Path] | None = IncludeOpt,
        progress: bool = typer.Option(True, help="Show progress bars."),
        bases: str = typer.Option("identity", help="Comma-separated bases to probe, e.g. identity,pca,sae-topk "
                                                   "or sae:/path/to/folder (`probebank bases` lists them).")) -> None:
    """Build datasets, extract activations, run k-sparse probes and print the summary table."""
    from probebank.results.summary import render_summary
    from probebank.run import RunConfig
    from probebank.run import run as run_job

    site_list = parse_csv(sites) or ["mlp"]
    bad = [s for s in site_list if s not in ("mlp", "resid", "attn")]
    if bad:
        raise ConfigError(f"unknown site(s) {bad}", field="--sites", fix="use mlp, resid and/or attn")
    config = RunConfig(model=model, revision=revision, datasets=parse_csv(datasets), suite=suite, sites=site_list,
                       layers=parse_ints(layers, "--layers"), methods=parse_csv(methods) or ["mean_diff"], limit=limit,
                       seeds=parse_ints(seeds, "--seeds") or [0], batch_size=batch_size, out=out,
                       include=list(include or []), progress=progress, controls=controls, random_init=random_init,
                       bases=parse_csv(bases) or ["identity"])
    outcome = run_job(config, log=lambda msg: err_console.print(msg))
    console.print(render_summary(outcome.summary, title=f"{model}: best layer per feature"))
    if outcome.certificates:
        console.print(outcome.certificates)
    console.print(f"{outcome.n_records} records in {outcome.out / 'records.jsonl'}; "
                  f"summary in {outcome.out / 'summary.md'}; {outcome.seconds:.1f} s")
    for name, why in outcome.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {name}: {why}")


@app.command()
def results(folder: Path = typer.Argument(..., help="A results folder (the --out of a run)."),
            method: str | None = typer.Option(None, help="Only this selection method."),
            format: str = typer.Option("table", "--format", help="table, md or json")) -> None:
    """Print the summary table of a results folder."""
    from probebank.results.records import read_records
    from probebank.results.summary import certificates, render_summary, summarise, summary_json

    records = read_records(folder)
    rows = summarise(records, method=method)
    digest = certificates(r for r in records if method is None or r.method == method)
    if format == "json":
        print(summary_json(rows))
    elif format == "md":
        import tempfile

        from probebank.results.summary import write_summary_markdown
        with tempfile.TemporaryDirectory() as tmp:
            write_summary_markdown(rows, Path(tmp) / "s.md", footer=digest)
            print((Path(tmp) / "s.md").read_text())
    elif format == "table":
        console.print(render_summary(rows, title=str(folder)))
        if digest:
            console.print(digest)
    else:
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table, md or json")
