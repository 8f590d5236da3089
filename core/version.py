"""The installed version of probebank (recorded in every result's provenance)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probebank")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+local"
