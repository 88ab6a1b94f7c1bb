"""Continuing an interrupted run: `python -m mnistx.train resume=<run dir>` (or ckpt_path=).

The run goes on in its own folder, with its own saved config (.hydra/config.yaml), from its
last.ckpt; Lightning restores the weights, optimizer, scheduler, loop counters and callbacks,
and the module restores what Lightning does not (best-so-far, curves, RNG). Batch order is a
function of (seed, epoch), so the resumed epochs see the same batches as an uninterrupted run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError
from mnistx.run_dir import unique_dir
from mnistx.sweep import override_key

log = logging.getLogger("mnistx")
# Keys the resume command line may still change; every other setting is the run's own.
ADJUSTABLE = ("trainer.max_epochs", "resume", "ckpt_path")


def _run_of(resume: str | None, ckpt_path: str | None) -> Path | None:
    if resume:
        return Path(resume)
    if ckpt_path:
        return Path(ckpt_path).resolve().parent.parent
    return None


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """Hydra's run folder: the resumed run's own, or a fresh unique one."""
    existing = _run_of(resume, ckpt_path)
    return str(existing) if existing is not None else unique_dir(new)


def config_subdir(resume: str | None, ckpt_path: str | None, stamp: str) -> str:
    """Where Hydra saves the composed config: a resume keeps the run's original .hydra/."""
    return ".hydra" if _run_of(resume, ckpt_path) is None else f".hydra/resumed-{stamp}"


def resumed(cfg: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, Path] | None:
    """The run's own config (with the adjustable overrides applied) and the checkpoint to
    continue from; None when this is not a resume."""
    folder = _run_of(cfg.get("resume"), cfg.get("ckpt_path"))
    if folder is None:
        return None
    saved = folder / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise UserError(
            f"resume={folder}: not a run folder (no .hydra/config.yaml). Pass the folder of a "
            "run started with python -m mnistx.train, e.g. resume=outputs/2026-11-23/14-02-11"
        )
    ckpt = Path(cfg.ckpt_path) if cfg.get("ckpt_path") else folder / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise UserError(
            f"No checkpoint to resume from: {ckpt} does not exist (the run stopped before its "
            "first epoch ended, or ran without checkpointing). Start it again instead."
        )
    check_checkpoint(ckpt)
    own = OmegaConf.load(saved)
    ignored = [o for o in overrides if override_key(o) not in ADJUSTABLE]
    if ignored:
        log.warning("Resuming with the run's own config; ignoring %s", " ".join(ignored))
    for o in overrides:
        if override_key(o) == "trainer.max_epochs":
            own.trainer.max_epochs = OmegaConf.create({"v": o.split("=", 1)[1]}).v
    own.output_dir = str(folder)
    own.resume, own.ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    return own, ckpt


def check_checkpoint(ckpt: Path) -> None:
    """A clear message for a file that is not a readable mnistx checkpoint."""
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
