"""Continuing a run in its own folder: a resume, an extension, a requeued or re-run sweep job.

The run goes on with its own saved config (only trainer.max_epochs may change) from its
checkpoint, and its record lists each continuation.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mnistx.config.overrides import override_key
from mnistx.runs.layout import LAST, folder_of
from mnistx.runs.records import RunInfo, is_finished, read_metrics, run_info
from mnistx.runs.saved import read_checkpoint, run_config

# Keys the resume command line may still change; every other setting is the run's own.
ADJUSTABLE = ("trainer.max_epochs", "resume", "ckpt_path", "trusted_targets")


_epochs_in: dict[Path, int] = {}  # epochs each checkpoint holds, read once per process


def typed(override: str) -> Any:
    """An override's value as Hydra types it (`trainer.max_epochs=2` -> 2)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()


def requested_epochs(overrides: Sequence[str]) -> Any:

    found = [o for o in overrides if override_key(o) == "trainer.max_epochs"]
    return typed(found[-1]) if found else None


def epochs_done(metrics: dict[str, Any] | None, in_checkpoint: int) -> int:
    return int(metrics["epochs"]) if is_finished(metrics) else in_checkpoint


def continues_job(folder: Path) -> bool:
    """Whether a job launched into `folder` continues the run that was there (its sweep was
    run again into its folder, sweeps.rerun.plan_rerun, or SLURM requeued it): the folder has a
    checkpoint but no finished record. A new run's folder has neither."""
    return (folder / LAST).is_file() and not is_finished(read_metrics(folder))


def continuation(
    cfg: DictConfig, overrides: Sequence[str], job: Path | None = None
) -> tuple[DictConfig, Path, RunInfo]:
    """The run's own config (with the adjustable overrides applied), the checkpoint to continue
    from, and the run's records with this continuation added; `preflight` checked them.
    `job`: a sweep job's folder, continued because its sweep runs again (`continues_job`)."""

    folder = job or folder_of(cfg.get("resume"), cfg.get("ckpt_path"))
    assert folder is not None
    ckpt_path = cfg.get("ckpt_path")
    ckpt = Path(os.path.expanduser(str(ckpt_path))) if ckpt_path else folder / LAST
    # As today's keys name it, checked as data; trusting what this command line trusts.
    own = run_config(folder, trusted=list(cfg.get("trusted_targets") or []), continued=True)
    ignored = [o for o in overrides if override_key(o) not in ADJUSTABLE]
    if ignored and job is None:  # a sweep job's overrides are its own
        logging.getLogger("mnistx").warning(
            "Resuming with the run's own config; ignoring %s", " ".join(ignored)
        )
    adjusted = [] if job else [o for o in overrides if override_key(o) == "trainer.max_epochs"]
    for o in adjusted:
        own.trainer.max_epochs = typed(o)
    own.output_dir = str(folder)
    own.resume, own.ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    run = run_info(folder)
    metrics = read_metrics(folder) or {}
    if is_finished(metrics.get("previous")) and not is_finished(metrics):
        metrics = metrics["previous"]  # an extension that failed: the finished run's record
    run.resumes.append(
        {
            "from_epoch": epochs_done(metrics, checkpoint_epochs(ckpt)),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checkpoint": ckpt.name,
            **({"overrides": adjusted} if adjusted else {}),
        }
    )
    return own, ckpt, run


def checkpoint_epochs(ckpt: Path) -> int:
    """The epochs a (checked) checkpoint has trained: it is written at an epoch's validation."""
    key = ckpt.resolve()
    if key not in _epochs_in:
        _epochs_in[key] = int(read_checkpoint(ckpt).get("epoch", -1)) + 1
    return _epochs_in[key]
