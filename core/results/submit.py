"""`probebank submit --check DIR`: is a results folder fit for the leaderboard?

A folder passes when every record validates against the schema, names a dataset of the
registry at the card's version, carries the content hash that rebuilding that dataset (at the
limit recorded in run.json) gives, and was made under the canonical protocol below. Every
problem becomes a Rejection naming the file, the record's line and the field.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from probebank.data.examples import build_dataset
from probebank.data.registry import load_catalog
from probebank.data.schema import SplitPolicy
from probebank.errors import ProbebankError
from probebank.plugins import get_registered
from probebank.probing.schema import DEFAULT_K_GRID, ProbeConfig, ResultRecord
from probebank.results.records import RECORDS_FILE


@dataclass(frozen=True)
class Protocol:
    """The leaderboard's canonical probing protocol. Split seed and aggregation come from each card."""

    k_grid: tuple[int, ...] = DEFAULT_K_GRID
    dense: bool = True
    required_seed: int = 0           # seed 0 = the card's own split seed; extra seeds are welcome
    test_size: float = SplitPolicy().test_size  # the default; each card's own split is what counts
    C: float = ProbeConfig().C
    balance: bool = ProbeConfig().balance

    def describe(self) -> str:
        return (f"k grid {list(self.k_grid)} (every k below the layer width), a dense baseline, seed "
                f"{self.required_seed} among the seeds, the card's split (test size {self.test_size}, its seed) "
                f"and aggregation, one-vs-rest balanced={self.balance}, logistic regression C={self.C} "
                f"(regression cards: ridge, alpha 1/C)")


CANONICAL = Protocol()


@dataclass
class Rejection:
    file: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.reason}"


@dataclass
class SubmitReport:
    folder: Path
    n_records: int = 0
    datasets: dict[str, str] = field(default_factory=dict)   # dataset -> content hash checked
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejections and self.n_records > 0


HashFn = Callable[[str, "int | None"], tuple[str, str]]  # (dataset, limit) -> (version, content hash)


def registry_hashes(include: Sequence[Path] = (), rebuild: bool = False) -> HashFn:
    """(card version, content hash) of a registry dataset built at a limit (from the build cache
    unless rebuild: a cached build is keyed by the card, the limit and the builder's code)."""

    catalog = load_catalog(list(include))
    builders = get_registered(list(include)).builders
    memo: dict[tuple[str, int | None], tuple[str, str]] = {}

    def get(name: str, limit: int | None) -> tuple[str, str]:
        if (name, limit) not in memo:
            entry = catalog.get(name)
            built = build_dataset(entry, builders=builders, limit=limit, include=list(include),
                                  force=rebuild, progress=False)
            memo[(name, limit)] = (entry.card.version, built.content_hash)
        return memo[(name, limit)]
    return get


def _card_aggregations(names: set[str], include: Sequence[Path]) -> dict[str, str]:

    catalog = load_catalog(list(include))
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = catalog.get(name).card.aggregation
        except ProbebankError:
            pass  # an unknown dataset is rejected by the hash check, with its own reason
    return out


def _check_run_json(folder: Path, protocol: Protocol, report: SubmitReport) -> dict[str, Any] | None:
    path = folder / "run.json"
    if not path.is_file():
        report.rejections.append(Rejection("run.json", None, "run.json",
                                           "missing: it records the limit the datasets were built at"))
        return None
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        report.rejections.append(Rejection("run.json", None, "run.json", f"not valid JSON ({exc})"))
        return None
    config = run.get("config", {})
    if "k_grid" in config and sorted(config["k_grid"]) != sorted(protocol.k_grid):
        report.rejections.append(Rejection("run.json", None, "config.k_grid",
                                           f"{config['k_grid']} differs from the canonical {list(protocol.k_grid)}"))
    if config.get("dense") is False:
        report.rejections.append(Rejection("run.json", None, "config.dense", "the canonical protocol needs the dense baseline"))
    if "seeds" in config and protocol.required_seed not in config["seeds"]:
        report.rejections.append(Rejection("run.json", None, "config.seeds",
                                           f"{config['seeds']} lacks the canonical seed {protocol.required_seed}"))
    return run


