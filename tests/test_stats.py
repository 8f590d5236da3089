"""Statistics over seeds, k-curve summaries and the summary table, on hand-made values and records."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from probebank.probing import kcurve, stats
from probebank.probing.schema import Controls, Metrics, Provenance, ResultRecord
from probebank.results.summary import summarise, write_summary_markdown
from probebank.results.summary_table import render_table


def test_t_interval_matches_scipy() -> None:
    values = [0.71, 0.78, 0.74, 0.69]
    mean, lo, hi = stats.t_interval(values)
    ref = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (lo, hi) == pytest.approx(ref)
    assert stats.t_interval([0.5]) == (0.5, None, None)


def test_bootstrap_f1_interval_over_test_rows() -> None:
    cells = stats.confusion_from_metrics(n_test=100, n_pos=50, precision=40 / 45, recall=40 / 50)
    assert cells == (40, 5, 10, 45)
    lo, hi = stats.bootstrap_f1_interval(*cells)
    f1 = 2 * 40 / (80 + 5 + 10)
    assert lo < f1 < hi and hi - lo < 0.2
    lo4, hi4 = stats.bootstrap_f1_interval(*(4 * c for c in cells))
    assert hi4 - lo4 < (hi - lo) * 0.7  # four times the rows: about half the width


def test_jaccard_and_k1_flag() -> None:
    assert stats.mean_pairwise_jaccard([[1, 2], [1, 2], [1, 2]]) == 1.0
    assert stats.mean_pairwise_jaccard([[1, 2], [2, 3], [1, 2]]) == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)
    assert stats.mean_pairwise_jaccard([[1]]) is None
    assert not stats.k1_unit_changes([[7], [7], [7]])
    assert stats.k1_unit_changes([[7], [7], [8]])


def test_k_curve_summaries_on_hand_made_curves() -> None:
    flat = {1: 0.8, 2: 0.8, 4: 0.8, 16: 0.8}
    assert kcurve.auc_log2k(flat) == pytest.approx(0.8)
    ramp = {1: 0.5, 2: 0.6, 4: 0.8, 8: 0.9}  # log2 k = 0, 1, 2, 3
    assert kcurve.auc_log2k(ramp) == pytest.approx(((0.5 + 0.6) / 2 + (0.6 + 0.8) / 2 + (0.8 + 0.9) / 2) / 3)
    assert kcurve.k_reaching(ramp, dense_f1=0.9) == 8       # 0.95 * 0.9 = 0.855
    assert kcurve.k_reaching(ramp, dense_f1=0.84) == 4      # 0.798 <= 0.8
    assert kcurve.k_reaching(ramp, dense_f1=1.0) is None
    assert kcurve.k_reaching(ramp, dense_f1=None) is None
    assert kcurve.k1_gap(ramp, 0.95) == pytest.approx(0.45)
    assert kcurve.gain(ramp) == pytest.approx(0.4)
    assert kcurve.gain({1: 0.5}) is None


PROV = Provenance(probebank_version="t", model="m", model_revision="0", model_dtype="float32", dataset="d",
                  dataset_version="1", dataset_hash="h")


def _rec(layer: int, seed: int, k: int, f1: float, units: list[int], method: str = "mean_diff",
         sel: float | None = 0.3) -> ResultRecord:
    p = r = f1  # precision = recall = F1 keeps the record consistent
    return ResultRecord(provenance=PROV, feature="x", site="mlp", layer=layer, aggregation="mean", method=method,
                        k=k, seed=seed, n_train=60, n_test=40, n_train_pos=30, n_test_pos=20,
                        metrics=Metrics(f1=f1, accuracy=f1, precision=p, recall=r, mcc=0.0), units=units,
                        controls=Controls(shuffled_f1=None if sel is None else f1 - sel, selectivity=sel,
                                          rotation_f1=0.5, token_identity_f1=0.6))


def test_summary_on_hand_made_records(tmp_path) -> None:
    recs = []
    for seed, f1s in enumerate([(0.6, 0.7, 0.9), (0.62, 0.72, 0.92), (0.58, 0.68, 0.88)]):
        for k, f1, units in zip((1, 8, 16), f1s, ([3], [3, 4], [3, 4, 5 + seed])):
            recs.append(_rec(2, seed, k, f1, units if seed < 2 else [9] + units[1:]))
            recs.append(_rec(0, seed, k, f1 - 0.2, [1]))  # a worse layer
        recs.append(_rec(2, seed, 1536, 0.95, [], method="dense", sel=None))
    recs.append(recs[0].model_copy(update={"method": "single_unit", "method_params": {"n_units": 2}}))
    (row,) = summarise(recs)
    assert row["best_layer"] == 2 and row["seeds"] == 3
    assert row["f1_k1"] == pytest.approx(0.6)
    lo, hi = row["f1_k1_ci"]
    assert (lo, hi) == pytest.approx(_two_level_bootstrap(
        [r for r in recs if (r.layer, r.k, r.method) == (2, 1, "mean_diff")]), abs=0.01)
    assert row["k95"] == 16  # reached by seed 1 only (0.92 >= 0.95 * 0.95)
    assert row["gap_k1"] == pytest.approx(0.35)
    assert row["gain_1_8"] == pytest.approx(0.1) and row["gain_1_8_by_layer"] == {0: pytest.approx(0.1),
                                                                                  2: pytest.approx(0.1)}
    assert row["selectivity_k1"] == pytest.approx(0.3) and row["rotation_k1"] == pytest.approx(0.5)
    assert row["k1_unit_changes"] is True  # seed 2 picked unit 9
    assert row["jaccard_k"] == 16 and row["jaccard"] == pytest.approx((0.5 + 0.2 + 0.2) / 3)
    assert row["n_mono"] == 2  # the single_unit record of seed 0, layer 2
    write_summary_markdown([row], tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert f"0.600 [{lo:.3f}, {hi:.3f}]" in text and "k1 changes" in text and "AUC log2k" in text
    assert render_table([row]).renderables[0].row_count == 2  # the dataset's header row + the feature


def test_layer_picked_on_training_f1_never_sees_the_test_rows(tmp_path) -> None:
    # Layer 5 has the best test F1 but a poor training F1; layer 3 the best training F1. The records have no
    # val_f1 (an older results folder): the default pick falls back to training F1 and says so.
    recs = []
    for seed in range(3):
        for layer, test_f1, train_f1 in ((3, 0.80 + 0.01 * seed, 0.95), (5, 0.90, 0.70), (7, 0.60, 0.80)):
            recs.append(_rec(layer, seed, 1, test_f1, [1]).model_copy(update={"train_f1": train_f1}))
    (row,) = summarise(recs)
    assert row["best_layer"] == 3 and row["layer_picked_on"] == "train" and row["f1_k1"] == pytest.approx(0.81)
    assert row["layer_by_test"] == 5 and row["f1_k1_test_picked"] == pytest.approx(0.90)
    assert row["layer_by_train"] == 3 and row["f1_k1_by_train"] == pytest.approx(0.81)
    assert row["layer_optimism"] == pytest.approx(0.09) and row["layer_picks_agree"] is False
    assert row["f1_k1_by_train_ci"][0] < 0.81 < row["f1_k1_by_train_ci"][1]
    write_summary_markdown([row], tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert "layer by train" in text and "0.810 [" in text and "fell back to the training-F1 pick" in text
    (paper,) = summarise(recs, pick="test")  # --protocol paper: the test pick, as the paper reports it
    assert paper["best_layer"] == 5 and paper["layer_picked_on"] == "test" and paper["f1_k1"] == pytest.approx(0.90)
    # records written before train F1 existed: no train-picked layer, and no column for it
    (old,) = summarise([r.model_copy(update={"train_f1": None}) for r in recs])
    assert old["layer_by_train"] is None and old["f1_k1_by_train"] is None and old["layer_optimism"] is None
    assert old["best_layer"] == 5 and old["layer_picked_on"] == "test"


def test_layer_picked_on_validation_f1_not_on_test(tmp_path) -> None:
    # Layer 5 wins on test F1, layer 3 on validation F1 (a split of the training rows), layer 7 on training F1.
    recs = []
    for seed in range(3):
        for layer, test_f1, val_f1, train_f1 in ((3, 0.80, 0.92, 0.90), (5, 0.90, 0.70, 0.85), (7, 0.60, 0.50, 0.99)):
            recs.append(_rec(layer, seed, 1, test_f1, [1]).model_copy(update={"train_f1": train_f1, "val_f1": val_f1}))
            recs.append(_rec(layer, seed, 16, test_f1 + 0.05, [1, 2]))  # val_f1 only on k=1
    (row,) = summarise(recs)
    assert row["best_layer"] == 3 and row["layer_picked_on"] == "validation" and row["layer_by_val"] == 3
    assert row["f1_k1"] == pytest.approx(0.80) and row["f1_k16"] == pytest.approx(0.85)  # figures at layer 3
    assert row["val_f1_k1"] == pytest.approx(0.92)
    assert row["layer_by_test"] == 5 and row["f1_k1_test_picked"] == pytest.approx(0.90)
    assert row["layer_by_train"] == 7 and row["layer_optimism"] == pytest.approx(0.10)
    assert row["layer_picks_agree"] is False
    agreeing = [r.model_copy(update={"val_f1": 0.99}) if r.layer == 5 and r.k == 1 else r for r in recs]
    (same,) = summarise(agreeing)
    assert same["best_layer"] == 5 and same["layer_picks_agree"] is True and same["layer_optimism"] == 0.0
    write_summary_markdown([row, same], tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert "The validation pick equals the test pick on 1/2 features" in text
    assert "F1 k=1 test-picked" in text and "optimistic, for comparison with the paper" in text and "| validation | 5 |" in text


def _two_level_bootstrap(records: list, n_boot: int = 20000, seed: int = 123) -> tuple[float, float]:
    """An independent, loop-by-loop version of the summary's F1 interval: draw seeds with replacement, then
    each drawn seed's test rows (as 0/1 outcomes), and take the percentiles of the mean F1."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in records:  # each seed's test rows as (truth, prediction) pairs, from its counts
        tp = round(r.metrics.recall * r.n_test_pos)
        fp = round(tp / r.metrics.precision) - tp
        fn = r.n_test_pos - tp
        tn = r.n_test - tp - fp - fn
        rows.append(np.array([(1, 1)] * tp + [(0, 1)] * fp + [(1, 0)] * fn + [(0, 0)] * tn))
    means = []
    for _ in range(n_boot):
        f1s = []
        for i in rng.integers(0, len(rows), size=len(rows)):
            t, p = rows[i][rng.integers(0, len(rows[i]), size=len(rows[i]))].T
            tp = int((t & p).sum())
            f1s.append(0.0 if tp == 0 else 2 * tp / (t.sum() + p.sum()))
        means.append(np.mean(f1s))
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def test_intervals_stay_inside_the_range_of_their_metric() -> None:
    """Over three seeds a t interval reaches far outside [0, 1] (and below zero for a count): not these."""
    recs = []
    for seed, (f1, n_units) in enumerate([(0.2, 0), (0.95, 120), (0.15, 10)]):
        recs.append(_rec(0, seed, 1, f1, [1]))
        recs.append(_rec(0, seed, 1, f1, [1], method="single_unit", sel=None).model_copy(
            update={"method_params": {"n_units": n_units}}))
    (row,) = summarise(recs)
    t_lo, t_hi = sps.t.interval(0.95, 2, loc=np.mean([0.2, 0.95, 0.15]), scale=sps.sem([0.2, 0.95, 0.15]))
    assert t_lo < 0 and t_hi > 1  # what the summary used to print
    lo, hi = row["f1_k1_ci"]
    assert 0 <= lo < row["f1_k1"] < hi <= 1
    assert row["n_mono_ci"][0] == 0.0 < row["n_mono_ci"][1]  # a count's interval stops at zero
    sel_lo, sel_hi = row["selectivity_k1_ci"]
    assert -1 <= sel_lo and sel_hi <= 1


