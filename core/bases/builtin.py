"""The built-in bases by name (registered by the first-party bases plugin).
"""
from __future__ import annotations

from probebank.bases.base import BasisEstimator
from probebank.bases.dictionary import DictionaryBasis
from probebank.bases.linear import ICABasis, IdentityBasis, PCABasis, RandomRotationBasis
from probebank.bases.sae_basis import SAEFolderBasis, TopKSAEBasis

BUILTIN_BASES: dict[str, type[BasisEstimator]] = {
    cls.name: cls for cls in (IdentityBasis, RandomRotationBasis, PCABasis, ICABasis, DictionaryBasis, TopKSAEBasis,
                              SAEFolderBasis)}
