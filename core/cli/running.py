"""The main job and its results: run, results."""
from __future__ import annotations

from pathlib import Path

import typer

from probebank.cli.common import IncludeOpt, app, console, err_console, parse_csv, parse_ints
from probebank.contracts import SITES
from probebank.errors import ConfigError

WideOpt = typer.Option(False, "--wide", help="Show every summary column (means only; intervals in summary.md).")
ColumnsOpt = typer.Option(None, "--columns", help="Summary columns by key, e.g. f1_k1,rotation_k1,jaccard,units_k1 "
                                                  "(`probebank results --explain` lists them).")


# `run --help` lists the valid values; tests/test_cli_settings.py checks every built-in is named here.
MODELS_HELP = ("A registered model (smollm2-135m = default, gemma3-270m, tiny:FAMILY, random-init:MODEL), "
               "a .gguf file, a local HF folder, a hub id hf:ORG/NAME[@REV], or PROVIDER:SPEC (hf:DIR, gguf:FILE).")
METHODS_HELP = ("Comma-separated selection methods: mean_diff, f_stat, mutual_info, l1, adaptive, random, milp; "
                "settings as NAME:key=value, e.g. milp:objective=logistic (default: the --protocol's method).")
PROTOCOL_HELP = ("standard (default): rank units by f_stat (a standardised statistic) and pick each feature's layer "
                 "on a validation split of the training rows; paper: Gurnee et al.'s mean_diff, layer picked on "
                 "test F1 (optimistic). See docs/controls.md.")
BASES_HELP = ("Comma-separated bases: identity, random-rotation, pca, ica, dictionary, sae-topk, sae:/path/to/folder; "
              "settings as NAME:key=value, e.g. sae-topk:k=16 (`probebank bases` lists them).")


@app.command()
def run(model: str = typer.Option("smollm2-135m", help=MODELS_HELP),
        revision: str | None = typer.Option(None, help="Hub branch, tag or commit of an hf: model (recorded: the commit)."),
        datasets: str | None = typer.Option(None, help="Comma-separated dataset names (`probebank list`)."),
        suite: str | None = typer.Option(None, help="A suite of registry.yaml: quick (default), bank, sae-probes "
                                                    "or sae-probes-ood (the tasks with a --test-on ood set)."),
        sites: str = typer.Option("mlp", help="Comma-separated sites: mlp, resid, attn."),
        layers: str | None = typer.Option(None, help="Layers, e.g. 0,4,8 or 0-11; negative counts from the end "
                                                     "(default: all; smollm2-135m has 0..29)."),
        methods: str | None = typer.Option(None, help=METHODS_HELP),
        protocol: str = typer.Option("standard", help=PROTOCOL_HELP),
        limit: int | None = typer.Option(None, help="Max examples per class, at least 1 (default: the suite's)."),
        seeds: str = typer.Option("0,1,2", help="Comma-separated split seeds (intervals are over seeds)."),
        controls: bool = typer.Option(True, help="Shuffled-label, random-rotation and token-identity controls."),
        random_init: bool = typer.Option(False, "--random-init",
                                         help="Also probe a random-init copy of the model (a second extraction)."),
        batch_size: int = typer.Option(16, help="Sequences per forward pass, at least 1."),
        max_batch_tokens: int | None = typer.Option(None, help="Padded tokens per forward pass instead of "
                                                    "--batch-size (default on a GPU: sized from free memory)."),
        device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps (auto: a GPU when there is one)."),
        dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16 (auto: bfloat16 on a GPU "
                                               "that has it, float32 on the CPU)."),
        store_dtype: str = typer.Option("float16", help="float16, or uint8 (per-unit affine codes: half the "
                                                        "bytes)."),
        out: Path = typer.Option(Path("probebank-out"), help="Results folder."),
        include: list[Path] | None = IncludeOpt,
        progress: bool = typer.Option(True, help="Show progress bars."),
        bases: str = typer.Option("identity", help=BASES_HELP),
        workers: int | None = typer.Option(None, help="Probe worker processes, one BLAS thread each (default: one "
                                                      "per core; 1: all in this process)."),
        executor: str = typer.Option("local", help="Who runs the probes: local (this machine's cores) or ray "
                                                   "(a local Ray, or a cluster with --ray-address; docs/scale.md)."),
        ray_address: str | None = typer.Option(None, help="Address of a running Ray cluster (`ray start --head` "
                                                          "prints it; 'auto' finds one on this node)."),
        test_on: str | None = typer.Option(None, "--test-on", help="Score every probe on the test set of this "
                                           "name that each dataset's card lists (test_sets), e.g. ood: fitted "
                                           "on the dataset's training rows, scored on all of the test set's."),
        wide: bool = WideOpt, columns: str | None = ColumnsOpt) -> None:
    """Build datasets, extract activations, run k-sparse probes and print the summary table.

    Every setting is checked before the model or any dataset loads; a bad one exits 2 with a did-you-mean.
    """
    from probebank.results.summary_table import pick_columns, render_table
    from probebank.settings import RunConfig, did_you_mean, preflight

    site_list = parse_csv(sites) or ["mlp"]
    for site in site_list:
        if site not in SITES:
            raise ConfigError(f"unknown site '{site}'", field="--sites",
                              fix=did_you_mean(site, SITES) + "use mlp, resid and/or attn")
    config = RunConfig(model=model, revision=revision, datasets=parse_csv(datasets), suite=suite, sites=site_list,
                       layers=parse_ints(layers, "--layers"), methods=parse_csv(methods) or [], protocol=protocol,
                       limit=limit,
                       seeds=parse_ints(seeds, "--seeds") or [0], batch_size=batch_size, out=out,
                       include=list(include or []), progress=progress, controls=controls, random_init=random_init,
                       bases=parse_csv(bases) or ["identity"], max_batch_tokens=max_batch_tokens, device=device,
                       dtype=dtype, store_dtype=store_dtype, workers=workers, executor=executor,
                       ray_address=ray_address, test_on=test_on)
    pick_columns(parse_csv(columns))  # a bad --columns fails now, not after the run
    preflight(config)  # before the engine (torch, scikit-learn) is imported: a typo answers in about a second
    from probebank.run import run as run_job

    outcome = run_job(config, log=lambda msg: err_console.print(msg))
    console.print(render_table(outcome.summary, title=f"{model}: best layer per feature", wide=wide,
                               columns=parse_csv(columns)))
    if outcome.certificates:
        console.print(outcome.certificates)
    console.print(f"{outcome.n_records} records in {outcome.out / 'records.jsonl'}; "
                  f"summary in {outcome.out / 'summary.md'}; {outcome.seconds:.1f} s")
    for name, why in outcome.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {name}: {why}")


