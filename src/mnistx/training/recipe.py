"""The training recipe: build -> fit -> test -> record, one function per phase.

`train(cfg)` runs one composed config (mnistx.runs.compose) in its `output_dir`; the train
command runs `train_job` for each job (mnistx.runs.job) with Hydra, sweeps and DDP around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Timer, WeightAveraging
from omegaconf import DictConfig

from mnistx.compat.lightning import NullProfiler, skip_idle_hooks
from mnistx.compat.torch import compile_seconds
from mnistx.config.build import build
from mnistx.config.targets import trusting
from mnistx.hpo.trial import pruned_epoch
from mnistx.runs.env import is_rank_zero
from mnistx.runs.job import Job
from mnistx.runs.layout import METRICS
from mnistx.runs.records import Interrupted, RunInfo, record_interrupt, resolved, write_metrics
from mnistx.training.callbacks import finish_line
from mnistx.training.checkpoint_io import AtomicCheckpointIO
from mnistx.training.hparams import flat_hparams
from mnistx.training.labels import labels_record, run_labels
from mnistx.training.loggers import Tracker, close_trackers
from mnistx.training.module import ClassifierModule
from mnistx.training.runtime import prepare_process, skip_per_step_nvml_check
from mnistx.training.summary import print_summary


@dataclass
class Setup:
    """What `build` makes from the config, for the phases after it."""

    cfg: DictConfig
    out: Path
    datamodule: L.LightningDataModule
    module: ClassifierModule
    trainer: L.Trainer
    timer: Timer
    loggers: list[Any]  # as built: under fast_dev_run the Trainer's own are stand-ins


@dataclass
class Fitted:
    """What fitting leaves for the test and the record."""

    history: dict[str, list[float]]
    metrics: dict[str, float]  # the last epoch's, and val/acc_best
    epochs: int
    train_seconds: float
    compile_seconds: float | None
    best_checkpoint: str
    pruned_at: int | None


def train(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    choices: dict[str, str] | None = None,
    extra_callbacks: Sequence[Any] = (),
    ckpt_path: Path | None = None,
    run: RunInfo | None = None,
) -> dict[str, Any]:
    """Fit (from `ckpt_path` when resuming), test the best checkpoint, write metrics.json and
    return its contents. `extra_callbacks`: Lightning callbacks (benchmarks, Optuna trials).
    `run`: the run's own command line, swept values and continuations (default: `overrides`).
    """
    if run is None:
        run = RunInfo(list(overrides), {})
    with trusting(cfg.get("trusted_targets") or []):
        return _train(cfg, choices, extra_callbacks, ckpt_path, run)


def train_job(job: Job, extra_callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """`train` for one job of the train command, resolved by mnistx.runs.job."""
    return train(job.cfg, job.overrides, job.choices, extra_callbacks, job.ckpt, job.run)


def _train(
    cfg: DictConfig,
    choices: dict[str, str] | None,
    extra_callbacks: Sequence[Any],
    ckpt_path: Path | None,
    run: RunInfo,
) -> dict[str, Any]:
    setup = build_run(cfg, extra_callbacks, run)
    try:
        if ckpt_path is None and setup.trainer.is_global_zero:  # a resumed run has them
            params = flat_hparams(cfg, choices)
            for logger in setup.loggers:
                logger.log_hyperparams(params)
            write_model_summary(setup.module, setup.out / "model_summary.txt")
        fitted = fit(setup, ckpt_path, run)
        results, tested = test(setup, fitted, run)
        return record(setup, fitted, results, tested, run)
    finally:
        close_trackers(setup.loggers)


def build_run(
    cfg: DictConfig, extra_callbacks: Sequence[Any] = (), run: RunInfo | None = None
) -> Setup:
    """Check the config, then build the data, the module, the callbacks, the logger and the
    Trainer from it (every one through `mnistx.config.build.build`)."""
    prepare_process(cfg)

    datamodule = build("data", cfg.data)
    # All four data files, before anything is built or written (DDP's other ranks leave it to
    # rank 0, as Lightning's own prepare_data call does).
    if is_rank_zero():
        datamodule.prepare_data()
    module = ClassifierModule.from_config(cfg)
    timer = Timer(verbose=False)
    # A callback whose settings turn it off builds as None (mnistx.training.callbacks).
    built = [
        build(f"callbacks.{k}", node) for k, node in (cfg.get("callbacks") or {}).items() if node
    ]
    callbacks = [c for c in built if c is not None] + [timer, *extra_callbacks]
    if cfg.get("target_acc") is not None:
        callbacks.append(finish_line(cfg.target_acc))
    labels = run_labels(cfg, run or RunInfo([], {}))
    loggers = [
        build(f"logger.{k}", node, labels=labels)
        for k, node in (cfg.get("logger") or {}).items()
        if node
    ]
    # +trainer.profiler=simple|advanced|pytorch still profiles; unset, skip even the no-op one.
    lean: dict[str, Any] = {} if cfg.trainer.get("profiler") else {"profiler": NullProfiler()}
    if not cfg.trainer.get("plugins"):  # checkpoints staged beside their final name
        lean["plugins"] = [AtomicCheckpointIO()]
    trainer = build("trainer", cfg.trainer, callbacks=callbacks, logger=loggers, **lean)
    skip_per_step_nvml_check(cfg.trainer.get("strategy", "auto"))
    skip_idle_hooks(trainer.callbacks)
    return Setup(cfg, Path(cfg.output_dir), datamodule, module, trainer, timer, loggers)


def fit(setup: Setup, ckpt_path: Path | None, run: RunInfo) -> Fitted:
    """Lightning's fit; a Ctrl-C is recorded in the run folder (status interrupted)."""
    trainer, module, cfg = setup.trainer, setup.module, setup.cfg
    # Cumulative per process, and a multirun's jobs may share one.
    compiled_before = compile_seconds() if cfg.model.get("compile") else None
    try:
        trainer.fit(module, datamodule=setup.datamodule, ckpt_path=ckpt_path)
    except SystemExit:
        _interrupted(setup, run, "training")
        raise
    history = dict(module.history)  # before testing loads the best checkpoint's copy
    compiled = None if compiled_before is None else (compile_seconds() or 0.0) - compiled_before
    return Fitted(
        history=history,
        metrics=fitted_metrics(module, history),
        epochs=trainer.current_epoch,  # completed epochs
        train_seconds=setup.timer.time_elapsed("train") - (compiled or 0.0),
        compile_seconds=compiled,
        # The checkpoint callback that monitors val/acc (last_checkpoint monitors nothing).
        best_checkpoint=next(
            (c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor),  # type: ignore[attr-defined]
            "",
        ),
        # An Optuna trial its pruner stopped: what it learned so far is its result, untested.
        pruned_at=pruned_epoch(trainer.callbacks),  # type: ignore[attr-defined]
    )


