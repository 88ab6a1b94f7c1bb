"""The config resolvers that name a run's folder (conf/train.yaml's
hydra.run and hydra.sweep keys; mnistx.runs.compose registers them).

Each claims its folder atomically (mkdir), so two runs started in the same second, or the
parallel jobs of a sweep, never share one; a requeued SLURM job or a resume gets its own again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistx.compat.omegaconf import resolving_for_a_merge
from mnistx.config.overrides import job_name
from mnistx.errors import UserError
from mnistx.runs.env import peers_share_folder, requeued
from mnistx.runs.layout import LOCK, folder_of
from mnistx.runs.lock import started_by_this_job

_claimed: dict[str, str] = {}


_reclaimed: set[str] = set()  # folders requeued SLURM jobs found again
_claimed_jobs: dict[tuple[str, str], str] = {}  # (sweep folder, job) -> its folder's name


def _overwritten_by_a_merge() -> bool:
    """Whether OmegaConf is resolving a value only because a config merge is about to replace
    it: it looks at the old value first (to see whether it is a node), which would claim a
    folder for nothing each time a preset sets hydra.run.dir or hydra.sweep.dir (debug=...,
    hparams_search=optuna)."""
    return resolving_for_a_merge()


def unique_dir(path: str) -> str:
    """Claim `path`, or `path-1`, `path-2`, ... if taken; mkdir is atomic, so racing runs differ.

    Hydra resolves the run dir more than once, on copies of the config; the answer is
    remembered per process so a run claims exactly one folder.
    """
    if _overwritten_by_a_merge():
        return path
    if path in _claimed:
        return _claimed[path]
    candidate, n = path, 0
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        while True:
            try:
                os.mkdir(candidate)
                _claimed[path] = candidate
                return candidate
            except FileExistsError:
                n += 1
                candidate = f"{path}-{n}"
    except PermissionError as e:
        raise UserError(
            f"Cannot create the run folder {candidate}: {e.strerror} for {e.filename}. Run "
            "from a folder you can write to, or send the outputs elsewhere with "
            "hydra.run.dir=<folder> (hydra.sweep.dir=<folder> for -m)."
        ) from None


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """Hydra's run folder: the resumed run's own, or a fresh unique one. The tasks of one
    multi-task SLURM step (`srun -N2 python -m mnistx.train ...`: the ranks of one DDP run)
    start at slightly different times, so they share one named by the step instead. A job
    that SLURM requeued finds the folder it had (`started_by_this_job`)."""
    if _overwritten_by_a_merge():
        return new
    existing = folder_of(resume, ckpt_path)
    if existing is not None:
        return str(existing)
    if requeued():
        outputs = Path(new).parent.parent  # outputs/<date>/<time>
        for lock in sorted(outputs.glob(f"*/*/{LOCK}")):
            if started_by_this_job(lock.parent):
                return reclaim(lock.parent)
    if peers_share_folder() and os.environ.get("SLURM_JOB_ID"):
        step = f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
        shared = os.path.join(os.path.dirname(new), step)
        os.makedirs(shared, exist_ok=True)
        return shared
    return unique_dir(new)


def config_subdir(
    resume: str | None, ckpt_path: str | None, stamp: str, output_dir: str | None = None
) -> str:
    """Where Hydra saves the composed config: a resume, and a job SLURM requeued into the
    folder it had (`reclaim`), keep the run's original .hydra/."""
    again = output_dir is not None and os.path.abspath(output_dir) in _reclaimed
    if folder_of(resume, ckpt_path) is None and not again:
        return ".hydra"
    return f".hydra/resumed-{stamp}"


def reclaim(folder: str | Path) -> str:
    """`folder` is this requeued SLURM job's own again (`started_by_this_job`)."""
    _reclaimed.add(os.path.abspath(folder))
    return str(folder)


def job_dirname(num: Any, overrides: Sequence[str] | None, sweep_dir: str) -> str:
    """`optimizer.lr=0.01,model.activation=tanh` for a sweep job; the job number when nothing
    is known to be swept. A name already on disk (a repeated Optuna trial, a resumed study)
    gets `-1`, `-2`, ..."""

    name = job_name(list(overrides or []))
    if name is None:
        return str(num)
    memo = (sweep_dir, f"{num}:{name}")
    if memo in _claimed_jobs:
        return _claimed_jobs[memo]
    os.makedirs(sweep_dir, exist_ok=True)
    candidate, n = name, 0
    while True:
        if started_by_this_job(Path(sweep_dir, candidate)):
            _claimed_jobs[memo] = candidate  # requeued by SLURM: its own folder again
            reclaim(Path(sweep_dir, candidate))
            return candidate
        try:
            os.mkdir(os.path.join(sweep_dir, candidate))
            _claimed_jobs[memo] = candidate
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{name}-{n}"
