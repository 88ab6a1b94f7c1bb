"""The Trainer settings users set most, and the accelerator and devices asked for, checked
before Lightning builds anything (its own errors for these are tracebacks, or come late)."""

from __future__ import annotations

from omegaconf import DictConfig

from mnistx.config.kinds import in_range, show
from mnistx.errors import UnavailableError, UserError


def check_trainer(trainer: DictConfig) -> None:
    """The Trainer arguments a user sets most (Lightning's own errors for these are
    tracebacks, some only after the data is loaded)."""
    for key, example in (
        ("accumulate_grad_batches", "4"),
        ("check_val_every_n_epoch", "1"),
        ("log_every_n_steps", "50"),
    ):
        if trainer.get(key) is not None:
            in_range(
                trainer[key], f"trainer.{key}", 1, None, "a positive integer", example, integer=True
            )
    _check_positive_amounts(trainer)
    if trainer.get("num_sanity_val_steps") is not None and trainer.num_sanity_val_steps != -1:
        in_range(
            trainer.num_sanity_val_steps,
            "trainer.num_sanity_val_steps",
            0,
            None,
            "an integer >= 0 (or -1: the whole validation set)",
            "2",
            integer=True,
        )
    if trainer.get("gradient_clip_val") is not None:
        in_range(
            trainer.gradient_clip_val,
            "trainer.gradient_clip_val",
            0,
            None,
            "a number >= 0 (0 turns clipping off)",
            "1.0",
        )
    interval = trainer.get("val_check_interval")
    if interval is not None:
        in_range(
            interval,
            "trainer.val_check_interval",
            0,
            None,
            "a number of training batches (an integer), or a fraction of an epoch in (0, 1]",
            "0.5",
        )
        if isinstance(interval, float) and not 0 < interval <= 1:
            raise UserError(
                f"trainer.val_check_interval={interval} must be a fraction of an epoch in "
                "(0, 1], or an integer number of batches. Example: trainer.val_check_interval=0.5"
            )
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = trainer.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < 0
            or (isinstance(value, float) and value > 1)
        ):
            raise UserError(
                f"trainer.{key}={show(value)} must be a number of batches (an integer >= 0) or "
                f"a fraction of them in [0, 1]. Example: +trainer.{key}=0.25"
            )


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")


def check_accelerator(accelerator: str) -> None:
    """A clear error for an accelerator this machine does not have (Lightning's is a traceback)."""
    import importlib.util

    import torch

    name = str(accelerator).lower()
    if name not in ACCELERATORS:
        raise UserError(
            f"trainer.accelerator={accelerator} is not an accelerator Lightning knows. Use one "
            f"of {', '.join(ACCELERATORS)}, e.g. trainer.accelerator=cpu (auto picks what is "
            "there)."
        )
    package = {"tpu": "torch_xla", "hpu": "habana_frameworks"}.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise UnavailableError(
            f"trainer.accelerator={accelerator}: {name} not available on this machine (the "
            f"{package} package is not installed). Use trainer.accelerator=cpu, or auto to "
            "pick what is there."
        )
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


def _check_positive_amounts(trainer: DictConfig) -> None:
    """Settings that would train nothing (then report an untrained network as ok) or divide by
    zero inside Lightning: batches and steps are at least 1, fractions in (0, 1]."""
    for key, what in (
        ("val_check_interval", "how often to validate"),
        ("limit_train_batches", "how much of each epoch to train on"),
    ):
        value = trainer.get(key)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        ok = ok and (isinstance(value, int) or value <= 1)
        if not ok:
            raise UserError(
                f"trainer.{key}={value} must be a number of batches (an integer >= 1) or a "
                f"fraction of the epoch in (0, 1] ({what}); 0 or less would train or validate "
                f"nothing. Example: +trainer.{key}=0.5"
            )
    steps = trainer.get("max_steps")
    if steps is not None and steps != -1:
        in_range(
            steps,
            "trainer.max_steps",
            1,
            None,
            "an integer >= 1 (optimizer steps to train), or -1 for no limit (0 trains nothing)",
            "1000",
            integer=True,
        )
