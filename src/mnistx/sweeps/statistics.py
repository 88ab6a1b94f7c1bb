"""Whether a difference between settings is real at the seeds that were run.

Per setting with at least 2 seeds: the 95% t-interval half-width of its mean (Student's t,
n - 1 degrees of freedom). Each setting against the best one (the report's first row, by
val/acc_best): Welch's t-test on the per-seed test/acc values, which does not assume equal
variances. Both come from scipy.stats.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

METRICS = ("test/acc", "val/acc_best")


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (None below 2 values); (None, None) for []."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def ci95(values: Sequence[float]) -> float | None:
    """Half-width of the 95% t-interval of the mean of `values` (None below 2 values)."""
    from scipy import stats

    if len(values) < 2:
        return None
    return float(
        stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    )


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test of equal means (None below 2 values each)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:  # t undefined
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _seed_values(row: dict[str, Any], metric: str) -> list[float]:
    return [
        float(m[metric])
        for m in row.get("runs", [])
        if m.get("status") == "ok" and m.get(metric) is not None
    ]


def add_statistics(rows: list[dict[str, Any]]) -> None:
    """`<metric>_ci95` for each metric and `p_vs_best` (test/acc) on every row."""
    best = next((r for r in rows if r["status"] == "ok" and _seed_values(r, "test/acc")), None)
    for row in rows:
        for metric in METRICS:
            row[f"{metric}_ci95"] = ci95(_seed_values(row, metric))
        row["p_vs_best"] = (
            None
            if best is None or row is best
            else welch_p(_seed_values(best, "test/acc"), _seed_values(row, "test/acc"))
        )


def _label(row: dict[str, Any], params: Sequence[str]) -> str:
    if len(params) == 1:
        return str(row[params[0]])
    return ", ".join(f"{k}={row[k]}" for k in params) or "the setting"


def verdict(rows: list[dict[str, Any]], params: Sequence[str]) -> str | None:
    """One sentence on the two best settings: distinguishable at these seeds, or not."""
    ok = [r for r in rows if r["status"] == "ok" and _seed_values(r, "test/acc")]
    if len(ok) < 2:
        return None
    best, second = ok[0], ok[1]
    a, b = _seed_values(best, "test/acc"), _seed_values(second, "test/acc")
    names = f"{_label(best, params)} and {_label(second, params)}"
    diff = abs(100 * (statistics.fmean(a) - statistics.fmean(b)))
    seeds = f"{len(a)} seeds each" if len(a) == len(b) else f"{len(a)} and {len(b)} seeds"
    seeds = seeds.replace("1 seeds", "1 seed")
    p = welch_p(a, b)
    if p is None:
        return (
            f"{names}: difference {diff:.2f} points in test/acc with {seeds}"
            " — one seed cannot tell a difference from noise; run more seeds (seed=1,2,3)."
        )
    if p >= 0.05:
        return (
            f"{names}: difference {diff:.2f} points in test/acc, p={p:.2f} with {seeds} — "
            "not distinguishable; run more seeds."
        )
    return (
        f"{names}: difference {diff:.2f} points in test/acc, p={p:.3f} with {seeds} "
        "(Welch's t-test) — distinguishable at these seeds."
    )


def one_per_sample(runs: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Runs with the same command line (config and seed) are one sample, not more seeds (a
    sweep compared with its copy, a sweep run twice): kept once, the finished one first."""
    kept: dict[tuple[str, ...], dict[str, Any]] = {}
    others = []
    for run in runs:
        key = tuple(sorted(str(o) for o in run.get("overrides") or []))
        if run.get("status") == "ok" and key:
            kept.setdefault(key, run)
        else:
            others.append(run)
    return [*kept.values(), *others], len(runs) - len(kept) - len(others)
