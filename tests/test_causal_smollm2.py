"""A causal check on the real default model: the top language-udhr neuron of layer 12 against 50 random units."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "probebank", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PROBEBANK_CACHE": os.environ["PROBEBANK_CACHE"]}, timeout=1800)


def test_ablating_a_top_language_neuron_of_smollm2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("run", "--datasets", "language-udhr", "--layers", "12,18", "--limit", "40", "--seeds", "0",
                "--methods", "mean_diff", "--out", str(out), "--no-progress", cwd=tmp_path)  # the paper's ranking
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    top = max((r for r in records if r["k"] == 1 and r["method"] == "mean_diff" and r["layer"] == 12),
              key=lambda r: (r["metrics"]["f1"], r["feature"]))
    unit, feature = top["units"][0], top["feature"]
    check = _cli("inspect", "smollm2-135m", "12", str(unit), "--results", str(out), "--datasets", "language-udhr",
                 "--feature", f"language-udhr/{feature}", "--ablate", "--draws", "50", "--texts", "8",
                 "--max-tokens", "32", "--top", "1", "--no-progress", cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "loss effect" in check.stdout and "p = " in check.stdout
    (rec,) = [json.loads(line) for line in (out / "causal.jsonl").read_text().splitlines()]
    assert rec["units"] == [unit] and rec["feature"] == feature and rec["provenance"]["model"] == "smollm2-135m"
    assert rec["n_feature_texts"] == rec["n_control_texts"] == 8
    loss = rec["loss"]
    assert loss["draws"] == 50 and 1 / 51 <= loss["p_value"] <= 1 and len(loss["values"]) == 50
    assert loss["sd"] > 0  # random matched units do move the loss a little
    # a real model: the clean next-token loss of natural text is far below uniform guessing (log 49152 = 10.8)
    assert 0.5 < rec["clean_loss_feature"] < 8 and 0.5 < rec["clean_loss_control"] < 8
    assert 0.2 < rec["variance_ratio"][1] < 5  # matched: the median null unit varies about as much
    steering = rec["steering"]
    assert steering is not None and steering["probe_layer"] == 18
    assert steering["probe_f1_reproduced"] == pytest.approx(steering["probe_f1"], abs=1e-9)
