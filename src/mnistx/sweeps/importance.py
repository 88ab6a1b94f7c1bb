"""Which swept settings matter: a fANOVA importance ranking and a parallel-coordinates plot,
in every comparison report.

Over the report's finished jobs, every seed a sample of its setting (seeds pooled), Optuna's
fANOVA evaluator (Hutter et al. 2014: a random forest of val/acc_best over the swept values,
and the share of its variance each key explains) ranks the swept keys; the ranking sums to 1.
Numeric keys are ordered (on a log scale when positive and spanning 100x or more, as
learning rates do), the others are categories. Written as a table in comparison.md,
importance.csv and importance.png; parallel_coordinates.png draws every finished job as a
line through its swept values to its test/acc.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistx.runs.records import write_text

log = logging.getLogger("mnistx")

OBJECTIVE = "val/acc_best"
MIN_JOBS = 3  # fewer finished jobs say nothing about which key matters


def rank(runs: Sequence[dict[str, Any]], params: Sequence[str]) -> list[tuple[str, float]]:
    """(key, importance) of each swept key with two values or more among the finished jobs,
    the most important first; [] with fewer than MIN_JOBS finished jobs."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    done = _finished(runs)
    keys = [k for k in params if len({_value(r, k) for r in done}) > 1]
    if len(done) < MIN_JOBS or not keys or len({r[OBJECTIVE] for r in done}) < 2:
        return []  # (every job alike: there is no variance for a key to explain)
    spaces = {k: _space([_value(r, k) for r in done]) for k in keys}
    trials = [
        optuna.trial.create_trial(
            params={k: _point(spaces[k], _value(r, k)) for k in keys},
            distributions=spaces,
            value=float(r[OBJECTIVE]),
        )
        for r in done
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory"
    try:
        study = optuna.create_study(direction="maximize")
        study.add_trials(trials)
        ranked = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as e:  # the rest of the report does not depend on it
        log.warning("No importance ranking for this report (fANOVA: %s).", e)
        return []
    finally:
        optuna.logging.set_verbosity(verbosity)
    return [(k, float(v)) for k, v in ranked.items()]


def _finished(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r for r in runs if r.get("status") == "ok" and isinstance(r.get(OBJECTIVE), int | float)
    ]


def _value(run: dict[str, Any], key: str) -> str:
    return str(run["values"].get(key, ""))


def _numbers(values: Sequence[str]) -> list[float] | None:
    """The values as finite numbers (an ordered key), or None (a categorical one)."""
    from mnistx.sweeps.report_plots import numbers

    found = numbers(values)
    return found if found is not None and all(math.isfinite(x) for x in found) else None


def _space(values: Sequence[str]) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    numbers = _numbers(values)
    if numbers is None:
        return CategoricalDistribution(sorted(set(values)))
    low, high = min(numbers), max(numbers)
    return FloatDistribution(low, high, log=low > 0 and high / low >= 100)


def _point(space: Any, value: str) -> Any:
    from optuna.distributions import FloatDistribution

    return float(value) if isinstance(space, FloatDistribution) else value


def say(ranked: Sequence[tuple[str, float]]) -> None:
    """The ranking in one printed line."""
    from rich.console import Console

    if ranked:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in ranked)
        Console().print(f"Which settings matter (fANOVA importance of {OBJECTIVE}): {shares}")


def report_lines(ranked: Sequence[tuple[str, float]]) -> list[str]:
    """The ranking as a Markdown table for comparison.md."""
    if not ranked:
        return []
    lines = [
        "",
        f"Which settings matter: fANOVA importance of {OBJECTIVE} over the finished jobs "
        "(seeds pooled; the importances sum to 1).",
        "",
        "| key | importance |",
        "|---|---|",
    ]
    return lines + [f"| {k} | {v:.3f} |" for k, v in ranked]


def write(
    runs: Sequence[dict[str, Any]],
    params: Sequence[str],
    ranked: Sequence[tuple[str, float]],
    out: Path,
) -> list[Path]:
    """importance.csv and importance.png (with a ranking), parallel_coordinates.png (with two
    or more finished jobs and a swept key)."""
    written = []
    if ranked:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["key", "importance"])
        writer.writerows([k, f"{v:.4f}"] for k, v in ranked)
        write_text(out / "importance.csv", buffer.getvalue())
        written.append(_bars(ranked, out / "importance.png"))
    done = _finished(runs)
    keys = [k for k in params if len({_value(r, k) for r in done}) > 1]
    if len(done) >= 2 and keys:
        written.append(_parallel(done, keys, out / "parallel_coordinates.png"))
    return written


def _bars(ranked: Sequence[tuple[str, float]], path: Path) -> Path:
    from mnistx.sweeps.report_plots import figure

    fig, ax = figure(6, 0.5 * len(ranked) + 1.5)
    names = [k for k, _ in ranked][::-1]
    ax.barh(names, [v for _, v in ranked][::-1], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"importance for {OBJECTIVE} (fANOVA, sums to 1)")
    ax.set_title("Which settings matter")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _parallel(done: Sequence[dict[str, Any]], keys: Sequence[str], path: Path) -> Path:
    """One vertical axis per swept key, then test/acc; one line per finished job."""
    import matplotlib

    from mnistx.sweeps.report_plots import figure

    columns, ticks = [], []
    for key in keys:
        values = [_value(r, key) for r in done]
        numbers = _numbers(values)
        if numbers is not None:
            log = min(numbers) > 0 and max(numbers) / min(numbers) >= 100
            scaled = [math.log10(x) if log else x for x in numbers]
            low, high = min(scaled), max(scaled)
            at = [(s - low) / ((high - low) or 1) for s in scaled]
            columns.append(at)
            ticks.append(dict(zip(at, values, strict=True)))
        else:
            order = sorted(set(values))
            columns.append([order.index(v) / max(len(order) - 1, 1) for v in values])
            ticks.append({i / max(len(order) - 1, 1): v for i, v in enumerate(order)})
    acc = [100 * float(r.get("test/acc") or r[OBJECTIVE]) for r in done]
    low, high = min(acc), max(acc)
    columns.append([(a - low) / ((high - low) or 1) for a in acc])
    ticks.append({0.0: f"{low:.2f}%", 1.0: f"{high:.2f}%"})
    labels = [*keys, "test/acc"]
    fig, ax = figure(2.2 * len(labels) + 1, 4.5)
    colours = matplotlib.colormaps["viridis"]
    for j in range(len(done)):
        shade = columns[-1][j]
        ax.plot(range(len(labels)), [c[j] for c in columns], color=colours(shade), alpha=0.7)
    for i, marks in enumerate(ticks):
        ax.axvline(i, color="black", lw=0.8)
        for y, text in marks.items():
            ax.text(i + 0.03, y, text, fontsize=7, va="center")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(labels) - 0.5)
    ax.set_title(f"Every finished job: swept values -> test/acc ({len(done)} jobs)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