def test_one_seed_gets_a_bootstrap_interval() -> None:
    recs = [_rec(0, 0, 1, 0.8, [1]), _rec(0, 0, 16, 0.9, [1, 2])]
    (row,) = summarise(recs)
    lo, hi = row["f1_k1_ci"]
    assert lo < 0.8 < hi
    assert row["selectivity_k1_ci"] is None and row["jaccard"] is None and row["k1_unit_changes"] is False


def test_certificate_digest_of_exact_probes(tmp_path) -> None:
    from probebank.probing.schema import SolverReport
    from probebank.results.summary import certificates

    def rep(status: str, gap: float, t: float) -> SolverReport:
        return SolverReport(solver="leaps-bnb", status=status, objective=1.0, bound=1.0 - gap, gap=gap, time_s=t,
                            time_limited=status != "optimal", n_candidates=50)

    reports = ((1, rep("optimal", 0.0, 0.01)), (2, rep("optimal", 2e-7, 0.02)), (3, rep("time_limit", 0.3, 5.0)))
    recs = [_rec(0, 0, k, 0.8, [1]).model_copy(update={"method": "milp", "solver": r}) for k, r in reports]
    line = certificates(recs + [_rec(0, 0, 4, 0.8, [1])])
    assert line.startswith("exact probes (leaps-bnb): 3 solves, 2 proven optimal (max gap 2.0e-07)")
    assert "median 0.020 s, max 5.00 s" in line and "1 stopped by the time limit (largest proven gap 3.0e-01)" in line
    assert certificates([_rec(0, 0, 1, 0.8, [1])]) is None
    write_summary_markdown(summarise(recs), tmp_path / "s.md", footer=line)
    assert line in (tmp_path / "s.md").read_text()


