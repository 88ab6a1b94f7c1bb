"""The config resolvers that name a run's folder (conf/train.yaml's hydra.run and
hydra.sweep keys; mnistx.runs.compose registers them).

They only name: a fresh folder is claimed (made, `-1` when taken) by mnistx.runs.claims when
the run, the sweep or the job starts, so resolving a config creates nothing. A resume names
its run's own folder, and a job that SLURM requeued finds the folder it had.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistx.config.overrides import job_name
from mnistx.runs.env import peers_share_folder, requeued
from mnistx.runs.layout import LOCK, folder_of
from mnistx.runs.lock import started_by_this_job
from mnistx.runs.sweep_record import swept_keys

# The resolvers whose folder is claimed fresh when the run or sweep starts.
FRESH_FOLDER_RESOLVERS = ("run_dir", "unique_dir")


def unique_dir(path: str) -> str:
    """A fresh folder at `path` (`-1`, `-2`, ... if taken when it is claimed)."""
    return path


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """Hydra's run folder: the resumed run's own, or a fresh one at `new`."""
    return reused_run_folder(resume, ckpt_path, new) or new


def reused_run_folder(resume: str | None, ckpt_path: str | None, new: str) -> str | None:
    """The folder a run goes on in instead of a fresh one at `new`, if any: the resumed
    run's; a job that SLURM requeued finds the folder it had (`started_by_this_job`); the
    tasks of one multi-task SLURM step (`srun -N2 python -m mnistx.train ...`: the ranks of
    one DDP run) start at slightly different times, so they share one named by the step."""
    existing = folder_of(resume, ckpt_path)
    if existing is not None:
        return str(existing)
    if requeued():
        outputs = Path(new).parent.parent  # outputs/<date>/<time>
        for lock in sorted(outputs.glob(f"*/*/{LOCK}")):
            if started_by_this_job(lock.parent):
                return str(lock.parent)
    if peers_share_folder() and os.environ.get("SLURM_JOB_ID"):
        step = f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
        return os.path.join(os.path.dirname(new), step)
    return None


def config_subdir(
    resume: str | None, ckpt_path: str | None, stamp: str, output_dir: str | None = None
) -> str:
    """Where Hydra saves the composed config: a resume, and a job SLURM requeued into the
    folder it had, keep the run's original .hydra/."""
    again = output_dir is not None and started_by_this_job(Path(output_dir))
    if folder_of(resume, ckpt_path) is None and not again:
        return ".hydra"
    return f".hydra/resumed-{stamp}"


def job_dirname(num: Any, overrides: Sequence[str] | None, sweep_dir: str) -> str:
    """`optimizer.lr=0.01,model.activation=tanh` for a sweep job; the job number when nothing
    is known to be swept. (mnistx's sweepers claim the folder and name it in the job's
    overrides: hydra.sweep.subdir, so this is what other sweepers get.)"""
    name = job_name(list(overrides or []), swept_keys(Path(sweep_dir)))
    return str(num) if name is None else name
