"""Every place mnistx relies on Lightning's internals: the bookkeeping it trims around each
training step when nothing needs it. tests/test_compat_lightning.py checks each assumption
against the installed Lightning and fails naming the one a release changed.

On this project's 2-core reference machine a small MLP's whole step takes ~3 ms, and
Lightning's loop adds ~1 ms to it. Two parts of that are pure ceremony and can go without
changing what a run computes or records:

- the profiler: with no profiler set, Lightning still wraps every hook call in
  `PassThroughProfiler.profile()`, a generator-based context manager (~100 per step);
- callback hooks that do nothing: every per-batch hook is called on every callback, each call
  formatting the callback's `state_key` string for the profiler, even when the callback only
  inherits `Callback`'s empty method. Lightning skips a hook whose attribute is not callable,
  so an idle hook is set to None on that callback instance;
- the hook name: Lightning sets `LightningModule._current_fx_name` around every hook call, ~40
  times per step, through nn.Module.__setattr__'s parameter/buffer/module checks (~0.2 ms per
  step); a string is none of those, so it is stored directly.

And one wait that is not per step but per stage: Lightning's Rich progress bar redraws from a
thread that sleeps `1 / refresh_rate` s between redraws and is joined when the bar stops (end
of fit, of test), so each stop waited for the rest of a sleep: ~0.11 s median at 4 redraws/s,
~0.22 s of every sweep job (measured). `PromptRichProgressBar` gives the bar a thread that
waits on its stop event instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from lightning.pytorch.callbacks import (
    Callback,
    LearningRateMonitor,
    ModelCheckpoint,
    RichProgressBar,
    Timer,
)
from lightning.pytorch.callbacks.progress.rich_progress import _RefreshThread
from lightning.pytorch.profilers import PassThroughProfiler

PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
)

_NOTHING = contextlib.nullcontext()


class NullProfiler(PassThroughProfiler):
    """Lightning's default no-op profiler without the per-call generator."""

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:  # type: ignore[override]
        return _NOTHING


class DirectHookName:
    """Mixin for a LightningModule: `_current_fx_name` bypasses nn.Module.__setattr__."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


def attached_trainer(module: Any) -> Any:
    """The Trainer a LightningModule is attached to, or None (`module.trainer` raises then)."""
    return module._trainer


def _idle(callback: Callback, hook: str) -> bool:
    """True when calling `hook` on `callback` cannot do anything. Conditional overrides of
    Lightning's own callbacks count as idle only in the settings where their body returns at
    once; an unknown attribute (a newer Lightning) leaves the hook alone."""
    if getattr(type(callback), hook, None) is getattr(Callback, hook):
        return True
    if isinstance(callback, ModelCheckpoint) and hook == "on_train_batch_end":
        return (getattr(callback, "_every_n_train_steps", 1) or 0) < 1 and getattr(
            callback, "_train_time_interval", 1
        ) is None
    if isinstance(callback, LearningRateMonitor) and hook == "on_train_batch_start":
        return callback.logging_interval == "epoch"
    if isinstance(callback, Timer) and hook == "on_train_batch_end":
        return getattr(callback, "_duration", 1) is None
    return False


def skip_idle_hooks(callbacks: Iterable[Callback]) -> list[tuple[Any, str]]:
    """Turn off the per-batch hooks that would do nothing; returns (callback, hook) pairs."""
    skipped = []
    for callback in callbacks:
        for hook in PER_BATCH_HOOKS:
            if _idle(callback, hook):
                setattr(callback, hook, None)
                skipped.append((callback, hook))
    return skipped


class _PromptRefreshThread(_RefreshThread):
    """Lightning's refresh thread (redraw when a batch asked for it, `refresh_cond`), waiting
    on its stop event instead of sleeping, so that stopping the bar does not wait."""

    def run(self) -> None:
        while not self.done.wait(1 / self.refresh_per_second):
            if self.refresh_cond:
                with self.live._lock:
                    if not self.done.is_set():
                        self.live.refresh()
                self.refresh_cond = False


class PromptRichProgressBar(RichProgressBar):
    """Lightning's RichProgressBar whose stops (end of fit, of test) do not wait for the
    redraw thread's sleep to end."""

    def _init_progress(self, trainer: Any) -> None:
        super()._init_progress(trainer)
        live = getattr(self.progress, "live", None)
        thread = getattr(live, "_refresh_thread", None)
        if thread is None or isinstance(thread, _PromptRefreshThread):
            return
        prompt = _PromptRefreshThread(live, live.refresh_per_second)  # type: ignore[union-attr]
        prompt.refresh_cond = thread.refresh_cond
        thread.done.set()  # it ends after its current sleep, drawing nothing more
        live._refresh_thread = prompt  # type: ignore[union-attr]
        prompt.start()
