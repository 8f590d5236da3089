"""The built wheel ships the bank (registry.yaml + datasets/), works without the checkout, and installs into a
fresh Python 3.12 venv whose dependencies come from the package index (never from the test venv)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "cpu.txt"
# Dependency venvs of the 3.12 test, one per dependency set (a torch install is GBs: made once, then reused)
VENVS = ROOT / "build" / "py312-venvs"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, capture_output=True, cwd=dist)
    found, = dist.glob("probebank-*.whl")
    return found


def test_wheel_ships_the_bank_and_runs_from_site_packages(tmp_path: Path, wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "probebank/_bank/registry.yaml" in names
    assert "probebank/_bank/datasets/language-udhr/card.yaml" in names
    assert "probebank_plugins/datasets/language.py" in names
    assert not any(n.startswith(("core/", "plugins/")) for n in names)  # no top-level `core`/`plugins`
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {k: v for k, v in os.environ.items() if k != "PROBEBANK_BANK"}
    env["PYTHONPATH"] = str(site)
    code = ("import json, probebank, probebank.paths as p; "
            "print(json.dumps([probebank.__file__, str(p.bank_root())]))")
    where = json.loads(subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
                                      capture_output=True, text=True).stdout)
    assert where[0].startswith(str(site)) and where[1] == str(site / "probebank" / "_bank")
    listing = subprocess.run([sys.executable, "-m", "probebank", "list", "--format", "json"], env=env, cwd=tmp_path,
                             capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    from probebank.data.registry import load_registry_file  # the checkout's registry: what the wheel must ship

    checkout = load_registry_file(Path(__file__).resolve().parents[1] / "registry.yaml")
    assert {d["category"] for d in data["datasets"]} == {e.card.category for e in checkout.entries.values()}
    assert len(data["datasets"]) == len(checkout.entries)


def test_wheel_metadata_states_ranges_and_extras(wheel: Path) -> None:
    meta = zipfile.ZipFile(wheel).read("probebank-0.1.0.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert "Requires-Python: <3.14,>=3.10" in meta
    assert "torch<3,>=2.3" in core and not any("==" in r for r in core)  # ranges: installs beside any torch 2.x
    assert not any(r.startswith(("numba", "highspy", "spacy", "ray")) for r in core)  # heavy pieces are extras
    extras = {line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Provides-Extra:")}
    assert {"bank", "exact", "ray", "test"} <= extras
    assert "torch==" in CONSTRAINTS.read_text()  # the pin this project tests with lives in the constraints file


# ----------------------------------------------------------------------------- a fresh Python 3.12


def _python312() -> str | None:
    """A Python 3.12 interpreter: pyenv's, else python3.12 on the PATH (a pyenv shim may not run: try it)."""
    candidates = []
    if shutil.which("pyenv"):
        prefix = subprocess.run(["pyenv", "prefix", "3.12"], capture_output=True, text=True)
        if prefix.returncode == 0 and prefix.stdout.strip():
            candidates.append(str(Path(prefix.stdout.strip().splitlines()[0]) / "bin" / "python"))
    if shutil.which("python3.12"):
        candidates.append("python3.12")
    for exe in candidates:
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"], capture_output=True,
                               text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return exe
    return None


PY312 = _python312()
# CI sets it (.ci/run): there a missing Python 3.12 fails the wheel test instead of skipping it.
REQUIRE_PY312 = os.environ.get("PROBEBANK_REQUIRE_PY312") == "1"


def _core_requirements(wheel: Path) -> list[str]:
    meta = zipfile.ZipFile(wheel).read("probebank-0.1.0.dist-info/METADATA").decode()
    return [line.split(":", 1)[1].strip() for line in meta.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _py312_venv(wheel: Path) -> Path:
    """A Python 3.12 venv with the wheel's core dependencies (no extras) installed from the index with the
    constraints file, kept under build/ per dependency set; then the wheel itself, --no-deps, once per wheel hash."""
    assert PY312 is not None
    requirements = _core_requirements(wheel)
    key = hashlib.sha256(json.dumps([PY312, requirements, CONSTRAINTS.read_text()]).encode()).hexdigest()[:16]
    venv = VENVS / key
    VENVS.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    with FileLock(str(VENVS / ".lock")):
        if not (venv / ".deps-installed").is_file():
            for old in VENVS.iterdir():  # one dependency set at a time: a torch venv is several GB
                if old.is_dir():
                    shutil.rmtree(old)
            _run([PY312, "-m", "venv", str(venv)], env=env)
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS),
                  *requirements], env=env)
            (venv / ".deps-installed").write_text("\n".join(requirements))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        marker = venv / ".wheel-sha256"
        if not marker.is_file() or marker.read_text() != digest:
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
                  str(wheel)], env=env)
            marker.write_text(digest)
    return venv


IMPORT_ALL = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    import probebank, probebank_plugins
    from probebank.errors import MissingExtra
    modules, failed = [], {}
    for pkg in (probebank, probebank_plugins):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            modules.append(info.name)
            try:
                importlib.import_module(info.name)
            except MissingExtra as exc:
                failed[info.name] = "MissingExtra: " + str(exc)
            except Exception as exc:
                failed[info.name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"python": sys.version_info[:2], "file": probebank.__file__, "modules": modules,
                      "failed": failed}))
""")


@pytest.mark.slow
@pytest.mark.skipif(PY312 is None and not REQUIRE_PY312,
                    reason="no Python 3.12 interpreter (pyenv's or python3.12 on the PATH)")
def test_wheel_installs_into_a_fresh_python312_venv(tmp_path: Path, wheel: Path, bank) -> None:
    """pip install of the wheel (--no-deps) into a fresh 3.12 venv whose core dependencies, no extras, came from
    the index with constraints/cpu.txt: every module imports (the exact search names its extra), `pip check`
    is clean, and `probebank run --model tiny:llama` probes end to end without any extra installed."""
    assert PY312 is not None, "PROBEBANK_REQUIRE_PY312=1 but no Python 3.12 interpreter was found (pyenv or PATH)"
    venv = _py312_venv(wheel)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PROBEBANK_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    _run([python, "-m", "pip", "check"], env=env, cwd=tmp_path)
    report = json.loads(_run([python, "-c", IMPORT_ALL], env=env, cwd=tmp_path).stdout)
    assert report["python"] == [3, 12] and report["file"].startswith(str(venv))
    assert len(report["modules"]) > 100
    # no extra is installed: only the numba-compiled exact search is missing, and it says how to get it
    assert set(report["failed"]) == {"probebank.probing.exact.squares"}, report["failed"]
    assert "pip install 'probebank[exact]'" in report["failed"]["probebank.probing.exact.squares"]
    out = tmp_path / "out"
    ran = _run([str(venv / "bin" / "probebank"), "run", "--model", "tiny:llama", "--datasets", "toy-words",
                "--include", str(bank()), "--out", str(out), "--seeds", "0", "--no-controls", "--no-progress"],
               env=env, cwd=tmp_path)
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert records and {r["provenance"]["model"] for r in records} == {"tiny-llama"}, ran.stdout
    milp = subprocess.run([str(venv / "bin" / "probebank"), "run", "--model", "tiny:llama", "--datasets",
                           "toy-words", "--include", str(bank()), "--out", str(tmp_path / "out2"), "--methods",
                           "milp", "--no-progress"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert milp.returncode == 2 and "pip install 'probebank[exact]'" in milp.stdout + milp.stderr
