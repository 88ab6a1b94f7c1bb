"""Finishing a sweep cut short: each job of its grid matched to the folder it had.

Finished jobs are left alone, jobs with a checkpoint continue from it, the rest start.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mnistx.runs.layout import CONFIG, LAST, OVERRIDES, sweep_jobs
from mnistx.runs.records import is_finished, read_metrics
from mnistx.sweeps.overrides import hydra_quoted, job_name, override_key

FINISHED, CONTINUE, START = "finished", "continue", "start"


@dataclass
class PlannedJob:
    """One job of a sweep that is run again into its folder: what becomes of it."""

    overrides: list[str]
    folder: Path | None  # its folder from the first time, if it got one
    state: str  # FINISHED (left as it is), CONTINUE (from last.ckpt) or START


def plan_rerun(
    sweep_dir: Path, grid: Sequence[Sequence[str]], keys: Sequence[str] | None = None
) -> list[PlannedJob]:
    """Each job of `grid` (in launch order) matched to the folder it had, by the command line
    recorded in the folder's .hydra/overrides.yaml: finished jobs are left alone, jobs with a
    checkpoint continue from it, the others (never started, or stopped before their first
    checkpoint) start, in their folder if they had one."""

    folders: dict[tuple[str, ...], list[Path]] = {}
    for job in sweep_jobs(sweep_dir):
        try:
            recorded = tuple(str(o) for o in OmegaConf.load(job / OVERRIDES))
        except Exception:  # no readable command line: not one of this grid's jobs
            continue
        folders.setdefault(recorded, []).append(job)
    plan = []
    for overrides in grid:
        matches = folders.get(tuple(overrides)) or []
        folder: Path | None = matches.pop(0) if matches else None
        name = job_name(overrides, keys)
        if (
            folder is None
            and name
            and (sweep_dir / name).is_dir()
            and not any((sweep_dir / name).iterdir())
        ):
            folder = sweep_dir / name  # claimed, then the sweep stopped before the job began
        if folder is not None and is_finished(read_metrics(folder)):
            state = FINISHED
        elif folder is not None and (folder / LAST).is_file():
            state = CONTINUE
        else:
            state = START
        plan.append(PlannedJob(list(overrides), folder, state))
    return plan


def rerun_overrides(job: PlannedJob, stamp: str | None = None) -> list[str]:
    """The job's overrides for the launcher: into its own folder when it has one, keeping the
    config Hydra saved there the first time (this run's goes to .hydra/resumed-<time>/)."""

    if job.folder is None:
        return job.overrides
    name = hydra_quoted(job.folder.name)
    if name is None:  # a folder name Hydra cannot take quoted: let the job name it again
        return job.overrides
    extra = [f"hydra.sweep.subdir={name}"]
    if (job.folder / CONFIG).exists():
        stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        extra.append(f"hydra.output_subdir=.hydra/resumed-{stamp}")
    return [*job.overrides, *extra]


def describe_plan(sweep_dir: Path, plan: Sequence[PlannedJob]) -> str:
    counts = {state: sum(j.state == state for j in plan) for state in (FINISHED, CONTINUE, START)}
    return (
        f"Finishing the sweep in {sweep_dir}: {len(plan)} jobs, {counts[FINISHED]} finished "
        f"(left as they are), {counts[CONTINUE]} to continue from their checkpoints, "
        f"{counts[START]} to start."
    )


def covering_jobs(batch: Sequence[Sequence[str]], is_group: Any) -> list[Sequence[str]]:
    """Enough of a batch to check that all of it composes: the first job, and the first job
    with each config-group choice (model=cnn). Other values only replace a value, so a key
    that composes for one value composes for all; Hydra's basic sweeper composes every job
    twice (once to check, once to run), ~0.08 s each here."""
    chosen: list[Sequence[str]] = []
    seen: set[str] = set()
    for job in batch:
        groups = {o for o in job if "=" in o and is_group(override_key(o))}
        if not chosen or groups - seen:
            chosen.append(job)
            seen |= groups
    return chosen
