"""Every schema `probebank schema` prints, by name.
"""
from __future__ import annotations

from pydantic import BaseModel

from probebank.bases.schema import BasisRecord
from probebank.causal.record import CausalRecord
from probebank.data.schema import DatasetCard, Registry, RegistryEntry, Suite
from probebank.extract.plan import ExtractionPlan
from probebank.probing.schema import Controls, ProbeConfig, ResultRecord, SolverReport

SCHEMAS: dict[str, type[BaseModel]] = {
    "DatasetCard": DatasetCard,
    "Registry": Registry,
    "RegistryEntry": RegistryEntry,
    "Suite": Suite,
    "ExtractionPlan": ExtractionPlan,
    "ProbeConfig": ProbeConfig,
    "ResultRecord": ResultRecord,
    "Controls": Controls,
    "SolverReport": SolverReport,
}


SCHEMAS["BasisRecord"] = BasisRecord
SCHEMAS["CausalRecord"] = CausalRecord
