"""The `probebank` command: a thin shell over the Python API.

Errors of type ProbebankError become a one-paragraph message and exit code 2, here and only
here; `--debug` shows the traceback instead.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import ConfigError, ProbebankError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="probebank: probing datasets and k-sparse probes on transformer activations.")
# emoji=False: model names such as "tiny:llama" must print as written; wide tables when piped
console = Console(emoji=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, emoji=False)
STATE = {"debug": False}

IncludeOpt = typer.Option(None, "--include", help="Folder of extra cards and plugin modules (repeatable).")


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _ints(value: Optional[str], option: str) -> Optional[list[int]]:
    if not value:
        return None
    out: list[int] = []
    try:
        for part in value.split(","):
            part = part.strip()
            if ":" in part or ("-" in part[1:]):
                sep = ":" if ":" in part else "-"
                lo, hi = part.split(sep, 1) if sep == ":" else part.rsplit("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"cannot read '{value}' as a list of integers", field=option,
                          fix="write e.g. 0,5,10 or 3-7") from None
    return out


def _short(text: str, width: int = 40) -> str:
    first = text.split(";")[0].split(". ")[0].strip()
    return first if len(first) <= width else first[: width - 1] + "…"


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short messages.")) -> None:
    STATE["debug"] = debug


@app.command("list")
def list_cmd(format: str = typer.Option("table", "--format", help="table or json"),
             include: Optional[List[Path]] = IncludeOpt) -> None:
    """List the datasets of the bank (reads cards only; imports no builder code)."""
    from .registry import load_catalog

    catalog = load_catalog(include or [], with_plugins=bool(include))
    items = []
    for name in catalog.names():
        card = catalog.entries[name].card
        n_classes = len(card.labels.classes)
        items.append({"name": name, "version": card.version, "category": card.category,
                      "label_type": card.labels.type, "classes": card.labels.classes,
                      "binary_features": 1 if card.labels.type == "binary" else n_classes,
                      "aggregation": card.aggregation, "silver": card.silver, "license": card.license,
                      "tags": card.tags, "origin": catalog.entries[name].origin})
    if format == "json":
        print(json.dumps({"datasets": items, "suites": {k: v.model_dump() for k, v in catalog.suites.items()}},
                         indent=1))
        return
    if format != "table":
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table or json")
    from rich.table import Table
    table = Table(title=f"{len(items)} datasets, {sum(i['binary_features'] for i in items)} binary features")
    for col in ("name", "category", "version", "labels", "features", "aggregation", "license"):
        table.add_column(col)
    for i in items:
        table.add_row(i["name"], i["category"], i["version"], i["label_type"] + (" (silver)" if i["silver"] else ""),
                      str(i["binary_features"]), i["aggregation"], _short(i["license"]))
    console.print(table)


@app.command()
def show(name: str, include: Optional[List[Path]] = IncludeOpt) -> None:
    """Print one dataset's card."""
    import yaml
    from .registry import load_catalog

    entry = load_catalog(include or [], with_plugins=bool(include)).get(name)
    console.print(f"[bold]{name}[/bold]  ({entry.origin}{', ' + str(entry.card_path) if entry.card_path else ''})")
    print(yaml.safe_dump(entry.card.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True))


@app.command()
def build(name: str, limit: Optional[int] = typer.Option(None, help="Max examples per class."),
          force: bool = typer.Option(False, help="Rebuild even if cached."),
          include: Optional[List[Path]] = IncludeOpt) -> None:
    """Build one dataset's examples (fetching its pinned sources) and print their statistics."""
    from collections import Counter

    from .examples import build_dataset, row_labels
    from .plugins import get_registered
    from .registry import load_catalog

    entry = load_catalog(include or []).get(name)
    built = build_dataset(entry, builders=get_registered(include or []).builders, limit=limit,
                          include=include or [], force=force)
    counts = Counter(lab for ex in built.dataset for lab in row_labels(ex))
    console.print(f"{name} v{built.card.version}: {len(built.dataset)} examples, "
                  f"{sum(counts.values())} targets, content hash {built.content_hash[:16]}")
    for idx, n in sorted(counts.items()):
        console.print(f"  {built.card.labels.classes[idx]:<24} {n}")
    console.print(f"cached at {built.path}")