def fitted_metrics(module: ClassifierModule, history: dict[str, list[float]]) -> dict[str, float]:
    """The last epoch's values and val/acc_best, from the module's record (a resume of a run
    killed while testing fits nothing, so trainer.callback_metrics has none)."""
    metrics = {k: v[-1] for k, v in history.items() if v}
    if module.best_epoch >= 0:
        metrics["val/acc_best"] = float(module.val_acc_best.compute())
    return metrics


def test(
    setup: Setup, fitted: Fitted, run: RunInfo | None = None
) -> tuple[dict[str, float], str | None]:
    """The official test set, with the best checkpoint (or the final weights): the results
    and which weights were tested (None: not tested)."""
    trainer, cfg = setup.trainer, setup.cfg
    # The best checkpoint already holds the averaged weights; an EMA callback would swap the
    # raw ones back in when the test loads it.
    kept = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]  # type: ignore[attr-defined]
    trainer.callbacks = kept  # type: ignore[attr-defined]
    if not cfg.test or fitted.pruned_at is not None:
        return {}, None
    # The final weights are in the module (averaged, with EMA), so `last` loads nothing.
    tested = "best" if fitted.best_checkpoint and cfg.test_checkpoint == "best" else "last"
    try:
        results: dict[str, float] = trainer.test(  # type: ignore[assignment]
            setup.module,
            datamodule=setup.datamodule,
            ckpt_path=fitted.best_checkpoint if tested == "best" else None,
            verbose=False,
        )[0]
    except SystemExit:
        _interrupted(setup, run or RunInfo([], {}), "testing", epoch=fitted.epochs)
        raise
    return results, tested


