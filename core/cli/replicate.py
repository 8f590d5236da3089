"""The replicate command: checks that the paper's findings hold on the default model."""
from __future__ import annotations

from .common import app  # noqa: F401  (commands are added here)
