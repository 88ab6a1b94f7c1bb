"""What a run leaves behind: metrics.json (written atomically) and the end-of-run summary."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: a kill never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600, made the mode any other output gets
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


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
