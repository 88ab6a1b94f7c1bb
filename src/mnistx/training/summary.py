"""The end-of-run summary a finished run prints (from its metrics.json record)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_summary(metrics: dict[str, Any], console: Console | None = None) -> None:
    table = Table(title="mnistx run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        (
            "test accuracy",
            _fmt(metrics.get("test/acc"), pct=True)
            + (" (final weights)" if metrics.get("tested_weights") == "last" else ""),
        ),
        ("test loss", _fmt(metrics.get("test/loss"))),
        ("best val accuracy", _fmt(metrics.get("val/acc_best"), pct=True)),
        ("best epoch", f"{metrics.get('best_epoch')} of {metrics.get('epochs')}"),
        ("seconds per epoch", f"{metrics.get('seconds_per_epoch', 0):.2f}"),
        (
            "training time",
            f"{metrics.get('train_seconds', 0):.1f} s on {metrics.get('accelerator')}",
        ),
        *(
            [("compile time", f"{metrics['compile_seconds']:.1f} s (not in training time)")]
            if metrics.get("compile_seconds") is not None
            else []
        ),
        ("parameters", _fmt(metrics.get("params"))),
        *(
            [
                (
                    "time to target",
                    f"{metrics['seconds_to_target']:.1f} s to val/acc >= {metrics['target_acc']}"
                    if metrics["reached_target"]
                    else f"not reached ({metrics['target_acc']})",
                )
            ]
            if "target_acc" in metrics
            else []
        ),
        ("outputs", str(metrics.get("output_dir"))),
    ]
    for k, v in rows:
        table.add_row(k, v)
    (console or Console()).print(table)
