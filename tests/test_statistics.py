"""The comparison report's statistics on known numbers: Welch's textbook example, and
scipy.stats on per-seed values, through the report's own columns and sentence."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
from scipy import stats

from mnistx.sweeps.comparison import compare
from mnistx.sweeps.statistics import ci95, welch_p

# Welch (1947)-style example from the literature on unequal variances (Wikipedia, "Welch's
# t-test", example 1): t = -2.46, df = 24.9, p = 0.021.
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_p_on_the_textbook_example():
    assert welch_p(A1, A2) == pytest.approx(0.021, abs=0.001)
    assert welch_p(A1, A2) == pytest.approx(stats.ttest_ind(A1, A2, equal_var=False).pvalue)


def test_ci95_is_the_t_interval_half_width():
    # n = 4, mean 10, s = 2 (values 8, 10, 10, 12 have s = 1.633): t(0.975, 3) = 3.182.
    values = [8.0, 10.0, 10.0, 12.0]
    assert ci95(values) == pytest.approx(3.1824 * statistics.stdev(values) / 2, rel=1e-4)
    assert ci95([0.9]) is None and welch_p([0.9], [0.8, 0.7]) is None
    assert welch_p([0.9, 0.9], [0.9, 0.9]) == 1.0


def _sweep(tmp_path, results: dict[str, list[float]]):
    sweep = tmp_path / "sweep"
    for optimizer, accs in results.items():
        for seed, acc in enumerate(accs, start=1):
            job = sweep / f"optimizer={optimizer},seed={seed}"
            job.mkdir(parents=True)
            record = {
                "status": "ok",
                "val/acc_best": acc + 0.001,
                "test/acc": acc,
                "overrides": [f"optimizer={optimizer}", f"seed={seed}"],
                "swept": {"optimizer": optimizer, "seed": str(seed)},
                "history": {},
            }
            (job / "metrics.json").write_text(json.dumps(record))
    return sweep


def test_the_report_has_intervals_p_values_and_says_when_the_top_two_are_not_distinguishable(
    tmp_path, capsys
):
    results = {"adam": [0.9810, 0.9790, 0.9830], "rmsprop": [0.9800, 0.9820, 0.9785]}
    results["sgd"] = [0.9500, 0.9510, 0.9490]
    sweep = _sweep(tmp_path, results)
    compare([sweep])
    with (sweep / "comparison.csv").open() as f:
        rows = {r["optimizer"]: r for r in csv.DictReader(f)}
    for name, accs in results.items():
        expected = stats.t.ppf(0.975, 2) * stats.sem(accs)
        assert float(rows[name]["test/acc_ci95"]) == pytest.approx(expected, rel=1e-9)
        assert float(rows[name]["val/acc_best_ci95"]) == pytest.approx(expected, rel=1e-6)
    assert rows["adam"]["p_vs_best"] == ""  # the best (by val/acc_best)
    for name in ("rmsprop", "sgd"):
        expected = stats.ttest_ind(results["adam"], results[name], equal_var=False).pvalue
        assert float(rows[name]["p_vs_best"]) == pytest.approx(expected, rel=1e-9)
    assert float(rows["sgd"]["p_vs_best"]) < 0.01
    sentence = "adam and rmsprop: difference 0.08 points in test/acc, p=0.62 with 3 seeds each"
    assert sentence in (sweep / "comparison.md").read_text()
    assert "not distinguishable; run more seeds" in capsys.readouterr().out.replace("\n", " ")


def test_clear_differences_and_single_seeds_are_said_so(tmp_path):
    sweep = _sweep(tmp_path, {"adam": [0.98, 0.981, 0.982], "sgd": [0.95, 0.951, 0.949]})
    compare([sweep])
    assert "distinguishable at these seeds" in (sweep / "comparison.md").read_text()
    single = _sweep(tmp_path / "one", {"adam": [0.98], "sgd": [0.95]})
    compare([single])
    assert "one seed cannot tell" in (single / "comparison.md").read_text()
