"""Runs made by earlier mnistx versions keep working: their saved configs and checkpoints are
read in today's shape, and the keys that moved get a message naming the new ones.

Two things changed: the modules that config `_target_`s name moved into packages, and the
scheduler's keys were flattened (`scheduler.scheduler.T_max` is now `scheduler.T_max`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError

# Old `_target_` -> today's.
MOVED = {
    "mnistx.models.MLP": "mnistx.models.networks.MLP",
    "mnistx.models.CNN": "mnistx.models.networks.CNN",
    "mnistx.losses.": "mnistx.models.losses.",
    "mnistx.augment.": "mnistx.data.augment.",
    "mnistx.datamodule.": "mnistx.data.datamodule.",
    "mnistx.pictures.Pictures": "mnistx.training.run_pictures.Pictures",
    "mnistx.progress.ProgressBar": "mnistx.training.callbacks.progress_bar",
    "lightning.pytorch.callbacks.EMAWeightAveraging": "mnistx.training.callbacks.ema",
}


# TensorBoardLogger's keys, which sat directly under `logger` before there were several.
_TB_KEYS = {"save_dir", "name", "version", "default_hp_metric", "log_graph", "prefix"}


def _target(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    for old, new in MOVED.items():
        if name == old or (old.endswith(".") and name.startswith(old)):
            return new + name[len(old) :] if old.endswith(".") else new
    return name


def _retarget(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _target(v) if k == "_target_" else _retarget(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_retarget(v) for v in node]
    return node


def flat_scheduler(scheduler: dict[str, Any] | None) -> dict[str, Any] | None:
    """`{scheduler: {_target_, ...}, interval}` (before the flattening) -> `{_target_, ...,
    interval}`; a constant learning rate (`scheduler: null`) -> `{_target_: null, interval}`."""
    if not scheduler or "scheduler" not in scheduler:
        return scheduler
    inner = scheduler.get("scheduler") or {"_target_": None}
    return {**inner, "interval": scheduler.get("interval", "epoch")}


def upgrade_hparams(*nodes: dict[str, Any] | None) -> tuple[Any, ...]:
    """A checkpoint's (model, loss, scheduler, augment) hyperparameters in today's shape."""
    model, loss, scheduler, augment = (_retarget(n) if n else n for n in nodes)
    return model, loss, flat_scheduler(scheduler), augment


def upgrade(cfg: DictConfig) -> DictConfig:
    """A run's saved .hydra/config.yaml in today's shape (for resume and eval)."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    new = _retarget(plain)
    if isinstance(new.get("scheduler"), dict):
        new["scheduler"] = flat_scheduler(new["scheduler"])
    old_logger = new.get("logger")
    if isinstance(old_logger, dict) and "_target_" in old_logger:  # one TensorBoardLogger
        node = {k: v for k, v in old_logger.items() if k != "_target_"}
        new["logger"] = {"tensorboard": {"_target_": "mnistx.training.loggers.tensorboard", **node}}
    bar = (new.get("callbacks") or {}).get("progress_bar")
    if isinstance(bar, dict) and "enabled" not in bar:
        bar["enabled"] = "${trainer.enable_progress_bar}"
    if new == plain:
        return cfg
    upgraded = OmegaConf.create(new)
    assert isinstance(upgraded, DictConfig)
    return upgraded


def check_old_keys(overrides: Sequence[str]) -> None:
    """Keys that moved (`scheduler.scheduler.<key>`, TensorBoard's `logger.<key>`) or went
    (`callbacks.lr_monitor`) on a command line: one message naming what to write instead."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.split(".")[:2] == ["callbacks", "lr_monitor"] and not override.startswith("+"):
            raise UserError(
                "callbacks.lr_monitor is gone (mnistx 0.2): every run logs its learning rate "
                "per epoch as train/lr. For Lightning's per-step monitor add it: "
                "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor "
                "+callbacks.lr_monitor.logging_interval=step"
            )
        if key.split(".")[0] == "logger" and key.count(".") == 1 and key.split(".")[1] in _TB_KEYS:
            new = key.replace("logger.", "logger.tensorboard.", 1)
            raise UserError(
                f"{key} is now {new}: each tracker has its own keys under logger.<name> "
                f"(mnistx 0.2). Write {new}={override.split('=', 1)[-1]}"
            )
        if key == "scheduler.scheduler" or key.startswith("scheduler.scheduler."):
            new = key.replace("scheduler.scheduler", "scheduler", 1)
            value = override.split("=", 1)[1] if "=" in override else "..."
            raise UserError(
                f"{key} is now {new}: the scheduler's keys sit directly under scheduler "
                f"(mnistx 0.2). Write {new}={value}"
                + (
                    " (scheduler=none for a constant learning rate)."
                    if key == "scheduler.scheduler"
                    else "."
                )
            )
