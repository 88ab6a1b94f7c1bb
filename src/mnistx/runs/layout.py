"""A run folder's layout, and finding a run (or its checkpoint) from what a user typed.

    .hydra/config.yaml, overrides.yaml   the composed config and the command line (Hydra)
    .hydra/resumed-<time>/               the same for each continuation
    metrics.json                         status (ok | failed | skipped | interrupted | pruned)
    checkpoints/best.ckpt, last.ckpt     best by val/acc; the latest validated epoch
    eval/<checkpoint>/                   what `python -m mnistx.eval` writes
    export/<checkpoint>-<format>/        what `python -m mnistx.export` writes
    trackers.json, metrics.csv           the MLflow / W&B run ids; logger=csv's table
    wandb/offline-run-*/                 logger=wandb's offline run
    .lock                                held (flock) while a process trains in the folder

A folder that holds a run is written only by that run: by its own process or a continuation
of it (`resume=`); an evaluation or a prediction writes beside it, never over its files.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from mnistx.runs.env import peers_share_folder

METRICS = "metrics.json"


CONFIG = Path(".hydra") / "config.yaml"


OVERRIDES = Path(".hydra") / "overrides.yaml"


CHECKPOINTS = "checkpoints"


LAST = Path(CHECKPOINTS) / "last.ckpt"


BEST = Path(CHECKPOINTS) / "best.ckpt"


EVAL = "eval"


EXPORT = "export"


OUTPUTS = "outputs"  # conf/train.yaml's run and sweep folders are made under it


LOCK = ".lock"


SWEEP_CONFIG = "multirun.yaml"
TRACKERS = "trackers.json"  # the tracked runs' ids (MLflow, W&B), which a resume continues
METRICS_CSV = "metrics.csv"  # logger=csv  # written by Hydra into a sweep folder


def sweep_of(folder: Path) -> Path | None:
    """The sweep folder `folder` is a job of (it holds the sweep's multirun.yaml), or None."""
    parent = folder.parent
    return parent if (parent / SWEEP_CONFIG).is_file() and folder != parent else None


def folder_of(resume: str | None, ckpt_path: str | None) -> Path | None:
    """The run folder a resume names: `resume=` itself, or a checkpoint's grandparent."""
    if resume:
        return Path(os.path.expanduser(str(resume)))
    if ckpt_path:
        return Path(os.path.expanduser(str(ckpt_path))).resolve().parent.parent
    return None


def holds_run(folder: Path) -> bool:
    """Whether a run has written into `folder` (its results, checkpoints or config)."""
    if (folder / METRICS).exists() or any((folder / CHECKPOINTS).glob("*.ckpt")):
        return True
    return (folder / CONFIG).exists() and not peers_share_folder()


def sweep_jobs(folder: Path) -> list[Path]:
    """The job folders of a sweep folder (empty when `folder` is not one)."""
    if not folder.is_dir() or (folder / CONFIG).exists():
        return []
    return sorted(p for p in folder.iterdir() if (p / CONFIG).exists())


def resume_arg(folder: Path | str) -> str:
    """`resume=<folder>` as one bash word that Hydra's parser reads back as the path.

    Sweep job folders contain `=` and `,` (optimizer.lr=0.01,model.activation=tanh), which
    Hydra would read as another override or a sweep list, so such a path is quoted for Hydra
    and the whole word again for the shell."""
    path = str(folder)
    if all(c.isalnum() or c in "/._-+@%" for c in path):
        return f"resume={path}"
    if not set(path) & set("\"$`\\!'"):
        return f"\"resume='{path}'\""  # e.g. "resume='outputs/.../optimizer.lr=0.01'"
    return shlex.quote("resume='" + path.replace("'", "\\'") + "'")


def resume_command(folder: Path | str, *extra: str) -> str:
    return " ".join(["python -m mnistx.train", resume_arg(folder), *extra])