def check_folder(folder: Path, *, protocol: Protocol = CANONICAL, include: Sequence[Path] = (),
                 hashes: HashFn | None = None, rebuild: bool = False) -> SubmitReport:
    folder = Path(folder)
    report = SubmitReport(folder)
    records_path = folder / RECORDS_FILE
    if not records_path.is_file():
        report.rejections.append(Rejection(RECORDS_FILE, None, RECORDS_FILE,
                                           f"no {RECORDS_FILE} in {folder} (pass the --out folder of `probebank run`)"))
        return report
    run = _check_run_json(folder, protocol, report)
    limit = run.get("limit") if run else None

    records: list[tuple[int, ResultRecord]] = []
    for line_no, line in enumerate(records_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((line_no, ResultRecord.model_validate_json(line)))
        except ValidationError as exc:
            for err in exc.errors()[:3]:
                report.rejections.append(Rejection(RECORDS_FILE, line_no, ".".join(str(p) for p in err["loc"]) or "-",
                                                   f"schema: {err['msg']}"))
    report.n_records = len(records)
    if not records:
        if not report.rejections:
            report.rejections.append(Rejection(RECORDS_FILE, None, RECORDS_FILE, "no records"))
        return report

    hashes = hashes or registry_hashes(include, rebuild)
    expected: dict[str, tuple[str, str] | str] = {}
    for name in sorted({r.provenance.dataset for _, r in records}):
        try:
            expected[name] = hashes(name, limit)
            report.datasets[name] = expected[name][1]
        except ProbebankError as exc:  # unknown dataset, failing build or source: say why, per record below
            expected[name] = exc.message
    aggregations = _card_aggregations(set(expected), include)

    groups: dict[tuple, list[tuple[int, ResultRecord]]] = defaultdict(list)
    widths: dict[tuple, int] = {}
    grid = set(protocol.k_grid)
    for line_no, r in records:
        p = r.provenance
        reject = lambda fld, why, ln=line_no: report.rejections.append(Rejection(RECORDS_FILE, ln, fld, why))  # noqa: E731
        exp = expected[p.dataset]
        if isinstance(exp, str):
            reject("provenance.dataset", f"dataset '{p.dataset}' cannot be rebuilt from the registry: {exp}")
        else:
            version, digest = exp
            if p.dataset_version != version:
                reject("provenance.dataset_version",
                       f"{p.dataset} is at version {version} in the registry, the record says {p.dataset_version}")
            elif p.dataset_hash != digest:
                reject("provenance.dataset_hash",
                       f"{p.dataset} v{version} built at limit {limit} has content hash {digest[:16]}..., "
                       f"the record says {p.dataset_hash[:16]}...")
        if p.dataset in aggregations and r.aggregation != aggregations[p.dataset]:
            reject("aggregation", f"'{r.aggregation}' but the card of {p.dataset} says '{aggregations[p.dataset]}'")
        group = (p.model, p.model_revision, p.dataset, r.feature, r.site, r.layer, r.basis, r.seed)
        if r.method == "dense":
            widths[group] = r.k
            continue
        if protocol.balance and not r.regression and r.n_train - r.n_train_pos > r.n_train_pos:  # one-vs-rest only
            reject("n_train", f"{r.n_train - r.n_train_pos} negatives for {r.n_train_pos} positives: "
                              "the canonical protocol balances one-vs-rest negatives to the positives' count")
        if r.method == "single_unit":  # the best-single-unit signal (one record per probe group), not a k sweep
            continue
        if r.k not in grid:
            reject("k", f"k={r.k} is not in the canonical k grid {list(protocol.k_grid)}")
        groups[group + (r.method,)].append((line_no, r))

    # Each probed (feature, site, layer, basis, method, seed) must cover the canonical grid, below the width.
    seeds_by_dataset: dict[tuple, set[int]] = defaultdict(set)
    for key, members in groups.items():
        seeds_by_dataset[key[:3]].add(key[7])
        width = widths.get(key[:8])
        first_line = min(ln for ln, _ in members)
        if width is None and protocol.dense:
            report.rejections.append(Rejection(RECORDS_FILE, first_line, "method",
                                               f"no dense baseline for {key[2]}/{key[3]} {key[4]} layer {key[5]} "
                                               f"seed {key[7]}"))
        ks = {r.k for _, r in members}
        want = {k for k in protocol.k_grid if width is None or k < width}
        if ks != want:
            missing, extra = sorted(want - ks), sorted(ks - want)
            report.rejections.append(Rejection(
                RECORDS_FILE, first_line, "k",
                f"the k grid of {key[2]}/{key[3]} {key[4]} layer {key[5]} {key[8]} seed {key[7]} is {sorted(ks)}; "
                f"canonical: {sorted(want)}" + (f"; missing {missing}" if missing else "")
                + (f"; not canonical {extra}" if extra else "")))
    for key, seeds in seeds_by_dataset.items():
        if protocol.required_seed not in seeds:
            report.rejections.append(Rejection(RECORDS_FILE, None, "seed",
                                               f"{key[0]} on {key[2]}: no record with the canonical seed "
                                               f"{protocol.required_seed} (seeds {sorted(seeds)})"))
    report.rejections.sort(key=lambda j: (j.line or 0, j.field))
    return report
