"""The cross-validation part of a comparison report (sweeps with cv.folds=k).

The jobs of one setting that differ only in their fold (cv.fold) are pooled as seeds are: the
report's row is their mean, and this section gives, per setting, the mean of val/acc_best with
its 95% interval over the folds (Student's t), every fold's val/acc_best, and every fold's
test/acc on the official test set, which no fold ever trains or validates on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mnistx.sweeps.statistics import ci95, mean_std

FOLD = "cv.fold"


def _folds(row: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(fold, run) of a row's finished jobs, by fold."""
    found = [
        (int(m["values"][FOLD]), m)
        for m in row.get("runs", [])
        if m.get("status") == "ok" and str(m.get("values", {}).get(FOLD, "")).isdigit()
    ]
    return sorted(found, key=lambda pair: pair[0])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def summary(row: dict[str, Any]) -> dict[str, Any] | None:
    """The folds of one setting: mean, 95% half-width and per-fold scores; None without folds."""
    folds = _folds(row)
    if not folds:
        return None
    val = [m.get("val/acc_best") for _, m in folds]
    test = [m.get("test/acc") for _, m in folds]
    scored = [v for v in val if v is not None]
    return {
        "folds": [f for f, _ in folds],
        "val": val,
        "test": test,
        "val_mean": mean_std(scored)[0],
        "val_ci95": ci95(scored),
        "test_mean": mean_std([t for t in test if t is not None])[0],
    }


def _setting(row: dict[str, Any], params: Sequence[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in params) or "all jobs"


def report_lines(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> list[str]:
    """A Markdown section for comparison.md; [] when no job was a fold."""
    found = [(row, s) for row in rows if (s := summary(row)) is not None]
    if not found:
        return []
    lines = [
        "",
        "Cross-validation: val/acc_best per setting, mean and 95% interval over the folds "
        "(Student's t), each fold's val/acc_best, and each fold's test/acc (official test set).",
        "",
        "| setting | folds | val/acc_best mean | 95% interval | per fold val/acc_best | "
        "per fold test/acc |",
        "|---|---|---|---|---|---|",
    ]
    for row, s in found:
        half = s["val_ci95"]
        interval = "-" if half is None else f"± {100 * half:.2f}"
        per_val = " ".join(f"{f}: {_pct(v)}" for f, v in zip(s["folds"], s["val"], strict=True))
        per_test = " ".join(f"{f}: {_pct(t)}" for f, t in zip(s["folds"], s["test"], strict=True))
        lines.append(
            f"| {_setting(row, params)} | {len(s['folds'])} | {_pct(s['val_mean'])}% | "
            f"{interval} | {per_val} | {per_test} |"
        )
    return lines


def say(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> None:
    """One printed line per cross-validated setting."""
    from rich.console import Console

    for row in rows:
        s = summary(row)
        if s is None:
            continue
        half = s["val_ci95"]
        interval = "" if half is None else f" ± {100 * half:.2f} (95% interval)"
        folds = ", ".join(_pct(v) for v in s["val"])
        Console().print(
            f"Cross-validation, {_setting(row, params)}: val/acc_best {_pct(s['val_mean'])}%"
            f"{interval} over {len(s['folds'])} folds ({folds}); test/acc mean "
            f"{_pct(s['test_mean'])}%"
        )
