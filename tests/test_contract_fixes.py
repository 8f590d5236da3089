"""Settings that are accepted are honoured, and bad ones are refused early (issue "One house").

Each test here failed on the code before the move into sub-packages: a model provider from
--include was never used, `--batch-size 0` emptied the results folder before dying with a
traceback, usage errors printed tracebacks with exit 1, method settings could not be given on the
command line, ProbeConfig.test_size was accepted and ignored, and cache keys hashed whole modules.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probebank.cli import main

MODEL_PLUGIN = '''
from probebank.hookspecs import hookimpl


class SmallLlama:
    describe = "a tiny llama registered by an --include plugin"

    def load(self, spec, *, dtype="float32"):
        from probebank.extract.tiny import tiny_model

        loaded = tiny_model("llama", seed=7, n_layers=2)
        loaded.name = "included-llama"
        return loaded


@hookimpl
def register_models(register):
    register("included-llama", SmallLlama())
'''


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_model_provider_from_include_is_used_by_run(bank, tmp_path: Path, capsys) -> None:
    folder = bank()
    (folder / "small_model.py").write_text(MODEL_PLUGIN)
    code, out = _run(capsys, "run", "--model", "included-llama", "--datasets", "toy-words", "--include", str(folder),
                     "--seeds", "0", "--no-progress", "--out", str(tmp_path / "o"))
    assert code == 0, out
    records = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    assert records and {r["provenance"]["model"] for r in records} == {"included-llama"}
    assert {r["layer"] for r in records} == {0, 1}  # the plugin's 2-layer model, not another


def test_bad_batch_size_exits_2_before_loading_and_keeps_the_folder(bank, tmp_path: Path, capsys,
                                                                     monkeypatch) -> None:
    folder, out = bank(), tmp_path / "o"
    args = ["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(folder), "--seeds", "0",
            "--no-progress", "--out", str(out)]
    assert _run(capsys, *args)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import probebank.run as run_module

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(run_module, "load_model", no_model)
    code, text = _run(capsys, *args, "--batch-size", "0")
    assert code == 2 and "--batch-size" in text and "Fix:" in text and "Traceback" not in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing rewritten, nothing emptied


@pytest.mark.parametrize("args, expected", [
    (["nosuch"], "No such command 'nosuch'"),
    (["rn"], "Did you mean 'run'"),
    (["run", "--nosuch"], "No such option: --nosuch"),
    (["inspect"], "Missing argument"),
])
def test_usage_errors_exit_2_in_one_line(args: list[str], expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "probebank", *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 6


def test_method_settings_reach_the_command_line(bank, tmp_path: Path, capsys) -> None:
    folder = bank()
    base = ["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(folder), "--seeds", "0",
            "--layers", "1", "--no-controls", "--no-progress", "--out", str(tmp_path / "o")]
    code, out = _run(capsys, *base, "--methods", "f_stat,mutual_info:prefilter=4:n_neighbors=2")
    assert code == 0, out
    records = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    mi = [r for r in records if r["method"] == "mutual_info:prefilter=4:n_neighbors=2"]
    assert mi and all(r["method_params"]["prefilter"] == 4 and r["method_params"]["n_neighbors"] == 2 for r in mi)
    assert "ks" not in mi[0]["method_params"] and "random_state" not in mi[0]["method_params"]
    code, out = _run(capsys, *base, "--methods", "mutual_info:nosuch=1")
    assert code == 2 and "--methods" in out and "nosuch" in out
    code, out = _run(capsys, *base, "--methods", "milp:k_max=0")
    assert code == 2 and "k_max" in out


def test_probe_config_takes_no_split_size() -> None:
    from probebank.probing.schema import ProbeConfig  # the card's split decides (DatasetCard.split)

    with pytest.raises(ValueError, match="test_size"):
        ProbeConfig(test_size=0.5)  # type: ignore[call-arg]


def test_a_builders_key_covers_the_code_it_uses_and_only_that(tmp_path: Path, monkeypatch) -> None:
    """Editing a neighbouring builder keeps a build's fingerprint; editing a helper it imports changes it."""
    pkg = tmp_path / "fp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")
    (pkg / "builders.py").write_text(textwrap.dedent('''
        from fp_pkg.helpers import shout

        def build_a(ctx):
            return [{"text": shout("a")}]

        def build_b(ctx):
            return [{"text": "b"}]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    from probebank.hashing import fingerprint

    def key(name: str) -> str:
        for mod in ("fp_pkg.builders", "fp_pkg.helpers"):
            sys.modules.pop(mod, None)
        return fingerprint(getattr(importlib.import_module("fp_pkg.builders"), name))

    a0, b0 = key("build_a"), key("build_b")
    (pkg / "builders.py").write_text((pkg / "builders.py").read_text().replace('"b"', '"bee"'))
    assert key("build_a") == a0 and key("build_b") != b0
    (pkg / "helpers.py").write_text("def shout(text):\n    return text.upper() + '!'\n")
    assert key("build_a") != a0


def test_a_cache_key_is_the_same_before_and_after_the_first_run_fills_runtime_state() -> None:
    """A cold-cache run probed again on the identical second run: the BLAS controller the Newton
    solver creates lazily was hashed into the probing code's fingerprint (None, then an object)."""
    from probebank.hashing import RuntimeCache, fingerprint
    from probebank.probing import newton
    from probebank.probing.evaluate import evaluate_store
    from probebank.probing.selection import MeanDiff

    newton._threadpools.cache_clear()
    before = fingerprint(evaluate_store, MeanDiff)
    with newton.blas_limit(1):  # what every fit does first
        pass
    assert newton._threadpools.cache_info().currsize == 1
    assert fingerprint(evaluate_store, MeanDiff) == before

    state: RuntimeCache[str, int] = RuntimeCache()

    def memoised(key: str) -> int:
        if key not in state:
            state[key] = len(key)
        return state[key]

    empty = fingerprint(memoised)
    memoised("abc")
    assert fingerprint(memoised) == empty


def test_a_bad_record_line_names_its_file_line_and_field(tmp_path: Path) -> None:
    from probebank.bases.run import BASES_FILE, read_basis_records
    from probebank.errors import ConfigError
    from probebank.results.records import read_records

    (tmp_path / "records.jsonl").write_text('\n{"k": "one"}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_records(tmp_path)
    assert exc.value.line == 2 and exc.value.field and "invalid result record" in exc.value.message
    (tmp_path / BASES_FILE).write_text("not json\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_basis_records(tmp_path)
    assert exc.value.line == 1 and "invalid basis record" in exc.value.message and BASES_FILE in (exc.value.fix or "")
