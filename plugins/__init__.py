"""First-party plugins. They register through the same hooks as any third-party plugin."""

BUILTIN_MODULES = [
    "probebank_plugins.sources",
    "probebank_plugins.models",
    "probebank_plugins.gemma",
    "probebank_plugins.methods",
    "probebank_plugins.bases",
    "probebank_plugins.datasets",
]
