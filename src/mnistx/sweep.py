"""Multiruns: which keys a sweep varies, readable job folder names, finishing a sweep that
was cut short, the end-of-sweep report.

Hydra gives each job the full override list, constants included; only the multirun's own
command line (and `hydra.sweeper.params`) says what is swept. `SweepCallback` reads that in
the launching process and hands it to the jobs through an environment variable, which local
processes, joblib workers and SLURM jobs all inherit.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SWEPT_ENV = "MNISTX_SWEPT_KEYS"
log = logging.getLogger("mnistx")
_claimed: dict[tuple[str, str], str] = {}


def override_key(override: str) -> str:
    """`+optimizer.lr=0.1` -> `optimizer.lr`; `model=cnn` -> `model`."""
    return override.split("=", 1)[0].lstrip("+~")


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    return {override_key(o): o.split("=", 1)[1] for o in overrides if "=" in o}


def swept_keys_of(cfg: DictConfig) -> list[str]:
    """Keys varied by a multirun: sweep syntax on its command line, plus sweeper params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(cfg.hydra.overrides.task))
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    params = cfg.hydra.sweeper.get("params") or {}
    keys += [str(k) for k in params if str(k) not in keys]
    return keys


def swept_values(overrides: Sequence[str], keys: Sequence[str] | None = None) -> dict[str, str]:
    """This job's values of the swept keys, in sweep order."""
    if keys is None:
        keys = [k for k in os.environ.get(SWEPT_ENV, "").split(",") if k]
    values = parse_overrides(overrides)
    return {k: values[k] for k in keys if k in values}


def sweep_grid(cfg: DictConfig) -> list[list[str]] | None:
    """Every job of a grid sweep (Hydra's basic sweeper) as its overrides, in launch order,
    from the sweep's multirun.yaml; None for other sweepers (an Optuna search has no grid)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(cfg.hydra.sweeper.get("_target_", "")).endswith(("BasicSweeper", "GridSweeper")):
        return None
    params = cfg.hydra.sweeper.get("params") or {}
    words = [f"{k}={v}" for k, v in params.items()] + list(cfg.hydra.overrides.task)
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(words), None)
    return jobs


def short_value(value: str) -> str:
    """Optuna's floats (0.00031622776601683794) shortened for a folder name or a table."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 8 or not re.search(r"[.eE]", value) else f"{number:.4g}"


def job_name(overrides: Sequence[str], keys: Sequence[str] | None = None) -> str | None:
    """A job's folder name from its swept values (None when nothing is known to be swept)."""
    values = swept_values(list(overrides), keys)
    if not values:
        return None
    name = ",".join(f"{k}={short_value(v)}" for k, v in values.items())
    return re.sub(r"[/\\\s:]+", "_", name)[:200]


def job_dirname(num: Any, overrides: Sequence[str] | None, sweep_dir: str) -> str:
    """`optimizer.lr=0.01,model.activation=tanh` for a sweep job; the job number when nothing
    is known to be swept. A name already on disk (a repeated Optuna trial, a resumed study)
    gets `-1`, `-2`, ..."""
    from mnistx import run_folder

    name = job_name(list(overrides or []))
    if name is None:
        return str(num)
    memo = (sweep_dir, f"{num}:{name}")
    if memo in _claimed:
        return _claimed[memo]
    os.makedirs(sweep_dir, exist_ok=True)
    candidate, n = name, 0
    while True:
        if run_folder.started_by_this_job(Path(sweep_dir, candidate)):
            _claimed[memo] = candidate  # requeued by SLURM: its own folder again
            run_folder.reclaim(Path(sweep_dir, candidate))
            return candidate
        try:
            os.mkdir(os.path.join(sweep_dir, candidate))
            _claimed[memo] = candidate
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{name}-{n}"


def register_sweeper() -> None:
    """Make conf/hydra/sweeper/'s sweepers (grid, optuna) known to Hydra, which does not discover
    the plugins of an editable install (Hydra #2359)."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # first: its scan executes BasicSweeper's module again ...
    from hydra_plugins.mnistx_sweeper import GridSweeper, OptunaSweeper  # ... subclasses it

    plugins.register(GridSweeper)
    plugins.register(OptunaSweeper)


# --- finishing a sweep cut short ---------------------------------------------------------

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
    from mnistx import run_folder

    folders: dict[tuple[str, ...], list[Path]] = {}
    for folder in run_folder.sweep_jobs(sweep_dir):
        try:
            recorded = tuple(str(o) for o in OmegaConf.load(folder / run_folder.OVERRIDES))
        except Exception:  # no readable command line: not one of this grid's jobs
            continue
        folders.setdefault(recorded, []).append(folder)
    plan = []
    for overrides in grid:
        matches = folders.get(tuple(overrides)) or []
        folder = matches.pop(0) if matches else None
        name = job_name(overrides, keys)
        if (
            folder is None
            and name
            and (sweep_dir / name).is_dir()
            and not any((sweep_dir / name).iterdir())
        ):
            folder = sweep_dir / name  # claimed, then the sweep stopped before the job began
        if folder is not None and run_folder.is_finished(run_folder.read_metrics(folder)):
            state = FINISHED
        elif folder is not None and (folder / run_folder.LAST).is_file():
            state = CONTINUE
        else:
            state = START
        plan.append(PlannedJob(list(overrides), folder, state))
    return plan


def hydra_quoted(value: str) -> str | None:
    """`value` quoted for Hydra's override parser (None when it holds both quotes)."""
    for quote in ("'", '"'):
        if quote not in value and "\\" not in value:
            return f"{quote}{value}{quote}"
    return None


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (strings quoted when Hydra would split them)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and not re.fullmatch(r"[\w./@+-]+", value):
        return hydra_quoted(value) or value
    return str(value)


def rerun_overrides(job: PlannedJob, stamp: str | None = None) -> list[str]:
    """The job's overrides for the launcher: into its own folder when it has one, keeping the
    config Hydra saved there the first time (this run's goes to .hydra/resumed-<time>/)."""
    from mnistx.run_folder import CONFIG

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


class SweepCallback(Callback):
    """Publishes the swept keys to the jobs, and writes the comparison report at the end."""

    def __init__(self, report: bool = True) -> None:
        self.report = report

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEPT_ENV] = ",".join(swept_keys_of(config))
        if "SlurmLauncher" in str(config.hydra.launcher.get("_target_", "")):
            from mnistx.slurm import follow_jobs

            follow_jobs()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistx.compare import compare

        if not self.report:
            return

        try:
            compare([str(config.hydra.sweep.dir)])
        except Exception as e:  # the runs are safe on disk; the report can be made again
            log.error(
                "Could not write the comparison report (%s). Make it again with: "
                "python -m mnistx.compare %s",
                e,
                config.hydra.sweep.dir,
            )
