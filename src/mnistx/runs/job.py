"""One job of the train command, resolved once into a plain value the recipe takes.

A job is a new run, a resume or extension (`resume=`, checked by preflight), or a job that
finds its folder holding its run already: a sweep run again into its folder (finished jobs
are left alone, interrupted ones continue from their checkpoints) or a job SLURM requeued.
Which one, with which config, from which checkpoint, is decided here and nowhere else.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, open_dict

from mnistx.runs.continuation import continuation, continues_job
from mnistx.runs.env import requeued
from mnistx.runs.layout import folder_of
from mnistx.runs.records import RunInfo, is_finished, read_metrics, run_info

log = logging.getLogger("mnistx")

Kind = Literal["new", "resume", "continue", "finished"]


@dataclass(frozen=True)
class Job:
    """What one job runs. kind: new (a fresh run), resume (`resume=`: the run's own config,
    trained on from its checkpoint), continue (the folder held this job unfinished: a sweep
    run again, a requeue), finished (the folder holds this job finished: nothing to run)."""

    kind: Kind
    cfg: DictConfig  # the config to run: a continued run's own, with its adjustable keys
    folder: Path
    overrides: list[str]  # the job's command line as Hydra gave it
    choices: dict[str, str]  # the config groups chosen (model: cnn, ...)
    run: RunInfo  # the run's command line, swept values and continuations
    ckpt: Path | None = None  # the checkpoint to continue from
    finished: dict[str, Any] | None = None  # a finished job's record


@dataclass(frozen=True)
class Launch:
    """What Hydra says about the job's launch, as plain values."""

    overrides: list[str]
    choices: dict[str, str]
    sweep: bool  # a job of a multirun
    n_jobs: Any = None  # the launcher's parallel jobs (joblib), for the job's thread share


def resolve_job(cfg: DictConfig, launch: Launch) -> Job:
    """The job this process runs, decided once (its folder is held by this process)."""
    folder = Path(cfg.output_dir)
    overrides = list(launch.overrides)
    if folder_of(cfg.get("resume"), cfg.get("ckpt_path")) is not None:
        own, ckpt, run = continuation(cfg, overrides)  # checked by preflight
        log.info("Resuming %s from %s", folder, ckpt)
        return _job("resume", own, folder, launch, run, ckpt)
    # A sweep run again into its folder, or a job SLURM requeued, continues the run there.
    if launch.sweep or requeued():
        record = read_metrics(folder)
        if is_finished(record):
            return _job("finished", cfg, folder, launch, run_info(folder, overrides), None, record)
        if continues_job(folder):
            own, ckpt, run = continuation(cfg, overrides, job=folder)
            log.info("Continuing %s from %s", folder, ckpt)
            return _job("continue", own, folder, launch, run, ckpt)
    return _job("new", cfg, folder, launch, run_info(folder, overrides))


def _job(
    kind: Kind,
    cfg: DictConfig,
    folder: Path,
    launch: Launch,
    run: RunInfo,
    ckpt: Path | None = None,
    finished: dict[str, Any] | None = None,
) -> Job:
    _set_thread_share(cfg, launch)
    return Job(kind, cfg, folder, list(launch.overrides), dict(launch.choices), run, ckpt, finished)


def _set_thread_share(cfg: DictConfig, launch: Launch) -> None:
    """A job of a parallel sweep (joblib n_jobs) takes its share of the cores."""
    if launch.sweep and cfg.get("threads") is None:
        with open_dict(cfg):
            cfg.threads = threads_per_job(launch.n_jobs)


def threads_per_job(n_jobs: Any) -> int | None:
    """Torch threads for each of `n_jobs` parallel jobs (joblib launcher), so that together
    they use the cores once instead of each starting one thread per core."""
    if not isinstance(n_jobs, int) or n_jobs == 1:
        return None
    cores = os.cpu_count() or 1
    parallel = cores if n_jobs < 0 else min(n_jobs, cores)  # joblib: -1 means all cores
    return max(1, cores // parallel)
