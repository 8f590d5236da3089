"""The pre-registered findings file of `probebank replicate`: its schema, its lock, and their check.

findings.yaml fixes every dataset, size, layer rule, protocol and threshold before a run. Beside it,
findings.yaml.lock maps each version of the file to the sha256 of its content (the parsed YAML as
canonical JSON, so comments and layout do not count). A file whose content does not hash to what
the lock records for its version has been edited without a new version, and is refused; a version
the lock does not know is refused until it is registered (`register`), which adds a version and
never rewrites one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from probebank.data.schema import Strict
from probebank.errors import ConfigError
from probebank.hashing import json_digest

PACKAGED = Path(__file__).with_name("findings.yaml")


class Protocol(Strict):
    method: str = Field(description="Selection method that ranks the units.")
    layer_pick: Literal["validation", "test"] = Field(description="How each feature's best layer is chosen.")


class LanguagePart(Strict):
    dataset: str
    limit: int = Field(ge=10, description="Texts per language.")
    shuffle_seed: int


class CategoryPart(Strict):
    limit: int = Field(ge=4, description="Examples per class.")
    datasets: list[str] = Field(min_length=1)


class CausalPart(Strict):
    languages: int = Field(ge=1)
    mode: Literal["mean", "zero", "resample"]
    draws: int = Field(ge=1)
    texts: int = Field(ge=2)
    max_tokens: int = Field(ge=2)


class FindingSpec(Strict):
    claim: str
    statistic: str
    passes: dict[str, float | bool] = Field(alias="pass", description="The thresholds the figures are held to.")


FINDING_NAMES = ("single_neurons", "neuron_basis", "neuron_basis_by_category", "grows_with_k", "early_distributed",
                 "selectivity", "causal")


class FindingsFile(Strict):
    version: int = Field(ge=1)
    registered: str
    protocols: dict[str, Protocol] = Field(min_length=1)
    layers: Literal["every_third_and_last"]
    seeds: list[int] = Field(min_length=1)
    k_grid: list[int] = Field(min_length=2)
    language: LanguagePart
    categories: CategoryPart
    causal: CausalPart
    findings: dict[str, FindingSpec]

    def threshold(self, finding: str, name: str) -> float:
        return float(self.findings[finding].passes[name])


class Preregistered(Strict):
    """A findings file that passed its lock: the spec, where it came from and its content hash."""

    path: Path
    sha256: str
    spec: FindingsFile


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _read_yaml(path: Path, what: str) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", field="--findings",
                          fix="pass the path of a findings file (default: the one shipped with probebank)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}", field=str(path), fix="fix the YAML syntax") from None


def content_hash(raw: object) -> str:
    """sha256 of the parsed file as canonical JSON: comments and layout do not change it."""
    return json_digest(raw, length=64)


def _read_lock(path: Path) -> dict[int, str]:
    lock = lock_path(path)
    if not lock.exists():
        return {}
    raw = _read_yaml(lock, "the findings lock")
    if not isinstance(raw, dict) or not all(isinstance(k, int) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"{lock} must map each version (an integer) to a sha256 string", field=str(lock),
                          fix="restore it from git; it is written by `probebank replicate --register`")
    return dict(raw)


def _parse(path: Path) -> tuple[FindingsFile, str]:
    raw = _read_yaml(path, "the findings file")
    try:
        spec = FindingsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {first['msg']}", field=where,
                          fix="see core/results/findings.yaml for the expected fields") from None
    unknown, missing = sorted(set(spec.findings) - set(FINDING_NAMES)), sorted(set(FINDING_NAMES) - set(spec.findings))
    if unknown or missing:
        raise ConfigError(f"{path}: {'unknown finding(s) ' + str(unknown) if unknown else ''}"
                          f"{'; ' if unknown and missing else ''}{'missing finding(s) ' + str(missing) if missing else ''}",
                          field="findings", fix=f"list exactly the findings replicate judges: {', '.join(FINDING_NAMES)}")
    return spec, content_hash(raw)


def load_findings(path: Path | None = None) -> Preregistered:
    """The findings file at `path` (default: the packaged one), refused unless its lock records this content."""
    path = Path(path) if path is not None else PACKAGED
    spec, digest = _parse(path)
    recorded = _read_lock(path).get(spec.version)
    if recorded is None:
        raise ConfigError(f"{path}: version {spec.version} is not registered in {lock_path(path).name}",
                          field="version", fix="register it before any run: `probebank replicate --register "
                                               f"--findings {path}` (then commit both files)")
    if recorded != digest:
        raise ConfigError(f"{path}: its content changed after version {spec.version} was registered "
                          f"(sha256 {digest[:12]}..., registered {recorded[:12]}...): a threshold or setting was "
                          "edited without a new version", field="version",
                          fix=f"restore the file, or bump `version` to {spec.version + 1} and register it with "
                              "`probebank replicate --register`")
    return Preregistered(path=path, sha256=digest, spec=spec)


def register(path: Path | None = None) -> tuple[int, str, bool]:
    """Record the file's version and content hash in its lock; returns (version, hash, whether it was new).

    A version already registered with another hash is refused: a registered version is never rewritten."""
    path = Path(path) if path is not None else PACKAGED
    spec, digest = _parse(path)
    lock = _read_lock(path)
    known = lock.get(spec.version)
    if known == digest:
        return spec.version, digest, False
    if known is not None:
        raise ConfigError(f"{path}: version {spec.version} is already registered with another content",
                          field="version", fix=f"bump `version` to {max(lock) + 1}, then register again")
    if lock and spec.version < max(lock):
        raise ConfigError(f"{path}: version {spec.version} is older than the newest registered ({max(lock)})",
                          field="version", fix=f"use version {max(lock) + 1}")
    lock[spec.version] = digest
    header = "# written by `probebank replicate --register`: version -> sha256 of the findings file's content\n"
    lock_path(path).write_text(header + "".join(f"{v}: {json.dumps(h)}\n" for v, h in sorted(lock.items())),
                               encoding="utf-8")
    return spec.version, digest, True
