"""Commands that check and grow the bank: validate (quality gates), catalog, new."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from probebank.cli.common import IncludeOpt, app, console
from probebank.data.gates import VALIDATE_LIMIT
from probebank.errors import ConfigError, GateError, ProbebankError

if TYPE_CHECKING:
    from rich.table import Table

    from probebank.contracts import Builder
    from probebank.data.gates import GateReport
    from probebank.data.registry import CatalogEntry
    from probebank.extract.tokenizer import LoadedTokenizer

TokenizerOpt = typer.Option("smollm2-135m", "--tokenizer",
                            help="Model whose tokenizer the token-identity and position gates use (weights not loaded).")


def _gate_table(report: GateReport, title: str) -> Table:
    from rich.table import Table

    colour = {"pass": "green", "fail": "red", "waived": "yellow", "n/a": "dim"}
    table = Table(title=title, title_justify="left")
    for col in ("gate", "value", "threshold", "status", "note"):
        table.add_column(col, overflow="fold")
    for r in report.results:
        note = f"waiver: {r.reason}" if r.status == "waived" else r.detail
        table.add_row(r.gate, r.shown_value(), r.threshold, f"[{colour[r.status]}]{r.status}[/{colour[r.status]}]",
                      escape(note))  # notes quote data and card text: brackets are not markup
    return table


@app.command()
def validate(names: list[str] | None = typer.Argument(None), all_: bool = typer.Option(False, "--all"),
             limit: int | None = typer.Option(VALIDATE_LIMIT, help="Examples per class to build (0 = cards only)."),
             tokenizer: str = TokenizerOpt,
             include: list[Path] | None = IncludeOpt) -> None:
    """Check cards and registry; build each dataset (small) and run the quality gates on it.

    A failing gate is an error unless the card waives it; with --all every dataset is checked
    and all failures are listed at the end.
    """
    from probebank.data.registry import load_catalog
    from probebank.plugins import get_registered

    catalog = load_catalog(include or [])
    if not names and not all_:
        raise ConfigError("name datasets to validate, or pass --all", field="NAMES",
                          fix="e.g. `probebank validate language-udhr` or `probebank validate --all`")
    targets = catalog.names() if all_ else [catalog.get(n).card.name for n in names or []]
    builders = get_registered(include or []).builders
    failures: list[str] = []
    skipped: list[str] = []
    tok = None
    for name in targets:
        entry = catalog.entries[name]
        try:
            tok = _validate_one(entry, builders, limit, tokenizer, tok, include or [], failures, skipped)
        except ProbebankError as exc:  # keep going: report every dataset's problem at the end
            console.print(f"[red]error[/red] {name}: {exc.render()}", highlight=False)
            failures.append(f"{name}: {exc.render()}")
    if failures:
        # each line carries its own fix; the message keeps them all, after every dataset was checked
        raise GateError(f"{len(failures)} problem(s) in {len(targets)} dataset(s):\n  - " + "\n  - ".join(failures))
    note = f" ({len(skipped)} skipped: {', '.join(skipped)})" if skipped else ""
    console.print(f"[green]all {len(targets) - len(skipped)} dataset(s) valid[/green]{note}", highlight=False)


def _validate_one(entry: CatalogEntry, builders: dict[str, Builder], limit: int | None, tokenizer_name: str,
                  tok: LoadedTokenizer | None, include: list[Path], failures: list[str],
                  skipped: list[str]) -> LoadedTokenizer | None:
    """Validate one dataset; gate failures are appended to `failures`. Returns the (lazily loaded) tokenizer."""
    from probebank.data.examples import build_dataset
    from probebank.data.gates import failure_message, run_gates, unknown_waivers
    from probebank.data.scaffold import todo_fields
    from probebank.data.sources import SourceUnavailable
    from probebank.extract.tokenizer import load_tokenizer

    name = entry.card.name
    if entry.card.builder not in builders:
        raise ConfigError(f"dataset '{name}' names builder '{entry.card.builder}' which no plugin registers",
                          file=entry.card_path, field="builder", fix=f"use one of: {', '.join(sorted(builders))}")
    todos = todo_fields(entry.card)
    if todos:
        raise ConfigError(f"the card still has TODOs in {', '.join(todos)}", file=entry.card_path,
                          field=todos[0], fix="write them (see CONTRIBUTING.md)")
    for key in unknown_waivers(entry.card.waivers):
        console.print(f"[yellow]warning[/yellow] {name}: waiver '{key}' names no gate (gates: see docs/bank.md)")
    if not limit:
        console.print(f"[green]ok[/green] {name} (card)")
        return tok
    try:
        built = build_dataset(entry, builders=builders, limit=limit, include=include)
    except SourceUnavailable as exc:
        console.print(f"[yellow]{name}: {exc.message}[/yellow]", highlight=False)
        skipped.append(name)
        return tok
    if tok is None:
        tok = load_tokenizer(tokenizer_name)
    report = run_gates(built, tok.tokenizer, tok.revision)
    console.print(_gate_table(report, f"{name}: {len(built.dataset)} examples (limit {limit}/class), "
                                      f"hash {built.content_hash[:12]}"))
    for r in report.failures:
        msg = failure_message(name, r, entry.card_path)
        console.print(f"[red]fail[/red] {escape(msg)}", highlight=False)
        failures.append(msg)
    return tok


@app.command()
def catalog(out: Path | None = typer.Option(None, "--out", help="Where to write (default: DATASETS.md in the bank root)."),
            check: bool = typer.Option(False, "--check", help="Fail if the file is not what would be written."),
            limit: int | None = typer.Option(None, help="Examples per class to build (default: all)."),
            tokenizer: str = TokenizerOpt,
            include: list[Path] | None = IncludeOpt) -> None:
    """Write DATASETS.md: one row per dataset with its card facts and gate results (no model weights)."""
    from probebank.data.catalog import catalog_markdown
    from probebank.extract.tokenizer import load_tokenizer
    from probebank.paths import bank_root

    path = out or bank_root() / "DATASETS.md"
    tok = load_tokenizer(tokenizer)
    text = catalog_markdown(tok.tokenizer, tok.revision, include=include or [], limit=limit, tokenizer_name=tokenizer,
                            log=lambda msg: console.print(msg, highlight=False))
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            import difflib
            diff = "".join(list(difflib.unified_diff((current or "").splitlines(True), text.splitlines(True),
                                                     str(path), "would write", n=0))[:40])
            raise ConfigError(f"{path.name} is out of date" + ("" if current is not None else " (missing)")
                              + (f":\n{diff}" if diff else ""), file=path,
                              fix="run `probebank catalog` and commit the file")
        console.print(f"[green]{path.name} is up to date[/green]")
        return
    path.write_text(text, encoding="utf-8")
    console.print(f"wrote {path}")


@app.command()
def new(name: str, category: str = typer.Option(..., "--category", help="One of the 10 categories."),
        dest: Path | None = typer.Option(None, "--dest",
                                            help="An include folder (default: the bank's datasets/ and plugins)."),
        include: list[Path] | None = IncludeOpt) -> None:
    """Scaffold a dataset: a card with TODOs and a working example builder; prints the next steps."""
    from probebank.data.scaffold import scaffold

    made = scaffold(name, category, dest=dest, include=include or [])
    for path in made.files:
        console.print(f"created {path}")
    console.print("\n[bold]Next steps[/bold]")
    for i, step in enumerate(made.next_steps, 1):
        console.print(f"{i}. {step}", highlight=False, soft_wrap=True)
