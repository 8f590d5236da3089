"""probebank: a bank of probing datasets and the engine that runs k-sparse probes."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("probebank")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
