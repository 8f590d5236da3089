"""Result records on disk (JSON lines) and the summary table built from them."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from pydantic import ValidationError

from .errors import ConfigError
from .schema import ResultRecord

RECORDS_FILE = "records.jsonl"
SUMMARY_KS = (1, 16)


def append_records(path: Path, records: Iterable[ResultRecord]) -> int:
    n = 0
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(rec.model_dump_json() + "\n")
            n += 1
    return n


def read_records(folder: Path) -> list[ResultRecord]:
    """Every record of a results folder (records.jsonl, or any *.jsonl below it), validated."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.jsonl"))
    if not files:
        raise ConfigError(f"no result records (*.jsonl) in {folder}", field="DIR",
                          fix="pass the --out folder of a `probebank run`")
    records = []
    for path in files:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(ResultRecord.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ConfigError(f"invalid result record: {err['msg']}", file=path, line=line_no,
                                  field=".".join(str(p) for p in err["loc"]),
                                  fix="regenerate it with `probebank run` or correct the field") from None
    return records


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarise(records: list[ResultRecord], method: str | None = None) -> list[dict]:
    """Per (model, dataset, feature, site, method): the layer with the best k=1 F1 and its k=1/k=16/dense F1.

    F1 is averaged over seeds. The best layer is picked on test F1, as Gurnee et al. report it.
    """
    f1: dict[tuple, dict[int, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    dense: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    units: dict[tuple, dict[int, tuple[int, list[int]]]] = defaultdict(dict)  # layer -> (seed, units)
    for r in records:
        base = (r.provenance.model, r.provenance.dataset, r.feature, r.site)
        if r.method == "dense":
            dense[base][r.layer].append(r.metrics.f1)
            continue
        if method and r.method != method:
            continue
        key = base + (r.method,)
        f1[key][r.layer][r.k].append(r.metrics.f1)
        if r.k == 1 and (r.layer not in units[key] or r.seed < units[key][r.layer][0]):
            units[key][r.layer] = (r.seed, r.units)  # the first seed's neuron
    rows = []
    for key, by_layer in sorted(f1.items()):
        best_layer = max(by_layer, key=lambda layer: (_mean(by_layer[layer].get(1, [0.0])), -layer))
        at = by_layer[best_layer]
        d = dense[key[:4]].get(best_layer)
        rows.append({
            "model": key[0], "dataset": key[1], "feature": key[2], "site": key[3], "method": key[4],
            "best_layer": best_layer,
            "f1_k1": _mean(at[1]) if 1 in at else None,
            "f1_k16": _mean(at[16]) if 16 in at else None,
            "f1_dense": _mean(d) if d else None,
            "units_k1": units[key].get(best_layer, (0, []))[1],
            "layers": len(by_layer),
        })
    return rows


def render_summary(rows: list[dict], title: str = "probebank results") -> "object":
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col, just in (("dataset", "left"), ("feature", "left"), ("site", "left"), ("method", "left"),
                      ("best layer", "right"), ("F1 k=1", "right"), ("F1 k=16", "right"),
                      ("F1 dense", "right"), ("neuron (k=1)", "right")):
        table.add_column(col, justify=just)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        table.add_row(r["dataset"], r["feature"], r["site"], r["method"], str(r["best_layer"]),
                      fmt(r["f1_k1"]), fmt(r["f1_k16"]), fmt(r["f1_dense"]),
                      ",".join(str(u) for u in r["units_k1"]) or "-")
    return table


def write_summary_markdown(rows: list[dict], path: Path) -> None:
    head = "| model | dataset | feature | site | method | best layer | F1 k=1 | F1 k=16 | F1 dense | neuron (k=1) |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        cells = [r["model"], r["dataset"], r["feature"], r["site"], r["method"], str(r["best_layer"])]
        cells += ["-" if r[k] is None else f"{r[k]:.3f}" for k in ("f1_k1", "f1_k16", "f1_dense")]
        cells.append(",".join(map(str, r["units_k1"])) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=1)
