"""The `probebank` command: a thin shell over the Python API.

Each module of this package adds its commands to the one Typer app of `common`. Errors of
type ProbebankError become a one-paragraph message and exit code 2, here and only here;
`--debug` shows the traceback instead.
"""
from __future__ import annotations

import sys
import warnings
from typing import Optional

import typer

from ..errors import ProbebankError
# Each module registers its commands on import; this order is the order of `probebank --help`.
from . import data, running, bank, replicate, bases, report  # noqa: F401,I001
from .common import STATE, app, err_console

__all__ = ["app", "main", "entry"]


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app and map errors to exit codes (2 = invalid input)."""
    warnings.simplefilter("default")
    try:
        # standalone_mode=False makes click return (not raise) the code of a typer.Exit
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            return code
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


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