def run_protocol(folder: Path) -> str | None:
    """The --protocol of the run that wrote `folder` (its run.json), or None: not a run's folder, or a run
    from before --protocol (its summary then picks layers on validation F1, or training F1 for old records)."""
    import json

    run_json = folder / "run.json" if folder.is_dir() else None
    if run_json is None or not run_json.is_file():
        return None
    try:
        protocol = json.loads(run_json.read_text(encoding="utf-8")).get("config", {}).get("protocol")
    except (ValueError, AttributeError):
        raise ConfigError("run.json is not valid JSON", file=run_json, field="config.protocol",
                          fix="regenerate the folder with `probebank run`") from None
    if protocol not in (None, "standard", "paper"):
        raise ConfigError(f"unknown protocol {protocol!r}", file=run_json, field="config.protocol",
                          fix="use standard or paper")
    return protocol


@app.command()
def results(folder: Path | None = typer.Argument(None, help="A results folder (the --out of a run)."),
            method: str | None = typer.Option(None, help="Only this selection method."),
            format: str = typer.Option("table", "--format", help="table, md or json"),
            wide: bool = WideOpt, columns: str | None = ColumnsOpt,
            explain: bool = typer.Option(False, "--explain", help="Say what every summary column means.")) -> None:
    """Print the summary table of a results folder."""
    from probebank.results.records import RECORDS_FILE, read_records, result_files
    from probebank.results.summary import certificates, protocol_line, summarise, summary_json
    from probebank.results.summary_cache import summary_of
    from probebank.results.summary_table import explain as explain_columns
    from probebank.results.summary_table import pick_columns, render_table
    from probebank.settings import PROTOCOL_PICK

    if explain:
        print(explain_columns())
        return
    if folder is None:
        raise ConfigError("no results folder given", field="FOLDER", fix="give the --out folder of a run, "
                          "e.g. `probebank results probebank-out`, or ask `probebank results --explain`")
    pick_columns(parse_csv(columns))
    single = folder if folder.is_file() else folder / RECORDS_FILE
    protocol = run_protocol(folder)
    pick = PROTOCOL_PICK[protocol] if protocol else "validation"
    if single.is_file() and (folder.is_file() or result_files(folder) == [single]):
        rows, digest = summary_of(single, method, pick)  # a run's folder: its summary is cached by the records' bytes
    else:
        records = read_records(folder)
        rows = summarise(records, method=method, pick=pick)
        digest = certificates(r for r in records if method is None or r.method == method)
    if protocol:  # the same line the run's summary.md carries
        methods = sorted({r["method"] for r in rows})
        digest = "\n\n".join(line for line in (protocol_line(protocol, methods), digest) if line)
    if format == "json":
        print(summary_json(rows))
    elif format == "md":
        import tempfile

        from probebank.results.summary import write_summary_markdown
        with tempfile.TemporaryDirectory() as tmp:
            write_summary_markdown(rows, Path(tmp) / "s.md", footer=digest)
            print((Path(tmp) / "s.md").read_text())
    elif format == "table":
        console.print(render_table(rows, title=str(folder), wide=wide, columns=parse_csv(columns)))
        if digest:
            console.print(digest)
    else:
        raise ConfigError(f"unknown format '{format}'", field="--format", fix="use table, md or json")
