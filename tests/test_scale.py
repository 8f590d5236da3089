"""Work units and executors (probebank.scale): the same records whoever runs the units, resumption
from finished units, a worker killed mid-run, a driver killed mid-run, and a local Ray.

Records are compared field by field apart from `wall_time_s` (the only field that depends on who ran
a probe and when).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write

from probebank.run import RunConfig, run

# A test plugin: mean_diff under another name, whose first fit in a worker process kills that worker
# (once: it leaves a marker), or sleeps before each fit (so a test can kill the driver mid-run).
FRAGILE_PLUGIN = '''
import os, signal, time, multiprocessing
from pathlib import Path
from probebank.hookspecs import hookimpl
from probebank.probing.selection import MeanDiff

HERE = Path(__file__).resolve().parent


class DiesOnce(MeanDiff):
    def fit(self, X, y):
        marker = HERE / "died.marker"
        if multiprocessing.parent_process() is not None and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y)


class Slow(MeanDiff):
    def fit(self, X, y):
        time.sleep(0.05)
        return super().fit(X, y)


@hookimpl
def register_methods(register):
    register("dies_once", DiesOnce)
    register("slow", Slow)
'''


def _records(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("wall_time_s")
    return rows


def _sealed_units(cache: Path) -> list[Path]:
    from probebank.cache.checksums import SEAL

    return [u for u in (cache / "units").glob("*") if (u / SEAL).is_file()]


def _bank(bank) -> Path:
    folder = bank()
    write(folder / "fragile_plugin.py", FRAGILE_PLUGIN)
    return folder


def _config(folder: Path, out: Path, **kw) -> RunConfig:
    kw.setdefault("methods", ["mean_diff", "f_stat"])
    return RunConfig(model="tiny:llama", datasets=["toy-words"], include=[folder], out=out, progress=False, **kw)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function that points PROBEBANK_CACHE at a new empty folder (so nothing is reused)."""
    def make(name: str) -> Path:
        root = tmp_path / f"cache-{name}"
        monkeypatch.setenv("PROBEBANK_CACHE", str(root))
        return root
    return make


def test_two_workers_write_the_records_of_one(bank, tmp_path: Path, fresh_cache) -> None:
    folder = _bank(bank)
    fresh_cache("one")
    run(_config(folder, tmp_path / "one", workers=1), log=lambda m: None)
    root = fresh_cache("two")
    logs: list[str] = []
    run(_config(folder, tmp_path / "two", workers=2), log=logs.append)
    assert _records(tmp_path / "two") == _records(tmp_path / "one")
    assert len(list((root / "units").iterdir())) == 4  # tiny:llama: 4 layers x 1 site, one unit each
    assert any("probe results computed" in m for m in logs)


def test_a_rerun_probes_only_the_units_that_are_missing(bank, tmp_path: Path, fresh_cache) -> None:
    folder = _bank(bank)
    root = fresh_cache("resume")
    run(_config(folder, tmp_path / "a", workers=2), log=lambda m: None)
    import shutil

    shutil.rmtree(root / "records")  # the assembled records gone, and two of the four units with them
    units = sorted((root / "units").iterdir())
    for unit in units[:2]:
        shutil.rmtree(unit)
    logs: list[str] = []
    run(_config(folder, tmp_path / "b", workers=2), log=logs.append)
    assert any("probe results computed, 2 of 4 layers reused" in m for m in logs), logs
    assert _records(tmp_path / "b") == _records(tmp_path / "a")


def test_a_killed_worker_is_replaced_and_its_units_run_again(bank, tmp_path: Path, fresh_cache) -> None:
    folder = _bank(bank)
    fresh_cache("steady")
    run(_config(folder, tmp_path / "steady", methods=["dies_once"], workers=1), log=lambda m: None)
    assert not (folder / "died.marker").exists()  # the driver itself never dies
    fresh_cache("killed")
    logs: list[str] = []
    run(_config(folder, tmp_path / "killed", methods=["dies_once"], workers=2), log=logs.append)
    assert (folder / "died.marker").exists()  # a worker was killed with SIGKILL
    assert any("run again after their worker was lost" in m for m in logs), logs
    assert _records(tmp_path / "killed") == _records(tmp_path / "steady")


def test_a_killed_driver_loses_nothing_a_rerun_cannot_finish(bank, tmp_path: Path, fresh_cache) -> None:
    folder = _bank(bank)
    fresh_cache("reference")
    run(_config(folder, tmp_path / "reference", methods=["slow"], seeds=[0, 1, 2, 3]), log=lambda m: None)
    root = fresh_cache("killed")
    cmd = [sys.executable, "-m", "probebank", "run", "--model", "tiny:llama", "--datasets", "toy-words",
           "--include", str(folder), "--methods", "slow", "--seeds", "0,1,2,3", "--workers", "2",
           "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _sealed_units(root):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its forkserver and its workers, all at once
    proc.wait()
    assert 1 <= len(_sealed_units(root)) < 4, "the kill came before the first unit or after the last"
    assert not (tmp_path / "out").exists()  # the results folder is swapped in only at the end
    rerun = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "layers reused" in rerun.stderr, rerun.stderr
    assert _records(tmp_path / "out") == _records(tmp_path / "reference")


def test_ray_tasks_write_the_records_of_the_local_executor(bank, tmp_path: Path, fresh_cache) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra (make setup installs it)")
    folder = _bank(bank)
    fresh_cache("local")
    run(_config(folder, tmp_path / "local", workers=2), log=lambda m: None)
    fresh_cache("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    try:
        run(_config(folder, tmp_path / "ray", executor="ray"), log=lambda m: None)
    finally:
        ray.shutdown()
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")


def test_executor_settings_are_checked_before_anything_loads(bank, tmp_path: Path, capsys) -> None:
    from probebank.cli import main

    base = ["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(bank()),
            "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*base, "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main([*base, "--executor", "dask"]) == 2
    assert "--executor" in capsys.readouterr().err
    assert main([*base, "--ray-address", "auto"]) == 2
    assert "add --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
