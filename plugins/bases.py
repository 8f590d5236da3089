"""Built-in unsupervised bases: identity, random rotation, PCA, ICA, sparse dictionary, TopK SAE,
and SAE weights loaded from a local folder (probebank.bases.builtin).

Each is a scikit-learn transformer class (probebank.bases.base.BasisEstimator): its settings are
constructor keywords (all JSON-able, so they enter the content key of a fitted basis), `fit(X)`
learns from a layer's activations, `transform` gives codes. Defaults are sized for a 2-core CPU.
Importing this module stays cheap: scikit-learn loads when the hook runs.
"""
from __future__ import annotations

from probebank.contracts import RegisterBasis
from probebank.hookspecs import hookimpl


@hookimpl
def register_bases(register: RegisterBasis) -> None:
    from probebank.bases.builtin import BUILTIN_BASES  # scikit-learn loads on registration, not on import

    for name, cls in BUILTIN_BASES.items():
        register(name, cls)