def test_each_row_reports_its_interval_width_which_shrinks_with_more_test_rows(tmp_path) -> None:
    def rows_at(n_test: int) -> dict:
        recs = [_rec(0, seed, 1, f1, [1]).model_copy(update={"n_test": n_test, "n_test_pos": n_test // 2})
                for seed, f1 in enumerate((0.78, 0.8, 0.82))]
        (row,) = summarise(recs)
        return row

    small, big = rows_at(40), rows_at(400)
    for row in (small, big):
        lo, hi = row["f1_k1_ci"]
        assert row["f1_k1_ci_width"] == pytest.approx(hi - lo) and row["f1_k1_ci_width"] > 0
        assert row["selectivity_k1_ci_width"] == pytest.approx(row["selectivity_k1_ci"][1] - row["selectivity_k1_ci"][0])
    assert big["f1_k1_ci_width"] < 0.6 * small["f1_k1_ci_width"]  # 10x the rows: about 1/sqrt(10) of the width
    write_summary_markdown([small, big], tmp_path / "s.md")
    text = (tmp_path / "s.md").read_text()
    assert "95% width k=1" in text and f"| {small['f1_k1_ci_width']:.3f} |" in text
    median = (small["f1_k1_ci_width"] + big["f1_k1_ci_width"]) / 2
    assert f"Median width of the 95% interval of k=1 F1: {median:.3f} (over 2 rows)" in text
