"""The run API and CLI on a tiny random model: records, summary, reuse, and invalid options (exit 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from probebank.cli import main
from probebank.run import RunConfig, run


def _config(bank: Path, out: Path, **kw) -> RunConfig:
    return RunConfig(model="tiny:llama", datasets=["toy-words"], include=[bank], out=out, progress=False, **kw)


def test_run_writes_records_summary_and_reuses_them(bank, tmp_path: Path, monkeypatch) -> None:
    folder = bank()
    first = run(_config(folder, tmp_path / "a", methods=["mean_diff", "f_stat"]), log=lambda m: None)
    records = [json.loads(line) for line in (tmp_path / "a" / "records.jsonl").read_text().splitlines()]
    assert first.n_records == len(records) > 0
    assert {r["method"] for r in records} == {"mean_diff", "f_stat", "dense", "single_unit"}
    assert {r["seed"] for r in records} == {0, 1, 2}  # three seeds by default
    sparse = [r for r in records if r["method"] in ("mean_diff", "f_stat")]
    assert all(r["controls"]["selectivity"] is not None and r["controls"]["rotation_f1"] is not None
               and r["controls"]["token_identity_f1"] is not None for r in sparse)
    assert {r["layer"] for r in records} == {0, 1, 2, 3}
    k1 = [r for r in records if r["k"] == 1 and r["method"] != "single_unit"]
    assert all(len(r["units"]) == 1 and len(r["coef"]) == 1 for r in k1)
    assert records[0]["provenance"]["model"] == "tiny-llama" and records[0]["provenance"]["dataset_version"] == "1.0"
    assert {row["method"] for row in first.summary} == {"mean_diff", "f_stat"}
    assert (tmp_path / "a" / "summary.md").read_text().count("toy-words") == 2
    alignment = json.loads((tmp_path / "a" / "alignment.json").read_text())["toy-words"]
    assert alignment["targets"] == 16 and alignment["dropped"] == 0

    # An identical run reuses the stored records: probing must not run again.
    import probebank.scale.units as units_module

    def boom(*args, **kwargs):
        raise AssertionError("probed again although nothing changed")

    monkeypatch.setattr(units_module, "evaluate_store", boom)
    again = run(_config(folder, tmp_path / "b", methods=["mean_diff", "f_stat"]), log=lambda m: None)
    assert (tmp_path / "b" / "records.jsonl").read_text() == (tmp_path / "a" / "records.jsonl").read_text()
    assert again.summary == first.summary
    # A changed setting is probed anew (in this process, where the patch is seen).
    with pytest.raises(AssertionError, match="probed again"):
        run(_config(folder, tmp_path / "c", methods=["random"], workers=1), log=lambda m: None)


@pytest.mark.parametrize("args, expected", [
    (["--methods", "telepathy"], "unknown selection method 'telepathy'"),
    (["--sites", "mlp,brain"], "unknown site"),
    (["--layers", "0,99"], "layers [99] do not exist"),
    (["--layers", "zero"], "cannot read 'zero'"),
    (["--suite", "quick"], "either --datasets or --suite"),
])
def test_run_rejects_bad_options_with_exit_2(bank, tmp_path: Path, capsys, args: list[str], expected: str) -> None:
    folder = bank()
    code = main(["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(folder),
                 "--out", str(tmp_path / "o"), "--no-progress", *args])
    out = capsys.readouterr()
    assert code == 2, out
    assert expected in (out.err + out.out) and "Traceback" not in out.err


def test_unknown_model_is_a_clear_error(bank, tmp_path: Path, capsys) -> None:
    code = main(["run", "--model", "no-such-model", "--datasets", "toy-words", "--include", str(bank()),
                 "--out", str(tmp_path / "o"), "--no-progress"])
    out = capsys.readouterr()
    assert code == 2 and "no-such-model" in out.err and "smollm2-135m" in out.err


def test_results_command_reads_a_folder(bank, tmp_path: Path, capsys) -> None:
    run(_config(bank(), tmp_path / "r"), log=lambda m: None)
    assert main(["results", str(tmp_path / "r"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["dataset"] == "toy-words" and rows[0]["f1_k1"] is not None
    assert main(["results", str(tmp_path / "r"), "--format", "md"]) == 0
    assert "Protocol: standard: methods f_stat" in capsys.readouterr().out  # as the run's summary.md says
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "records.jsonl").write_text('{"feature": 1}\n')
    assert main(["results", str(tmp_path / "bad")]) == 2
    assert "records.jsonl:1" in capsys.readouterr().err


def test_control_flags(bank, tmp_path: Path, capsys) -> None:
    folder = bank()
    args = ["run", "--model", "tiny:llama", "--datasets", "toy-words", "--include", str(folder), "--no-progress",
            "--seeds", "0", "--layers", "1"]
    assert main([*args, "--no-controls", "--out", str(tmp_path / "plain")]) == 0
    plain = [json.loads(line) for line in (tmp_path / "plain" / "records.jsonl").read_text().splitlines()]
    assert plain and all(r["controls"] is None for r in plain) and {r["method"] for r in plain} == {"f_stat", "dense"}
    assert main([*args, "--random-init", "--out", str(tmp_path / "ri")]) == 0
    ri = [json.loads(line) for line in (tmp_path / "ri" / "records.jsonl").read_text().splitlines()]
    assert all(r["controls"]["random_init_f1"] is not None for r in ri if r["method"] == "f_stat")
    summary = (tmp_path / "ri" / "summary.md").read_text()
    assert "select. k=1" in summary and "rand-init k=1" in summary
    assert "rand-init" not in (tmp_path / "plain" / "summary.md").read_text()  # empty columns are dropped


def test_random_init_provider_redraws_weights_deterministically() -> None:
    import torch

    from probebank.extract.providers import load_model

    base = load_model("tiny:llama")
    a, b = load_model("random-init:tiny:llama"), load_model("random-init:tiny:llama")
    assert a.name == "random-init-tiny-llama" and a.widths == base.widths and a.n_layers == base.n_layers
    pa, pb, p0 = (dict(m.model.named_parameters()) for m in (a, b, base))
    assert pa.keys() == p0.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)  # same seed, same weights
    assert any(not torch.equal(pa[k], p0[k]) for k in pa if "norm" not in k)
    c = load_model("random-init:tiny:llama@1")
    assert any(not torch.equal(pa[k], v) for k, v in c.model.named_parameters())


@pytest.mark.parametrize("bad", [["--model", "no-such-model"], ["--bases", "identity,no-such-basis"]])
def test_a_failed_start_keeps_the_folders_earlier_results(bank, tmp_path: Path, capsys, bad: list[str]) -> None:
    folder = tmp_path / "r"
    run(_config(bank(), folder), log=lambda m: None)
    before = {name: (folder / name).read_bytes() for name in ("records.jsonl", "run.json")}
    assert before["records.jsonl"]
    code = main(["run", "--datasets", "toy-words", "--include", str(bank()), "--out", str(folder),
                 "--no-progress", "--model", "tiny:llama", *bad])
    assert code == 2, capsys.readouterr()
    assert {name: (folder / name).read_bytes() for name in before} == before
