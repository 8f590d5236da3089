"""Commands that compare and show results: leaderboard, submit --check, inspect."""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import IncludeOpt, app, console, err_console
from probebank.errors import ConfigError

FORMATS = ("table", "md", "csv", "html")


@app.command()
def leaderboard(folders: list[Path] = typer.Argument(..., help="Results folders (the --out of `probebank run`)."),
                by: str = typer.Option("model", "--by", help="Compare by: model, method, layer or basis."),
                category: str | None = typer.Option(None, "--category", help="Only this dataset category."),
                metric: str = typer.Option("f1_k1", "--metric", help="Ranking metric: f1_k1, f1_k16, f1_dense, k_auc."),
                layer_by: str = typer.Option("validation", "--layer-by",
                                             help="Pick each feature's best layer on k=1 validation F1 (a split of the "
                                                  "training rows: never looks at the test rows; older results fall "
                                                  "back to training F1), on test F1 (the paper's way, optimistic) or "
                                                  "on training F1."),
                format: str = typer.Option("table", "--format", help="table, md, csv or html."),
                out: Path | None = typer.Option(None, "--out", help="Output: a folder for html, a file for md/csv."),
                neurons: bool = typer.Option(True, help="html: write a neuron card page per k=1 neuron."),
                gates: bool = typer.Option(True, help="html: show each dataset's quality gates (at the run's limit)."),
                progress: bool = typer.Option(True, help="html: progress bars for the gates and the pages."),
                include: list[Path] | None = IncludeOpt) -> None:
    """Rank models (or methods, layers, bases) per dataset category: mean and Borda count."""
    from probebank.results.leaderboard import build_leaderboard

    if format not in FORMATS:
        raise ConfigError(f"unknown format '{format}'", field="--format", fix=f"use one of: {', '.join(FORMATS)}")
    if format == "html" and out is None:
        raise ConfigError("--format html writes a folder of pages", field="--out", fix="add --out SITE/")
    lb = build_leaderboard(folders, by=by, category=category, metric=metric, include=list(include or []),
                           layer_by=layer_by)
    if format == "html" and out is not None:
        from probebank.report import write_site

        gate_results = None
        if gates:
            from probebank.report.gates import gate_tables
            limits = {run.get("limit") for run in lb.results.runs.values()}
            gate_results = gate_tables(sorted({r.provenance.dataset for r in lb.results.records}),
                                       limit=limits.pop() if len(limits) == 1 else None, include=list(include or []),
                                       progress=progress)
        pages = write_site(lb, out, gates=gate_results, include=list(include or []), neuron_cards=neurons,
                           progress=progress)
        console.print(f"wrote {len(pages)} pages; open {(Path(out) / 'index.html').resolve()}")
        return
    if format == "table":
        from probebank.results.leaderboard_format import render_rich
        for item in render_rich(lb):
            console.print(item)
        return
    from probebank.results.leaderboard_format import render_csv, render_markdown
    text = render_markdown(lb) if format == "md" else render_csv(lb)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        print(text, end="")


@app.command()
def submit(folder: Path = typer.Argument(..., help="A results folder to check."),
           check: bool = typer.Option(False, "--check", help="Validate the folder for the leaderboard (required)."),
           rebuild: bool = typer.Option(False, help="Rebuild every dataset instead of reading the build cache."),
           include: list[Path] | None = IncludeOpt) -> None:
    """Check a results folder against the schema, the registry's dataset hashes and the canonical protocol."""
    from probebank.results.submit import CANONICAL, check_folder

    if not check:
        raise ConfigError("only checking is implemented: there is no upload", field="--check",
                          fix="run `probebank submit --check DIR`")
    report = check_folder(folder, include=list(include or []), rebuild=rebuild)
    if report.ok:
        console.print(f"[green]accepted[/green]: {report.n_records} records of {len(report.datasets)} dataset(s) "
                      f"({', '.join(sorted(report.datasets))}); content hashes match the registry; "
                      f"protocol: {CANONICAL.describe()}", highlight=False)
        return
    err_console.print(f"[red]rejected[/red]: {folder}: {len(report.rejections)} problem(s) in "
                      f"{report.n_records} records:", highlight=False)
    for rej in report.rejections[:50]:
        err_console.print(f"  {folder / rej.file}{':' + str(rej.line) if rej.line else ''}: "
                          f"field '{rej.field}': {rej.reason}", highlight=False, soft_wrap=True)
    if len(report.rejections) > 50:
        err_console.print(f"  ... and {len(report.rejections) - 50} more", highlight=False)
    raise ConfigError(f"{len(report.rejections)} record(s) or settings do not meet the leaderboard's checks "
                      f"(listed above); canonical protocol: {CANONICAL.describe()}", file=folder,
                      fix="rerun `probebank run` with the default settings on the current registry")


