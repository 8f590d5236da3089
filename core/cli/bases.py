"""Commands for unsupervised bases: bases (issue 6)."""
from __future__ import annotations

from .common import app  # noqa: F401  (commands are added here)
