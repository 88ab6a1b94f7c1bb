"""Idle per-batch hooks are skipped, active ones are not, and profiling still works on demand."""

from __future__ import annotations

import json
from datetime import timedelta

import lightning.pytorch as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.profilers import SimpleProfiler

from mnistx.step_overhead import PER_BATCH_HOOKS, NullProfiler, skip_idle_hooks
from mnistx.train import compose_config, train


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
    callbacks = {name: instantiate(c) for name, c in cfg.callbacks.items()}
    skip_idle_hooks(callbacks.values())
    # Configured per epoch: their per-batch overrides return at once.
    assert callbacks["model_checkpoint"].on_train_batch_end is None
    assert callbacks["lr_monitor"].on_train_batch_start is None
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
