"""Optional pieces (extras) and the oldest supported Python: a missing extra says which `pip install` brings it,
a dataset whose builder needs one is skipped before anything is fetched, and the code compiles on 3.10."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from probebank.data.sources import SourceUnavailable
from probebank.errors import MissingExtra, ProbebankError, SourceError

ROOT = Path(__file__).resolve().parents[1]


def _never_fetch(name: str) -> Path:
    raise AssertionError(f"fetched {name} although the builder cannot run")


@pytest.mark.parametrize("objective, module", [("squares", "numba"), ("logistic", "highspy")])
def test_exact_probes_without_the_exact_extra_name_it_before_loading(monkeypatch, objective, module):
    from probebank.probing.exact.selector import MilpSelector

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(MissingExtra) as err:
        MilpSelector(objective=objective).check_params()
    assert f"'{module}'" in str(err.value) and "pip install 'probebank[exact]'" in str(err.value)
    assert isinstance(err.value, ProbebankError)  # the CLI's exit 2 with the message


def test_run_with_milp_and_no_numba_exits_2_naming_the_extra(monkeypatch, bank, tmp_path, capsys):
    from probebank.cli import main

    monkeypatch.setitem(sys.modules, "numba", None)
    code = main(["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(bank()), "--out",
                 str(tmp_path / "out"), "--methods", "milp", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "pip install 'probebank[exact]'" in captured.out + captured.err
    assert not (tmp_path / "out").exists()  # refused before the model loaded or anything was written


@pytest.mark.parametrize("builder, module", [("syntax:build_upos", "spacy"), ("syntax:build_token_attribute", "spacy"),
                                             ("language:build_wordfreq_word_language", "srsly"),
                                             ("treebank:build_gold_words", "conllu")])
def test_a_builder_without_the_bank_extra_is_skipped_before_fetching(monkeypatch, builder, module):
    import importlib

    mod_name, func = builder.split(":")
    build = getattr(importlib.import_module(f"probebank_plugins.datasets.{mod_name}"), func)
    monkeypatch.setitem(sys.modules, module, None)
    ctx = SimpleNamespace(card=SimpleNamespace(name="syntax-upos"), params={"attribute": "dep"}, fetch=_never_fetch,
                          limit=None)
    with pytest.raises(SourceUnavailable) as err:
        next(iter(build(ctx)))
    msg = str(err.value)
    assert "skipped:" in msg and "syntax-upos" in msg and f"'{module}'" in msg and "pip install 'probebank[bank]'" in msg


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("filters", [True, False], ids=["with-extraction-filters", "python-3.10-before-3.10.12"])
def test_tar_unpacking_refuses_escapes_with_or_without_extraction_filters(monkeypatch, tmp_path, filters):
    from probebank.data import sources

    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good = tmp_path / "good.tar.gz"
    good.write_bytes(_tar({"pkg/a.txt": b"hello", "pkg/sub/b.txt": b"x"}))
    (tmp_path / "out").mkdir()
    sources._unpack_tar(good, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "sub" / "b.txt").read_bytes() == b"x"
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tar({"pkg/a.txt": b"ok", "../escaped.txt": b"no"}))
    (tmp_path / "out2").mkdir()
    with pytest.raises((SourceError, tarfile.TarError)):
        sources._unpack_tar(bad, tmp_path / "out2")
    assert not (tmp_path / "escaped.txt").exists()


def _python310() -> str | None:
    if shutil.which("pyenv"):
        prefix = subprocess.run(["pyenv", "prefix", "3.10"], capture_output=True, text=True)
        if prefix.returncode == 0 and prefix.stdout.strip():
            exe = Path(prefix.stdout.strip().splitlines()[0]) / "bin" / "python"
            if exe.is_file():
                return str(exe)
    return None


@pytest.mark.skipif(_python310() is None, reason="no Python 3.10 interpreter (pyenv)")
def test_every_module_compiles_on_python310(tmp_path):
    """requires-python says >=3.10: no 3.11-only syntax (except*, ...) in the package or its plugins."""
    files = [str(p) for folder in ("core", "plugins") for p in sorted((ROOT / folder).rglob("*.py"))]
    code = ("import sys\nbad = []\nfor f in sys.argv[1:]:\n    try:\n"
            "        compile(open(f, encoding='utf-8').read(), f, 'exec')\n"  # parses only: writes no .pyc
            "    except SyntaxError as e:\n        bad.append(f'{f}:{e.lineno}: {e.msg}')\nprint('\\n'.join(bad))\n"
            "sys.exit(1 if bad else 0)\n")
    done = subprocess.run([str(_python310()), "-c", code, *files], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
