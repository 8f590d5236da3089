"""The `probebank` command: a thin shell over the Python API.

Each module of this package adds its commands to the one Typer app of `common`. Errors of
type ProbebankError become a one-paragraph message and exit code 2, here and only here;
`--debug` shows the traceback instead.
"""
from __future__ import annotations

import difflib
import importlib
import re
import sys
import warnings

import typer
from rich.markup import escape

# Each module registers its commands on import; this order is the order of `probebank --help`.
from probebank.cli import bank, bases, cache, data, replicate, report, running  # noqa: F401
from probebank.cli.common import STATE, app, err_console
from probebank.errors import ProbebankError

__all__ = ["app", "main", "entry"]


def _usage_errors() -> tuple[type[BaseException], ...]:
    """click's exception classes: typer may vendor its own copy of click, or use the installed one."""
    kinds: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            kinds.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


def _did_you_mean(exc: BaseException) -> str | None:
    """A did-you-mean for an unknown command (click suggests options itself)."""
    message = str(getattr(exc, "message", ""))
    match = re.match(r"No such command '(.+)'", message)
    if not match or "Did you mean" in message:
        return None
    names = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    close = difflib.get_close_matches(match.group(1), names, n=3, cutoff=0.6)
    return f"Did you mean {' or '.join(repr(c) for c in close)}?" if close else f"Commands: {', '.join(names)}."


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map errors to exit codes (2 = invalid input or usage)."""
    warnings.simplefilter("default")
    try:
        # standalone_mode=False makes click return (not raise) the code of a typer.Exit
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except ProbebankError as exc:
        if STATE["debug"]:
            raise
        # messages quote user data (card text, example texts): print their brackets, never parse them as markup
        err_console.print(f"[red]error:[/red] {escape(exc.render())}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted: finished shards and records are kept; run again to resume.")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 1
    except _usage_errors() as exc:  # unknown command or option, missing argument: one line, exit 2
        exc.show()  # type: ignore[attr-defined]
        hint = _did_you_mean(exc)
        if hint:
            err_console.print(hint, highlight=False)
        return int(getattr(exc, "exit_code", 2))
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
