"""A run folder's layout, and finding a run (or its checkpoint) from what a user typed.

    .hydra/config.yaml, overrides.yaml   the composed config and the command line (Hydra)
    .hydra/resumed-<time>/               the same for each continuation
    metrics.json                         status (ok | failed | skipped | interrupted | pruned)
    checkpoints/best.ckpt, last.ckpt     best by val/acc; the latest validated epoch
    eval/<checkpoint>/                   what `python -m mnistx.eval` writes
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
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError
from mnistx.runs.env import peers_share_folder

METRICS = "metrics.json"


CONFIG = Path(".hydra") / "config.yaml"


OVERRIDES = Path(".hydra") / "overrides.yaml"


CHECKPOINTS = "checkpoints"


LAST = Path(CHECKPOINTS) / "last.ckpt"


BEST = Path(CHECKPOINTS) / "best.ckpt"


EVAL = "eval"


OUTPUTS = "outputs"  # conf/train.yaml's run and sweep folders are made under it


LOCK = ".lock"


SWEEP_CONFIG = "multirun.yaml"
TRACKERS = "trackers.json"  # the tracked runs' ids (MLflow, W&B), which a resume continues
METRICS_CSV = "metrics.csv"  # logger=csv  # written by Hydra into a sweep folder


def load_config(path: Path) -> DictConfig:
    """A saved config (.hydra/config.yaml, a sweep's multirun.yaml): a mapping, or an error."""
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"{path} holds a list, not a config")
    return cfg


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


def check_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's contents, or a clear message for a file that is not a readable mnistx
    checkpoint."""
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"Cannot read checkpoint {ckpt} ({detail[:200]}). It may be truncated or not a "
            "Lightning checkpoint; use another one from the run's checkpoints/ folder."
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state or "mnistx" not in state:
        raise UserError(
            f"{ckpt} is not an mnistx training checkpoint (no model state or mnistx state). "
            "Use the run's checkpoints/last.ckpt."
        )
    return state


def locate(run: str | None, ckpt: str | None) -> tuple[Path, Path]:
    """The run folder (holding .hydra/config.yaml) and the checkpoint to evaluate or predict
    with: `ckpt=` itself, or the run's best.ckpt (last.ckpt when it has no best)."""
    if ckpt:
        ckpt_path = Path(os.path.expanduser(ckpt))
        if not ckpt_path.is_file():
            raise UserError(f"Checkpoint {ckpt_path} does not exist.")
        folder = Path(os.path.expanduser(run)) if run else ckpt_path.resolve().parent.parent
    else:
        folder = Path(os.path.expanduser(str(run)))
        if not folder.is_dir():
            raise UserError(f"Run folder {folder} does not exist. Runs are under outputs/.")
        jobs = sweep_jobs(folder)
        if jobs:
            shown = "\n".join(f"  run={j}" for j in jobs[:10])
            more = f"\n  ... and {len(jobs) - 10} more" if len(jobs) > 10 else ""
            raise UserError(
                f"{folder} is a sweep folder with {len(jobs)} jobs, not one run. Pass one job's "
                f"folder:\n{shown}{more}\n(python -m mnistx.compare {folder} compares them.)"
            )
        found = [p for p in (folder / BEST, folder / LAST) if p.is_file()]
        if not found:
            raise UserError(
                f"No checkpoint in {folder / CHECKPOINTS} (expected best.ckpt or "
                "last.ckpt). Was the run trained with checkpointing on? Or pass ckpt=<file>."
            )
        ckpt_path = found[0]
    check_checkpoint(ckpt_path)
    if not (folder / CONFIG).is_file():
        raise UserError(
            f"{folder} holds no .hydra/config.yaml, so the run's own data and model settings "
            "are unknown. Pass run=<the run folder the checkpoint came from>."
        )
    return folder, ckpt_path


def check_new_file(path: Path, option: str) -> None:
    """A file an inspection writes where the user says: never over a run's own files."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; name a PNG file, e.g. {option} sheet.png")
    if path.exists() and holds_run(path.parent):
        raise UserError(
            f"{option} {path} is one of a run's own files, and a prediction never writes over "
            f"them. Name another file, e.g. {option} sheet.png"
        )


def eval_dir(folder: Path, ckpt: Path, out: str | None) -> Path:
    """Where an evaluation writes: `--out`, or `<run>/eval/<checkpoint name>/`; never over a
    run's own files."""
    if out is None:
        target = folder / EVAL / ckpt.stem
    else:
        target = Path(os.path.expanduser(out))
        if target.exists() and not target.is_dir():
            raise UserError(
                f"--out {target} is a file; --out names a folder for eval.json and the "
                "pictures. Pass a new or existing folder, e.g. --out eval-results"
            )
        if holds_run(target):
            raise UserError(
                f"--out {target} is a run folder, and an evaluation never writes over a run's "
                f"own files. Leave out --out (it then writes to {folder / EVAL / ckpt.stem}) "
                "or name another folder."
            )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot create {target} ({e.strerror}). Pass --out <folder>.") from None
    return target
