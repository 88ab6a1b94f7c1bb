"""Catch bad config values before any data is loaded or any model is built."""

from __future__ import annotations

from omegaconf import DictConfig

from mnistx.errors import UnavailableError, UserError


def _positive(value, key: str, example: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{key}={value} must be a positive number. Example: {key}={example}")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError for values that would fail late or silently train nonsense."""
    _positive(cfg.optimizer.get("lr"), "optimizer.lr", "1e-3")
    fused = cfg.optimizer.get("fused")
    if fused is not None and not isinstance(fused, bool):
        raise UserError(
            f"optimizer.fused={fused} must be true or false (torch's fused implementation of "
            "the optimizer, or its per-parameter one). Example: optimizer.fused=false"
        )
    for key in ("batch_size", "eval_batch_size"):
        value = cfg.data.get(key)
        if not isinstance(value, int) or value < 1:
            raise UserError(
                f"data.{key}={value} must be a positive integer. Example: data.{key}=128"
            )
    val_size = cfg.data.get("val_size")
    if not isinstance(val_size, int) or val_size < 1:
        raise UserError(
            f"data.val_size={val_size} must be a positive integer: the number of official "
            "training images held out for validation. Example: data.val_size=5000"
        )
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise UserError(
            f"trainer.max_epochs={epochs} must be an integer >= 1. Example: trainer.max_epochs=10"
        )
    ema = (cfg.get("callbacks") or {}).get("ema")
    decay = ema.get("decay") if ema else 0.0
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise UserError(
            f"callbacks.ema.decay={decay} must be in [0, 1): the weight kept by the moving "
            "average each step (0 turns it off). Example: callbacks.ema.decay=0.999"
        )
    if cfg.get("test_checkpoint") not in ("best", "last"):
        raise UserError(
            f"test_checkpoint={cfg.get('test_checkpoint')} must be best (the checkpoint with the "
            "highest val/acc) or last (the final weights). Example: test_checkpoint=last"
        )
    if cfg.get("threads") is not None and (not isinstance(cfg.threads, int) or cfg.threads < 1):
        raise UserError(f"threads={cfg.threads} must be a positive integer or null.")


def check_accelerator(accelerator: str) -> None:
    """A clear error for an accelerator this machine does not have (Lightning's is a traceback)."""
    import torch

    name = str(accelerator).lower()
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UnavailableError(
            f"trainer.accelerator={accelerator}: gpu not available on this machine (torch sees no "
            "CUDA device). Use trainer.accelerator=cpu, or auto to pick what is there."
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise UnavailableError(
            f"trainer.accelerator={accelerator}: mps not available on this machine (it needs "
            "Apple silicon with macOS 12.3+). Use trainer.accelerator=cpu, or auto."
        )


def check_devices(accelerator: str, devices: object) -> None:
    """More devices than the machine has: one line instead of Lightning's traceback (GPUs) or
    hundreds of competing processes (CPU)."""
    import os

    import torch

    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        return  # "auto", device lists and bad values are Lightning's to judge
    name = str(accelerator).lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        available, what = torch.cuda.device_count(), "GPU(s)"
    elif name in ("cpu", "auto"):
        available, what = os.cpu_count() or 1, "CPU cores"
    else:
        return
    if devices > available:
        raise UserError(
            f"trainer.devices={devices}, but this machine has {available} {what}. Use "
            f"trainer.devices={available} or fewer (on CPUs each device is one process)."
        )
