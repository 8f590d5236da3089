"""Unsupervised bases. v1 ships the identity basis (the neurons themselves)."""
from __future__ import annotations

import numpy as np

from probebank.hookspecs import hookimpl


class IdentityBasis:
    """Units are the model's own neurons: encode is the identity."""

    name = "identity"

    def fit(self, activations: np.ndarray) -> "IdentityBasis":
        return self

    def encode(self, activations: np.ndarray) -> np.ndarray:
        return activations

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes


@hookimpl
def register_bases(register):
    register("identity", IdentityBasis)
