"""The config resolvers that name a run's folder (conf/train.yaml's hydra.run and
hydra.sweep keys; mnistx.runs.compose registers them), and the one object that claims them.

Every folder is claimed atomically (mkdir) by `CLAIMS`, so two runs started in the same
second, or the parallel jobs of a sweep, never share one; a requeued SLURM job or a resume
gets its own again. Hydra resolves a run dir more than once, on copies of the config, so a
claim is remembered for the process: a run claims exactly one folder. The resolvers only
name what to claim; `CLAIMS.forget()` gives the view of a new process (tests that run the
command line in-process).
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
from mnistx.runs.sweep_record import swept_keys


class FolderClaims:
    """The run and sweep-job folders this process has claimed, and those it found again
    (a requeued SLURM job's)."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.runs: dict[str, str] = {}  # asked-for path -> the folder claimed for it
        self.jobs: dict[tuple[str, str], str] = {}  # (sweep folder, job) -> its folder's name
        self.found_again: set[str] = set()  # absolute folders requeued jobs took back

    def claim(self, path: str) -> str:
        """`path`, or `path-1`, `path-2`, ... if taken (mkdir is atomic: racing runs differ)."""
        if path in self.runs:
            return self.runs[path]
        candidate, n = path, 0
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            while True:
                try:
                    os.mkdir(candidate)
                    self.runs[path] = candidate
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

    def claim_job(self, num: Any, name: str, sweep_dir: str) -> str:
        """A sweep job's folder name under `sweep_dir`: `name`, or `name-1`, ... if taken; a
        requeued job's own folder again."""
        memo = (sweep_dir, f"{num}:{name}")
        if memo in self.jobs:
            return self.jobs[memo]
        os.makedirs(sweep_dir, exist_ok=True)
        candidate, n = name, 0
        while True:
            if started_by_this_job(Path(sweep_dir, candidate)):
                self.jobs[memo] = candidate  # requeued by SLURM: its own folder again
                self.find_again(Path(sweep_dir, candidate))
                return candidate
            try:
                os.mkdir(os.path.join(sweep_dir, candidate))
                self.jobs[memo] = candidate
                return candidate
            except FileExistsError:
                n += 1
                candidate = f"{name}-{n}"

    def find_again(self, folder: str | Path) -> str:
        """`folder` is this requeued SLURM job's own again (`started_by_this_job`)."""
        self.found_again.add(os.path.abspath(folder))
        return str(folder)

    def was_found_again(self, folder: str) -> bool:
        return os.path.abspath(folder) in self.found_again


CLAIMS = FolderClaims()


def unique_dir(path: str) -> str:
    """A fresh folder at `path` (`-1`, `-2`, ... if taken). OmegaConf also resolves a value
    that a config merge is about to replace (to see whether it is a node): that claims
    nothing (a preset setting hydra.run.dir or hydra.sweep.dir: debug=..., optuna)."""
    return path if resolving_for_a_merge() else CLAIMS.claim(path)


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """Hydra's run folder: the resumed run's own, or a fresh unique one. The tasks of one
    multi-task SLURM step (`srun -N2 python -m mnistx.train ...`: the ranks of one DDP run)
    start at slightly different times, so they share one named by the step instead. A job
    that SLURM requeued finds the folder it had (`started_by_this_job`)."""
    if resolving_for_a_merge():
        return new
    existing = folder_of(resume, ckpt_path)
    if existing is not None:
        return str(existing)
    if requeued():
        outputs = Path(new).parent.parent  # outputs/<date>/<time>
        for lock in sorted(outputs.glob(f"*/*/{LOCK}")):
            if started_by_this_job(lock.parent):
                return CLAIMS.find_again(lock.parent)
    if peers_share_folder() and os.environ.get("SLURM_JOB_ID"):
        step = f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
        shared = os.path.join(os.path.dirname(new), step)
        os.makedirs(shared, exist_ok=True)
        return shared
    return CLAIMS.claim(new)


def config_subdir(
    resume: str | None, ckpt_path: str | None, stamp: str, output_dir: str | None = None
) -> str:
    """Where Hydra saves the composed config: a resume, and a job SLURM requeued into the
    folder it had, keep the run's original .hydra/."""
    again = output_dir is not None and CLAIMS.was_found_again(output_dir)
    if folder_of(resume, ckpt_path) is None and not again:
        return ".hydra"
    return f".hydra/resumed-{stamp}"


def job_dirname(num: Any, overrides: Sequence[str] | None, sweep_dir: str) -> str:
    """`optimizer.lr=0.01,model.activation=tanh` for a sweep job; the job number when nothing
    is known to be swept. A name already on disk (a repeated Optuna trial, a resumed study)
    gets `-1`, `-2`, ..."""
    name = job_name(list(overrides or []), swept_keys(Path(sweep_dir)))
    return str(num) if name is None else CLAIMS.claim_job(num, name, sweep_dir)
