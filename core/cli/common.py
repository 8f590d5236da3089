"""Shared pieces of the `probebank` command: the Typer app, consoles and option parsers.

Errors of type ProbebankError become a one-paragraph message and exit code 2, here and only
here; `--debug` shows the traceback instead.
"""
from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from probebank.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="probebank: probing datasets and k-sparse probes on transformer activations.")
# emoji=False: model names such as "tiny:llama" must print as written; wide tables when piped
# piped output is 160 wide unless COLUMNS says otherwise (rich reads COLUMNS itself)
console = Console(emoji=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err_console = Console(stderr=True, emoji=False)
STATE = {"debug": False}

IncludeOpt = typer.Option(None, "--include", help="Folder of extra cards and plugin modules (repeatable).")


def parse_csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_ints(value: str | None, option: str) -> list[int] | None:
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


def short_text(text: str, width: int = 40) -> str:
    first = text.split(";")[0].split(". ")[0].strip()
    return first if len(first) <= width else first[: width - 1] + "…"


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short messages.")) -> None:
    STATE["debug"] = debug