def _interrupted(setup: Setup, run: RunInfo, phase: str, epoch: int | None = None) -> None:
    """Lightning ends a stage it stopped gracefully (Ctrl-C, or SIGTERM as SLURM sends at a
    time limit) with SystemExit: record the run as interrupted in that phase, resumable, and
    end the process non-zero (`Interrupted`)."""
    trainer = setup.trainer
    if not trainer.interrupted:
        return
    cause = "SIGTERM" if getattr(trainer, "received_sigterm", False) else "Ctrl-C"
    if trainer.is_global_zero:
        done = trainer.current_epoch if epoch is None else epoch
        record_interrupt(setup.out, run, done, dict(setup.module.history), phase, cause)
    raise Interrupted(cause) from None


def record(
    setup: Setup,
    fitted: Fitted,
    results: dict[str, float],
    tested: str | None,
    run: RunInfo,
) -> dict[str, Any]:
    """metrics.json (rank 0 alone, under DDP) and the printed summary."""
    cfg, module, trainer = setup.cfg, setup.module, setup.trainer
    pruned, fit_metrics, seconds = fitted.pruned_at, fitted.metrics, fitted.train_seconds
    metrics: dict[str, Any] = {
        "status": "ok" if pruned is None else "pruned",
        **(
            {}
            if pruned is None
            else {
                "pruned_at_epoch": pruned,
                "reason": f"pruned by Optuna after epoch {pruned} of {cfg.trainer.max_epochs}",
            }
        ),
        "test/acc": results.get("test/acc"),
        "test/loss": results.get("test/loss"),
        "val/acc_best": fit_metrics.get("val/acc_best"),
        "best_epoch": module.best_epoch + 1,  # counted from 1
        "epochs": fitted.epochs,
        "train_seconds": round(seconds, 3),
        "compile_seconds": fitted.compile_seconds and round(fitted.compile_seconds, 3),
        "seconds_per_epoch": round(seconds / max(fitted.epochs, 1), 3),
        "params": sum(p.numel() for p in module.net.parameters()),
        "accelerator": trainer.strategy.root_device.type,
        **{k: fit_metrics.get(k) for k in ("train/loss", "train/acc", "val/loss", "val/acc")},
        "best_checkpoint": fitted.best_checkpoint or None,
        "tested_weights": tested,
        **_time_to_target(cfg.get("target_acc"), fit_metrics, seconds),
        "threads": torch.get_num_threads(),
        "overrides": run.overrides,
        "swept": run.swept,
        **({"resumes": run.resumes} if run.resumes else {}),
        **labels_record(cfg),
        "output_dir": str(setup.out),
        "history": fitted.history,
    }
    metrics = resolved(metrics)  # accuracies to what the test set resolves
    if trainer.is_global_zero:
        write_metrics(setup.out, metrics)
        for logger in setup.loggers:
            if isinstance(logger, Tracker):
                logger.log_files([setup.out / METRICS])
        print_summary(metrics)
    return metrics


def _time_to_target(target: float | None, fit: dict[str, float], seconds: float) -> dict:
    if target is None:
        return {}
    reached = fit.get("val/acc_best", 0.0) >= target
    return {
        "target_acc": target,
        "reached_target": reached,
        "seconds_to_target": round(seconds, 3) if reached else None,
    }


def write_model_summary(module: Any, path: Path) -> None:
    """Lightning's summary (per-layer input/output shapes and parameter counts), as a file."""
    from lightning.pytorch.utilities.model_summary import ModelSummary

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(ModelSummary(module, max_depth=-1)) + "\n")
