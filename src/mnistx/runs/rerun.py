"""Finishing a sweep cut short: each job of its grid matched to the folder it had.

Finished jobs are left alone, jobs with a checkpoint continue from it, the rest start. A
sweep is finished by running its command again into its folder, or by `resume=<sweep>`;
either must be that same sweep, not running, with something left to do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mnistx.config.overrides import (
    hydra_quoted,
    job_name,
    override_key,
    sweep_grid,
    swept_keys_of,
)
from mnistx.errors import UserError
from mnistx.runs.layout import (
    CONFIG,
    LAST,
    OVERRIDES,
    SWEEP_CONFIG,
    holds_run,
    resume_arg,
    sweep_jobs,
)
from mnistx.runs.lock import hold, in_use
from mnistx.runs.plan import Plan
from mnistx.runs.records import is_finished, read_metrics
from mnistx.runs.sweep_record import read_sweep_record, swept_keys

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
        name = job_name(overrides, swept_keys(sweep_dir) if keys is None else keys)
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


def _is_hydra_key(override: str) -> bool:
    return override_key(override).startswith(("hydra.", "hydra/"))


def sweep_command(folder: Path, overrides: Sequence[str]) -> Plan:
    """`resume=<sweep folder>`: the sweep's own command line again, into its folder."""

    record = read_sweep_record(folder)
    task = [str(o) for o in record.hydra.overrides.task]
    others = [o for o in overrides if override_key(o) != "resume"]
    changed = [o for o in others if not _is_hydra_key(o)]
    if changed:
        raise UserError(
            f"resume={folder} finishes that sweep as it was started ({' '.join(task)}), so it "
            f"takes no other settings (got: {' '.join(changed)}). To train a finished job "
            "longer, extend it on its own: python -m mnistx.train resume=<job folder> "
            "trainer.max_epochs=<more>"
        )
    if sweep_grid(record) is None:
        raise UserError(
            f"{folder} holds an Optuna search, which resumes from its study: run its command "
            f"again: python -m mnistx.train -m {' '.join(task)}"
        )
    kept = [
        str(o)
        for o in record.hydra.overrides.hydra
        if override_key(str(o)) not in ("hydra.mode", "hydra.sweep.dir")
    ]
    args = [*task, *kept, *others, f"hydra.sweep.dir={hydra_quoted(str(folder)) or folder}"]
    all_done = sweep_rerun(folder, args)
    if all_done:
        return Plan("nothing", folder, message=all_done)
    hold(folder)  # one process finishes a sweep at a time
    return Plan("finish_sweep", folder, args=args)


def sweep_rerun(target: Path, overrides: Sequence[str]) -> str | None:
    """A multirun into `target`, a folder that may hold a sweep already. Then it finishes
    that sweep, so it must be the same one (the same task overrides), and not be running;
    when all its jobs have finished, the message that says so (nothing is touched)."""

    if not (target / SWEEP_CONFIG).is_file():
        if holds_run(target):
            raise UserError(
                f"hydra.sweep.dir={target} is a single run's folder, and a sweep never writes "
                "into a run's folder. Drop hydra.sweep.dir= (a fresh folder is made) or name "
                "a folder that does not exist yet."
            )
        return None
    record = read_sweep_record(target)
    grid = sweep_grid(record)
    if grid is None:
        return None  # an Optuna search's folder: its stored study resumes it
    recorded = [str(o) for o in record.hydra.overrides.task]
    asked = [o for o in overrides if not _is_hydra_key(o)]
    if sorted(recorded) != sorted(asked):
        raise UserError(
            f"{target} holds the sweep `{' '.join(recorded)}`; running into its folder "
            f"finishes that sweep, so the command must sweep the same (got `{' '.join(asked)}`)."
            f" Finish it with: python -m mnistx.train {resume_arg(target)}; for another sweep, "
            "drop hydra.sweep.dir= (a fresh folder is made)."
        )
    plan = plan_rerun(target, grid, swept_keys_of(record))
    for job in plan:
        owner = in_use(job.folder) if job.folder is not None else None
        if owner:
            raise UserError(
                f"The sweep in {target} is still running: process {owner} trains in "
                f"{job.folder}. Wait for it to end (or stop it), then run this again."
            )
    if all(job.state == FINISHED for job in plan):
        return (
            f"{target}: all {len(plan)} jobs of the sweep are finished; nothing to run and "
            f"nothing was changed. Compare them: python -m mnistx.compare {target}"
        )
    return None
