"""Built-in unsupervised bases: identity, random rotation, PCA, ICA, sparse dictionary, TopK SAE,
and SAE weights loaded from a local folder. See probebank.bases for the protocol.

Every factory takes the layer width and a seed, plus its own keyword settings (all JSON-able, so
they enter the content key of a fitted basis). Defaults are sized for a 2-core CPU.
"""
from __future__ import annotations

from probebank.bases.builtin import BUILTIN_BASES
from probebank.hookspecs import hookimpl


@hookimpl
def register_bases(register):
    for name, cls in BUILTIN_BASES.items():
        register(name, cls)