@app.command()
def validate(names: Optional[List[str]] = typer.Argument(None), all_: bool = typer.Option(False, "--all"),
             limit: Optional[int] = typer.Option(60, help="Examples per class to build (0 = cards only)."),
             include: Optional[List[Path]] = IncludeOpt) -> None:
    """Check cards and registry; build each dataset (small) and check its examples."""
    from .examples import build_dataset
    from .plugins import get_registered
    from .registry import load_catalog
    from .sources import SourceUnavailable

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


@app.command()
def run(model: str = typer.Option("smollm2-135m", help="Registered model name, a .gguf path or a local HF folder."),
        datasets: Optional[str] = typer.Option(None, help="Comma-separated dataset names."),
        suite: Optional[str] = typer.Option(None, help="A suite from registry.yaml (default: quick)."),
        sites: str = typer.Option("mlp", help="Comma-separated sites: mlp, resid, attn."),
        layers: Optional[str] = typer.Option(None, help="Layers, e.g. 0,4,8 or 0-11 (default: all)."),
        methods: str = typer.Option("mean_diff", help="Comma-separated selection methods."),
        limit: Optional[int] = typer.Option(None, help="Max examples per class (default: the suite's)."),
        seeds: str = typer.Option("0", help="Comma-separated split seeds."),
        batch_size: int = typer.Option(16, help="Sequences per forward pass."),
        out: Path = typer.Option(Path("probebank-out"), help="Results folder."),
        include: Optional[List[Path]] = IncludeOpt,
        progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """Build datasets, extract activations, run k-sparse probes and print the summary table."""
    from .results import render_summary
    from .run import RunConfig, run as run_job

    site_list = _csv(sites) or ["mlp"]
    bad = [s for s in site_list if s not in ("mlp", "resid", "attn")]
    if bad:
        raise ConfigError(f"unknown site(s) {bad}", field="--sites", fix="use mlp, resid and/or attn")
    config = RunConfig(model=model, datasets=_csv(datasets), suite=suite, sites=site_list,
                       layers=_ints(layers, "--layers"), methods=_csv(methods) or ["mean_diff"], limit=limit,
                       seeds=_ints(seeds, "--seeds") or [0], batch_size=batch_size, out=out,
                       include=list(include or []), progress=progress)
    outcome = run_job(config, log=lambda msg: err_console.print(msg))
    console.print(render_summary(outcome.summary, title=f"{model}: best layer per feature"))
    console.print(f"{outcome.n_records} records in {outcome.out / 'records.jsonl'}; "
                  f"summary in {outcome.out / 'summary.md'}; {outcome.seconds:.1f} s")
    for name, why in outcome.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {name}: {why}")


@app.command()
def results(folder: Path = typer.Argument(..., help="A results folder (the --out of a run)."),
            method: Optional[str] = typer.Option(None, help="Only this selection method."),
            format: str = typer.Option("table", "--format", help="table, md or json")) -> None:
    """Print the summary table of a results folder."""
    from .results import read_records, render_summary, summarise, summary_json

    rows = summarise(read_records(folder), method=method)
    if format == "json":
        print(summary_json(rows))
    elif format == "md":
        import tempfile
        from .results import write_summary_markdown
        with tempfile.TemporaryDirectory() as tmp:
            write_summary_markdown(rows, Path(tmp) / "s.md")
            print((Path(tmp) / "s.md").read_text())
    elif format == "table":
        console.print(render_summary(rows, title=str(folder)))
    else:
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table, md or json")


@app.command()
def schema(name: Optional[str] = typer.Argument(None, help="One schema (default: all).")) -> None:
    """Print the JSON Schemas of the card, registry, plan, probe config and result record."""
    from .schema import SCHEMAS

    if name and name not in SCHEMAS:
        raise ConfigError(f"no schema named '{name}'", field="NAME", fix=f"use one of: {', '.join(SCHEMAS)}")
    chosen = {name: SCHEMAS[name]} if name else SCHEMAS
    print(json.dumps({k: v.model_json_schema() for k, v in chosen.items()}, indent=1))


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app and map errors to exit codes (2 = invalid input)."""
    warnings.simplefilter("default")
    try:
        app(args=argv, standalone_mode=False)
    except ProbebankError as exc:
        if STATE["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {exc.render()}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted: finished shards and records are kept; run again to resume.")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors and the like
        import click
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
