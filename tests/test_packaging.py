"""The built wheel ships the bank (registry.yaml + datasets/) and works without the checkout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_bank_and_runs_from_site_packages(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("probebank-*.whl")
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
    assert {d["category"] for d in data["datasets"]} == {"bias", "safety", "syntax", "factual", "language", "code",
                                                         "position", "lexical"}
