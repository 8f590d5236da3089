"""Commands that compare and show results: leaderboard, submit --check, inspect."""
from __future__ import annotations

from .common import app  # noqa: F401  (commands are added here)
