"""torch's internals: a scheduler's closed-form learning rate, and torch.compile's timers.

An extended run stretches its scheduler to the new epoch count; schedulers whose step is
relative (cosine) must then be set from their closed form, and their last learning rate with
them. Training time is reported without torch.compile's compile time, which only dynamo's
counters know.
"""

from __future__ import annotations

from typing import Any


def restart_from_closed_form(scheduler: Any) -> None:
    """Set the optimizer's learning rates from the scheduler's closed form (schedulers that
    have one), and the scheduler's last learning rate to match."""
    if not hasattr(scheduler, "_get_closed_form_lr"):
        return
    groups = scheduler.optimizer.param_groups
    for group, lr in zip(groups, scheduler._get_closed_form_lr(), strict=True):
        group["lr"] = lr
    scheduler._last_lr = [g["lr"] for g in groups]


def compile_seconds() -> float | None:
    """Time torch.compile has spent compiling in this process (forward and backward graphs);
    None for a torch without these counters."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent()["total_wall_time"])
    except Exception:  # a torch without these counters: report the fit time as it is
        return None
