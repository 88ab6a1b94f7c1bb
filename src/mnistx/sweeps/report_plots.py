"""The comparison report's figures (matplotlib, written as PNG without a display).

Figures are matplotlib `Figure` objects drawn straight to a file: pyplot and its global
backend are left alone, so a notebook that makes a report still shows its own plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def figure(width: float, height: float) -> tuple[Figure, Any]:
    """A figure of its own (no pyplot) and its one axes."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def run_label(run: dict[str, Any], keys: Sequence[str]) -> str:
    parts = [f"{k}={run['values'][k]}" for k in keys if k in run["values"]]
    return ", ".join(parts) or Path(run["dir"]).name


def plot_curves(runs: Sequence[dict[str, Any]], keys: Sequence[str], path: Path) -> Path | None:
    """Validation accuracy per epoch of every finished run, on one figure."""
    curves = [(r, r.get("history", {}).get("val/acc")) for r in runs]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return None
    fig, ax = figure(8, 5)
    for run, curve in curves:
        ax.plot(
            range(1, len(curve) + 1),
            [100 * v for v in curve],
            marker="o",
            ms=3,
            label=run_label(run, keys),
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("val/acc (%)")
    ax.set_title("Validation accuracy of every run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if len(curves) <= 12 else 5, ncol=1 if len(curves) <= 12 else 2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def numbers(values: Sequence[str]) -> list[float] | None:
    """The values as numbers, or None when one is not a number."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def plot_final_accuracy(
    rows: Sequence[dict[str, Any]], params: Sequence[str], out: Path
) -> list[Path]:
    """For each swept numeric key: final val/acc_best against it (log axis for learning
    rates and other keys spanning 100x or more), one line per setting of the other keys."""
    ok = [r for r in rows if r["status"] == "ok" and r["val/acc_best"] is not None]
    written = []
    for key in params:
        xs = numbers([str(r[key]) for r in ok])
        if xs is None or len(set(xs)) < 2:
            continue
        others = [k for k in params if k != key]
        lines: dict[str, list[tuple[float, float, float]]] = {}
        for row, x in zip(ok, xs, strict=True):
            label = ", ".join(f"{k}={row[k]}" for k in others) or "val/acc_best"
            # The 95% t-interval of the mean over the setting's seeds (none with one seed).
            half = row.get("val/acc_best_ci95") or 0.0
            lines.setdefault(label, []).append((x, 100 * row["val/acc_best"], 100 * half))
        fig, ax = figure(7, 4.5)
        for label, points in sorted(lines.items()):
            points.sort()
            ax.errorbar(
                [p[0] for p in points],
                [p[1] for p in points],
                yerr=[p[2] for p in points],
                marker="o",
                capsize=3,
                label=label,
            )
        positive = min(xs) > 0
        if positive and (key.endswith("lr") or max(xs) / min(xs) >= 100):
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel("val/acc_best (%), 95% intervals")
        ax.set_title(f"Final accuracy against {key}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"acc_vs_{key}.png"
        fig.savefig(path, dpi=120)
        written.append(path)
    return written
