"""Many processes on one cache: four runs at once all succeed, with identical, duplicate-free records.

Each run is a separate Python process (the way users and clusters start them), on the tiny random
model, sharing one PROBEBANK_CACHE; two of them also share one --out.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from probebank.results.records import RECORDS_FILE


def _command(bank: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "probebank", "run", "--model", "tiny:llama", "--datasets", "toy-words",
            "--include", str(bank), "--out", str(out), "--no-progress", "--seeds", "0,1"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PROBEBANK_CACHE": str(cache), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _identity(line: str) -> tuple:
    r = json.loads(line)
    return (r["feature"], r["site"], r["layer"], r["basis"], r["method"], r["k"], r["seed"])


def test_four_concurrent_runs_share_one_cache(bank, tmp_path: Path) -> None:
    folder, cache = bank(), tmp_path / "shared-cache"
    outs = [tmp_path / "out-a", tmp_path / "out-b", tmp_path / "out-same", tmp_path / "out-same"]
    procs = [subprocess.Popen(_command(folder, out), env=_env(cache), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for out in outs]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, f"a concurrent run failed:\n{stdout}\n{stderr}"
    texts = {out: (out / RECORDS_FILE).read_text() for out in outs}
    assert len(set(texts.values())) == 1  # computed once (under the probe's lock), reused by the other three
    lines = texts[outs[0]].splitlines()
    assert lines and len({_identity(line) for line in lines}) == len(lines)  # no record twice
    entries = list((cache / "records").iterdir())
    assert len(entries) == 1 and (entries[0] / RECORDS_FILE).read_text() == texts[outs[0]]
    assert len([p for p in (cache / "store").iterdir() if p.is_dir()]) == 1
    leftovers = [p for p in cache.rglob("*") if ".tmp-" in p.name] + [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


SLOW_PLUGIN = '''
import os, time
from probebank.hookspecs import hookimpl

WORDS = ["apple", "Berlin", "river", "Paris", "stone", "London", "cloud", "Tokyo", "grass", "Lima",
         "table", "Oslo", "paper", "Rome", "water", "Cairo"]


def build(ctx):
    for w in WORDS:
        text = f"we saw {w} today"
        yield {"text": text, "targets": [(7, 7 + len(w))],
               "label": "capitalised" if w[0].isupper() else "lower", "group": w}
    if os.environ.get("PROBEBANK_TEST_HANG"):
        open(os.environ["PROBEBANK_TEST_HANG"], "w").close()
        time.sleep(600)


@hookimpl
def register_datasets(register):
    register("toy-words", build)
'''


def test_a_killed_run_leaves_the_earlier_results_folder_exactly_as_it_was(bank, tmp_path: Path) -> None:
    folder, cache, out = bank(plugin=SLOW_PLUGIN), tmp_path / "cache", tmp_path / "results"
    first = subprocess.run(_command(folder, out), env=_env(cache), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before[Path(RECORDS_FILE)]

    marker = tmp_path / "hanging"
    env = {**_env(tmp_path / "other-cache"), "PROBEBANK_TEST_HANG": str(marker)}  # a cold cache: it must build
    proc = subprocess.Popen(_command(folder, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the second run never reached its dataset build"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.tmp-")]
    assert len(staging) == 1  # the killed run's staging folder, beside (never inside) the results

    again = subprocess.run(_command(folder, out), env=_env(cache), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (out / RECORDS_FILE).read_bytes() == before[Path(RECORDS_FILE)]  # every result reused
    assert [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.tmp-")] == []  # cleared
