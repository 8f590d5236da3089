"""Error types. Each names the file and field at fault and says how to fix it.

The CLI turns any ProbebankError into a one-paragraph message and exit code 2, in one place.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType


class ProbebankError(Exception):
    """Base class: invalid input or an unavailable resource, reported without a traceback."""

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None, fix: str | None = None) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [f"{where}: " if where else ""]
        if self.field:
            parts.append(f"field '{self.field}': ")
        parts.append(self.message.rstrip("."))
        parts.append(".")
        if self.fix:
            parts.append(f" Fix: {self.fix.rstrip('.')}.")
        return "".join(parts)


class CardError(ProbebankError):
    """A dataset card or registry file is malformed."""


class RegistryError(ProbebankError):
    """registry.yaml (or an included folder) is inconsistent."""


class SourceError(ProbebankError):
    """A pinned source cannot be fetched or does not match its pin."""


class BuildError(ProbebankError):
    """A dataset builder produced invalid examples."""


class ModelError(ProbebankError):
    """A model cannot be loaded or has no known hook sites."""


class PluginError(ProbebankError):
    """A plugin failed to load or registered something invalid."""


class ConfigError(ProbebankError):
    """A command-line option or run configuration is invalid."""


class GateError(ProbebankError):
    """A built dataset failed a quality gate that its card does not waive."""


class BasisError(ProbebankError):
    """A basis spec, its settings or its saved weights are invalid."""


class MissingExtra(ProbebankError):
    """An optional dependency is not installed: the message names the extra that brings it."""


def extra_fix(extra: str) -> str:
    return f"pip install 'probebank[{extra}]'"


def import_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import an optional dependency, or raise MissingExtra naming the probebank extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{needed_for} needs the Python package '{module}', which is not installed ({exc})",
                           fix=extra_fix(extra)) from None