@app.command()
def inspect(model: str = typer.Argument(..., help="Model name as recorded in the stores (e.g. smollm2-135m)."),
            layer: int = typer.Argument(..., help="Layer index."),
            neuron: int = typer.Argument(..., help="Unit index within the site."),
            site: str = typer.Option("mlp", "--site", help="mlp, resid or attn."),
            results: list[Path] | None = typer.Option(None, "--results",
                                                         help="Results folders to search for selections "
                                                              "(default: probe records cached by earlier runs)."),
            datasets: str | None = typer.Option(None, help="Only these datasets (comma-separated)."),
            top: int = typer.Option(8, help="Top-activating examples per dataset."),
            ablate: bool = typer.Option(False, "--ablate", help="Causal check: ablate the unit (or its k-set) against "
                                                                "random units of matched variance; steer by it."),
            feature: str | None = typer.Option(None, "--feature", help="--ablate: the probe's DATASET/FEATURE "
                                                                       "(default: the one that selected the unit "
                                                                       "with the smallest k)."),
            k: int | None = typer.Option(None, "--k", help="--ablate: check the whole k-set of that k-sparse probe "
                                                           "(default: the unit alone)."),
            method: str | None = typer.Option(None, "--method", help="--ablate: the probe's selection method."),
            mode: str = typer.Option("mean", "--mode", help="--ablate: mean, zero or resample."),
            draws: int = typer.Option(100, "--draws", help="--ablate: random unit sets in the null."),
            texts: int = typer.Option(16, "--texts", help="--ablate: test texts per class."),
            max_tokens: int = typer.Option(64, "--max-tokens", help="--ablate: tokens per text."),
            steer_scale: float = typer.Option(1.0, "--steer-scale", help="--ablate: steering adds this times the "
                                                                         "class-mean difference."),
            probe_layer: int | None = typer.Option(None, "--probe-layer", help="--ablate: the downstream probe's layer "
                                                                               "(default: the next later one)."),
            probe_k: int | None = typer.Option(None, "--probe-k", help="--ablate: the downstream probe's k "
                                                                       "(default: as many units as checked)."),
            seed: int = typer.Option(0, "--seed", help="--ablate: seed of the texts, draws and resampling."),
            load: str | None = typer.Option(None, "--load", help="--ablate: how to load the model (default: the "
                                                                 "--model of the run in --results, else MODEL)."),
            device: str = typer.Option("auto", "--device", help="--ablate: auto, cpu, cuda, cuda:N or mps."),
            progress: bool = typer.Option(True, help="--ablate: a progress bar over the null draws."),
            include: list[Path] | None = IncludeOpt) -> None:
    """Neuron card: activation histogram per class, top-activating examples, where else it is selected;
    with --ablate, a causal check of it (docs/causal.md)."""
    from probebank.cli.common import parse_csv
    from probebank.results.neurons import neuron_card, render_text

    if site not in ("mlp", "resid", "attn"):
        raise ConfigError(f"unknown site '{site}'", field="--site", fix="use mlp, resid or attn")
    settings = None
    if ablate:
        from pydantic import ValidationError

        from probebank.causal.record import CausalSettings
        try:
            settings = CausalSettings(mode=mode, draws=draws, texts=texts, max_tokens=max_tokens,
                                      steer_scale=steer_scale, seed=seed)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]).replace("_", "-") if err["loc"] else "ablate"
            raise ConfigError(f"{err['msg']} (got {err.get('input')!r})", field=f"--{name}",
                              fix="see `probebank inspect --help` and docs/causal.md") from None
    card = neuron_card(model, layer, neuron, site=site, results=list(results or []), datasets=parse_csv(datasets), top_n=top)
    console.print(render_text(card, markup=console.is_terminal), highlight=False,
                  markup=console.is_terminal, soft_wrap=True)
    if settings is None:
        return
    from probebank.results.causal import render_causal, run_causal

    record, reused, _ = run_causal(model, site, layer, neuron, settings, results=list(results or []), feature=feature,
                                   k=k, method=method, probe_layer=probe_layer, probe_k=probe_k, load=load,
                                   device=device, include=list(include or []), datasets=parse_csv(datasets),
                                   progress=progress)
    console.print("")
    console.print(render_causal(record) + ("\n  (reused from the cache)" if reused else
                                           f"\n  ({record.wall_time_s:.1f} s)"), highlight=False, markup=False,
                  soft_wrap=True)
