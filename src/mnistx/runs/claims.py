"""Claiming folders: the one place a fresh folder is made for a run, a sweep or a sweep job.

A claim is an atomic mkdir: `path`, or `path-1`, `path-2`, ... when it is taken, so two runs
started in the same second, or two workers of a shared study that sample the same values,
never share a folder. Claims are made where Hydra has decided the folder and has not written
yet: the run's and the sweep's folder when the run or the multirun starts (`FolderCallback`,
conf/train.yaml's hydra.callbacks.folders), each job's when a sweeper launches it
(`launch`). The resolvers (mnistx.runs.resolvers) only name folders, so composing
or printing a config (`--cfg`, `--help`, notebooks) creates nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mnistx.compat.hydra import is_basic_launcher
from mnistx.config.overrides import hydra_quoted, job_name, override_key
from mnistx.errors import UserError
from mnistx.runs.guard import new_folder
from mnistx.runs.resolvers import FRESH_FOLDER_RESOLVERS, reused_run_folder
from mnistx.runs.sweep_record import swept_keys

SUBDIR = "hydra.sweep.subdir"
# The folder of each run or sweep this process has started, the latest last (mnistx.api
# returns it).
RAN_IN: list[Path] = []
FOLD = "cv.fold"


def claim_folder(path: str) -> str:
    """A new folder at `path`, or `path-1`, `path-2`, ... if taken."""
    try:
        return str(new_folder(Path(os.path.dirname(path) or "."), os.path.basename(path)))
    except PermissionError as e:
        raise UserError(
            f"Cannot create the run folder {path}: {e.strerror} for {e.filename}. Run from a "
            "folder you can write to, or send the outputs elsewhere with "
            "hydra.run.dir=<folder> (hydra.sweep.dir=<folder> for -m)."
        ) from None


def launch(launcher: Any, sweep_dir: Path, batch: Sequence[Sequence[str]], first: int) -> Any:
    """Hydra's `launcher.launch(batch, first)`, each job in the folder claimed for it: all at
    once for a launcher that starts them together (joblib, SLURM); each just before it starts
    for Hydra's basic launcher, which runs them one after the other, so a sweep stopped early
    leaves no folder for a job that never began."""
    if not is_basic_launcher(launcher):
        return launcher.launch(with_job_folders(sweep_dir, batch), initial_job_idx=first)
    results: list[Any] = []
    for i, job in enumerate(batch):
        claimed = with_job_folders(sweep_dir, [job])
        results.extend(launcher.launch(claimed, initial_job_idx=first + i))
    return results


def with_job_folders(sweep_dir: Path, batch: Sequence[Sequence[str]]) -> list[list[str]]:
    """Each job of a batch about to be launched, with its folder claimed under `sweep_dir`
    and named in its overrides (`hydra.sweep.subdir=<name>`): its swept values
    (`optimizer.lr=0.01,model.activation=tanh`), `-1`, `-2`, ... when a folder of that name
    exists (a repeated Optuna trial, a resumed study). A job that names its folder already (a
    sweep being finished) keeps it; one with nothing swept is named by its number."""
    # A fold of a cross-validation is named too (an Optuna trial's jobs differ in it alone).
    keys = [*(k for k in swept_keys(sweep_dir) if k != FOLD), FOLD]
    jobs = []
    for job in batch:
        job = list(job)
        name = job_name(job, keys)
        if name is not None and not any(override_key(o) == SUBDIR for o in job):
            claimed = os.path.basename(claim_folder(str(sweep_dir / _quotable(name))))
            job.append(f"{SUBDIR}={hydra_quoted(claimed)}")
        jobs.append(job)
    return jobs


def _quotable(name: str) -> str:
    """`name`, unless it holds both kinds of quote (Hydra could not read it back)."""
    return name if hydra_quoted(name) is not None else re.sub(r"['\"\\]", "_", name)


class FolderCallback(Callback):
    """Claims the run's folder (on_run_start) or the sweep's (on_multirun_start) that
    mnistx's resolvers named, and pins it in the config Hydra goes on with; folders named
    plainly (hydra.run.dir=<folder>, a resume's, a requeued job's) are taken as they are."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run = config.hydra.run
        if _names_fresh_folder(run, "dir"):
            folder = str(run.dir)
            if reused_run_folder(config.get("resume"), config.get("ckpt_path"), folder) is None:
                _pin(run, "dir", claim_folder(folder))
        RAN_IN.append(Path(str(run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = config.hydra.sweep
        if _names_fresh_folder(sweep, "dir"):
            folder = claim_folder(str(sweep.dir))
            _pin(sweep, "dir", folder)
            # The jobs' configs are composed again from the command line and Hydra's
            # overrides: name the claimed folder there too (a folder `-1` would be lost).
            quoted = hydra_quoted(folder)
            if quoted is not None:
                overrides = config.hydra.overrides
                with read_write(overrides):
                    overrides.hydra.append(f"hydra.sweep.dir={quoted}")
        RAN_IN.append(Path(str(sweep.dir)))


def _names_fresh_folder(node: DictConfig, key: str) -> bool:
    """Whether `node.key` is named by one of mnistx's fresh-folder resolvers."""
    raw = OmegaConf.to_container(node, resolve=False).get(key)  # type: ignore[union-attr]
    return isinstance(raw, str) and any(f"${{{r}:" in raw for r in FRESH_FOLDER_RESOLVERS)


def _pin(node: DictConfig, key: str, value: str) -> None:
    with read_write(node), open_dict(node):
        node[key] = value
