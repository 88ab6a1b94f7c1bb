"""mnistx.compat.lightning: idle per-batch hooks are skipped, active ones are not,
profiling still works on demand, and each Lightning internal a patch relies on is still there
(these fail first, naming the patch, when a Lightning release changes one)."""

from __future__ import annotations

import json
from datetime import timedelta

import lightning.pytorch as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler

from mnistx.compat.lightning import (
    PER_BATCH_HOOKS,
    DirectHookName,
    NullProfiler,
    attached_trainer,
    skip_idle_hooks,
)
from mnistx.runs.compose import compose_config
from mnistx.training.module import ClassifierModule
from mnistx.training.recipe import train


class CountsBackward(L.Callback):
    def __init__(self) -> None:
        self.calls = 0
        self.profiler = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.profiler = trainer.profiler

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


def test_the_default_callbacks_lose_only_their_idle_hooks(tmp_path):
    cfg = compose_config([f"output_dir={tmp_path}"])
    built = {name: instantiate(c) for name, c in cfg.callbacks.items()}
    callbacks = {name: c for name, c in built.items() if c is not None}  # ema: off by default
    skip_idle_hooks(callbacks.values())
    # Configured per epoch: their per-batch overrides return at once.
    assert callbacks["model_checkpoint"].on_train_batch_end is None
    # The progress bar draws per batch and keeps those hooks; it has no backward hooks.
    assert callable(callbacks["progress_bar"].on_train_batch_end)
    assert callable(callbacks["progress_bar"].on_validation_batch_end)
    assert callbacks["progress_bar"].on_after_backward is None
    for name, callback in callbacks.items():
        for hook in PER_BATCH_HOOKS:
            method = getattr(type(callback), hook)
            assert getattr(callback, hook) is None or callable(method), (name, hook)


def test_hooks_with_work_to_do_are_kept():
    step_checkpoint = ModelCheckpoint(every_n_train_steps=10)
    timed_checkpoint = ModelCheckpoint(train_time_interval=timedelta(minutes=5))
    step_lr = LearningRateMonitor(logging_interval="step")
    deadline = Timer(duration="00:00:10:00", interval="step")
    skip_idle_hooks([step_checkpoint, timed_checkpoint, step_lr, deadline])
    assert callable(step_checkpoint.on_train_batch_end)
    assert callable(timed_checkpoint.on_train_batch_end)
    assert callable(step_lr.on_train_batch_start)
    assert callable(deadline.on_train_batch_end)


def test_a_run_still_calls_overridden_hooks_and_profiles_on_request(make_cfg, tmp_path):
    counter = CountsBackward()
    cfg = make_cfg("+trainer.profiler=simple", "trainer.max_epochs=1")
    metrics = train(cfg, extra_callbacks=[counter])
    # 500 training images at batch 32: one backward per batch.
    assert counter.calls == 16
    assert isinstance(counter.profiler, SimpleProfiler)
    assert metrics["status"] == "ok"
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["best_checkpoint"].endswith("best.ckpt")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_without_a_profiler_setting_the_null_profiler_is_used(make_cfg):
    counter = CountsBackward()
    train(make_cfg("trainer.max_epochs=1", "test=false"), extra_callbacks=[counter])
    assert isinstance(counter.profiler, NullProfiler)


def _source(fn) -> str:
    import inspect

    return inspect.getsource(fn)


def test_lightning_still_skips_a_hook_that_is_not_callable():
    """skip_idle_hooks sets idle hooks to None: Lightning's callback-hook caller must still
    skip a hook attribute that is not callable."""
    from lightning.pytorch.trainer import call

    source = _source(call._call_callback_hooks)
    assert "callable(fn)" in source, (
        "lightning changed _call_callback_hooks: skip_idle_hooks (compat/lightning.py) "
        "relies on it skipping non-callable hooks; remove or adapt that patch"
    )


def test_lightning_still_names_the_running_hook_through_setattr():
    """DirectHookName stores `_current_fx_name` directly: Lightning must still set it on the
    module around each hook call, and the module must still have it."""
    from lightning.pytorch.trainer import call

    assert "_current_fx_name" in _source(call._call_lightning_module_hook), (
        "lightning no longer sets pl_module._current_fx_name per hook: DirectHookName "
        "(compat/lightning.py) is then useless; remove it"
    )
    module = ClassifierModule.from_config(compose_config(["output_dir=/unused"]))
    assert isinstance(module, DirectHookName)
    module._current_fx_name = "training_step"
    assert module.__dict__["_current_fx_name"] == "training_step"


def test_lightning_still_profiles_through_one_context_manager():
    """NullProfiler replaces PassThroughProfiler.profile: the Trainer must still wrap hooks in
    `trainer.profiler.profile(...)`."""
    from lightning.pytorch.trainer import call

    assert hasattr(PassThroughProfiler, "profile")
    assert "profiler.profile(" in _source(call._call_callback_hooks), (
        "lightning changed how hooks are profiled: NullProfiler "
        "(compat/lightning.py) may no longer be what the Trainer calls"
    )


def test_the_checked_attributes_of_lightnings_callbacks_still_exist():
    """_idle reads these private attributes to tell an idle hook from a busy one; a release
    that renames one leaves the hook alone (safe) but the patch then does nothing."""
    checkpoint, timer = ModelCheckpoint(), Timer()
    for obj, name in (
        (checkpoint, "_every_n_train_steps"),
        (checkpoint, "_train_time_interval"),
        (timer, "_duration"),
    ):
        assert hasattr(obj, name), (
            f"lightning's {type(obj).__name__} has no {name} any more: update _idle in "
            "compat/lightning.py"
        )


def test_attached_trainer_reads_lightnings_own_attribute():
    module = ClassifierModule.from_config(compose_config(["output_dir=/unused"]))
    assert attached_trainer(module) is None  # `module.trainer` would raise here
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    module.trainer = trainer
    assert attached_trainer(module) is trainer


class WatchesTheBar(L.Callback):
    """Notes the progress bar's redraw thread while training, and asks for a redraw as
    Lightning's bar does after a batch."""

    def __init__(self, bar) -> None:
        self.bar, self.threads = bar, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.bar.progress.soft_refresh()
        self.threads.append(self.bar.progress.live._refresh_thread)


def test_the_progress_bar_stops_its_redraw_thread_without_waiting_out_a_sleep(tmp_path):
    """Lightning's thread sleeps between redraws and is joined at every stop of the bar (~0.11
    s each here); PromptRichProgressBar's waits on its stop event. Checked through a real fit:
    the bar's thread is the prompt one, redraws are still asked of it, and it has ended."""
    from lightning.pytorch.callbacks.progress import rich_progress
    from lightning.pytorch.demos.boring_classes import BoringModel

    from mnistx.compat.lightning import _PromptRefreshThread
    from mnistx.training.callbacks import ProgressBar

    assert "time.sleep" in _source(rich_progress._RefreshThread.run), (
        "lightning's progress-bar thread no longer sleeps between redraws: "
        "PromptRichProgressBar (compat/lightning.py) may be unneeded; remove it"
    )
    bar = ProgressBar(refresh_rate=4)
    watch = WatchesTheBar(bar)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar, watch],
    )
    trainer.fit(BoringModel())
    assert len(watch.threads) == 3
    thread = watch.threads[0]
    assert isinstance(thread, _PromptRefreshThread)  # and so Lightning's soft_refresh reaches it
    assert all(t is thread for t in watch.threads)
    assert thread.done.is_set() and not thread.is_alive()  # stopped and joined by the bar
