"""Catch bad config values before anything is built.

Every key is checked for its kind first (mnistx.config.kinds). mnistx's own components own
their ranges and check them when built (the networks and losses, the data module, the
callbacks of training.callbacks and run_pictures), raising UserError naming the key. Checked
here: the run's own keys (seed, threads, test_checkpoint, target_acc), the settings of other
libraries' objects built from the config (torch's optimizers and schedulers, Lightning's
Trainer and checkpoint callback: their own errors would be tracebacks), and rules that span
keys.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig

from mnistx.config.kinds import check_kinds, in_range, show
from mnistx.config.trainer_checks import check_trainer
from mnistx.errors import UserError


def _positive(value: object, key: str, example: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{key}={value} must be a positive number. Example: {key}={example}")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError for values that would fail late or silently train nonsense."""
    check_kinds(cfg)
    in_range(
        cfg.get("seed"),
        "seed",
        0,
        2**32 - 1,
        "an integer from 0 to 4294967295 (it "
        "seeds the weights, the validation split and the batch order)",
        "42",
        integer=True,
        closed_high=True,
    )
    _positive(cfg.optimizer.get("lr"), "optimizer.lr", "1e-3")
    for key, example in (("weight_decay", "1e-4"), ("momentum", "0.9"), ("eps", "1e-8")):
        if cfg.optimizer.get(key) is not None:
            in_range(cfg.optimizer[key], f"optimizer.{key}", 0, None, "a number >= 0", example)
    check_trainer(cfg.trainer)
    fused = cfg.optimizer.get("fused")
    if fused is not None and not isinstance(fused, bool):
        raise UserError(
            f"optimizer.fused={fused} must be true or false (torch's fused implementation of "
            "the optimizer, or its per-parameter one). Example: optimizer.fused=false"
        )
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UserError(
            f"trainer.max_epochs={epochs} must be an integer >= 1. Example: trainer.max_epochs=10"
        )
    if cfg.get("test_checkpoint") not in ("best", "last"):
        raise UserError(
            f"test_checkpoint={cfg.get('test_checkpoint')} must be best (the checkpoint with the "
            "highest val/acc) or last (the final weights). Example: test_checkpoint=last"
        )
    if cfg.get("threads") is not None:
        in_range(
            cfg.threads,
            "threads",
            1,
            None,
            "a positive integer (torch threads), or null for one per core",
            "2",
            integer=True,
        )
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if cores and cfg.threads > cores:
            raise UserError(
                f"threads={cfg.threads} is more than the {cores} cores this process may use; "
                "extra threads only compete for them and slow training down. Use "
                f"threads={cores} or fewer, or threads=null for one per core."
            )
    if cfg.get("target_acc") is not None:
        in_range(
            cfg.target_acc,
            "target_acc",
            1e-300,
            1,
            "an accuracy in (0, 1], or null to train for trainer.max_epochs",
            "0.99",
            closed_high=True,
        )
    _check_callbacks(cfg.get("callbacks") or {})
    _check_scheduler(cfg)


# scheduler.<key>: lowest value, highest (excluded), what it means, an example, integer.
_SCHEDULER_RANGES = (
    ("step_size", 1, None, "a positive integer: epochs between learning-rate drops", "3", True),
    ("gamma", 1e-300, None, "a positive factor (below 1 lowers the learning rate)", "0.5", False),
    ("pct_start", 0, 1, "in [0, 1): the share of the steps spent warming up", "0.25", False),
    ("max_lr", 1e-300, None, "a positive learning rate", "0.01", False),
    ("eta_min", 0, None, "a number >= 0", "0.0", False),
    ("T_max", 1, None, "a positive integer (epochs)", "10", True),
)


def _check_scheduler(cfg: DictConfig) -> None:
    sched = cfg.get("scheduler") or {}
    for key, low, high, what, example, integer in _SCHEDULER_RANGES:
        if sched.get(key) is not None:
            in_range(sched[key], f"scheduler.{key}", low, high, what, example, integer=integer)
    interval = (cfg.get("scheduler") or {}).get("interval")
    if sched.get("_target_") and interval not in ("epoch", "step"):
        raise UserError(
            f"scheduler.interval={show(interval)} must be epoch (the scheduler steps after each "
            "epoch) or step (after each batch). Example: scheduler.interval=epoch"
        )


def _check_callbacks(callbacks: Any) -> None:
    for name, key, low, example in (("model_checkpoint", "save_top_k", -1, "1"),):
        node = callbacks.get(name)
        if node and node.get(key) is not None:
            in_range(
                node[key],
                f"callbacks.{name}.{key}",
                low,
                None,
                f"an integer >= {low}",
                example,
                integer=True,
            )


def check_val_interval(interval: Any, batches: int) -> None:
    """An integer val_check_interval is counted in batches of one epoch (checked once the data
    is there; Lightning would stop with a traceback)."""
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > batches:
        raise UserError(
            f"trainer.val_check_interval={interval} is more batches than one epoch has "
            f"({batches}), so validation would never run. Use at most {batches}, or a fraction "
            "of the epoch such as +trainer.val_check_interval=0.5."
        )
