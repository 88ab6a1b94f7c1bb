"""What a run folder says about its run: metrics.json, written whole, and never lost.

A failed or interrupted extension of a finished run keeps the finished record (`previous`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from omegaconf import OmegaConf

from mnistx.config.overrides import swept_values
from mnistx.errors import UserError
from mnistx.runs.layout import METRICS, OVERRIDES, SWEEP_CONFIG, resume_command


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: a kill never leaves a half-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _disk_error(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600, made the mode any other output gets
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _disk_error(path, e) from None
        raise


def _disk_error(path: Path, e: OSError) -> Exception:
    """A full disk (or a folder one may not write to) as one paragraph; other errors as they
    are."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
        return UserError(
            f"Cannot write {path}: {e.strerror}. Nothing there was changed; free some space "
            "(or fix the folder's permissions), then run the command again."
        )
    return e


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """The folder's metrics.json, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(metrics: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    return metrics is not None and metrics.get("status") == "ok"


# Accuracies are kept to 4 decimals: what the 10,000 test images resolve (one image is
# 0.0001), and more than a 5,000-image validation split does (0.0002). A float32 0.981 is
# written 0.981, not 0.9810000061988831. Losses and times keep their digits.
ACCURACY_DIGITS = 4


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, its accuracies (and their per-epoch history) to ACCURACY_DIGITS."""
    write_json(folder / METRICS, resolved(metrics))


def resolved(metrics: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record with every accuracy rounded to ACCURACY_DIGITS."""

    def acc(key: str) -> bool:
        return key.endswith(("/acc", "/acc_best"))

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, ACCURACY_DIGITS)
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    out = {k: rounded(v) if acc(k) else v for k, v in metrics.items()}
    if isinstance(metrics.get("history"), dict):
        out["history"] = {k: rounded(v) if acc(k) else v for k, v in metrics["history"].items()}
    return out


def _keep_finished(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A failed or interrupted extension of a finished run keeps that run's record."""
    before = read_metrics(folder)
    if is_finished(before):
        record["previous"] = before
    elif before and before.get("previous"):
        record["previous"] = before["previous"]
    return record


def record_failure(folder: Path, run: RunInfo, reason: str, status: str = "failed") -> None:
    write_metrics(
        folder,
        _keep_finished(
            folder,
            {
                "status": status,
                "reason": reason,
                "overrides": run.overrides,
                "swept": run.swept,
                "output_dir": str(folder),
            },
        ),
    )


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or a signal (SIGTERM: a SLURM time limit), recorded as such; the
    process exits 130 (Ctrl-C) or 143 (SIGTERM)."""

    def __init__(self, cause: str = "Ctrl-C") -> None:
        super().__init__(cause)
        self.cause = cause
        self.exit_code = 143 if cause == "SIGTERM" else 130


def record_interrupt(
    folder: Path,
    run: RunInfo,
    epoch: int,
    history: dict[str, Any],
    phase: str = "training",
    cause: str = "Ctrl-C",
    say: bool = True,
) -> None:
    """A sweep job's record names the command that finishes its whole sweep (`say`: and
    stderr says it)."""
    sweep = (folder.parent / SWEEP_CONFIG).is_file() and not (folder / SWEEP_CONFIG).exists()
    command = resume_command(folder.parent if sweep else folder)
    what = "it and the rest of its sweep" if sweep else "it"
    write_metrics(
        folder,
        _keep_finished(
            folder,
            {
                "status": "interrupted",
                "reason": (
                    f"stopped by {cause} during "
                    + (f"epoch {epoch + 1}" if phase == "training" else "the test")
                    + f"; continue {what} with: {command}"
                ),
                "phase": phase,
                "signal": cause,
                "epochs": epoch,
                "overrides": run.overrides,
                "swept": run.swept,
                "output_dir": str(folder),
                "history": history,
                "resumes": run.resumes,
            },
        ),
    )
    if say:
        print(f"interrupted: continue with {command}", file=sys.stderr)


@dataclass
class RunInfo:
    """What a run's records say about it across continuations: the command line that started
    it, its swept values, and each continuation (the epoch it continued from, and when)."""

    overrides: list[str]
    swept: dict[str, str]
    resumes: list[dict[str, Any]] = field(default_factory=list)


def run_info(folder: Path, overrides: Sequence[str] | None = None) -> RunInfo:
    """The run's command line (its own .hydra/overrides.yaml unless given), its values of
    the keys its sweep varied (read from the sweep folder's multirun.yaml, so a resumed job
    keeps them), and the continuations recorded so far."""

    if overrides is None:
        file = folder / OVERRIDES
        overrides = [str(o) for o in OmegaConf.load(file)] if file.exists() else []
    overrides = list(overrides)
    from mnistx.runs.sweep_record import swept_keys

    keys = swept_keys(folder.parent)
    metrics = read_metrics(folder) or {}
    resumes = list(metrics.get("resumes") or (metrics.get("previous") or {}).get("resumes") or [])
    return RunInfo(overrides, swept_values(overrides, keys), resumes)
