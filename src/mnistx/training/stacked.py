"""Several jobs of a sweep trained as one, then each recorded as a job alone.

`train_stack(jobs)` builds each job as the solo recipe does (its seed, data, network), fits
them in one Trainer over a StackedModule (mnistx.training.stacked_module) with each job's
checkpoints written as a job alone writes them (mnistx.training.stacked_checkpoints), then
gives each job the rest of the solo recipe (mnistx.training.recipe): its trackers, model
summary and pictures, the test of its best checkpoint, its metrics.json.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Timer

from mnistx.compat.lightning import NullProfiler, skip_idle_hooks
from mnistx.config.build import build
from mnistx.config.checks import check_config
from mnistx.errors import UserError
from mnistx.runs.job import Job
from mnistx.training.module import ClassifierModule
from mnistx.training.runtime import quiet_libraries
from mnistx.training.stacked_checkpoints import MemberCheckpoints
from mnistx.training.stacked_module import Member, StackedModule, Zipped


@dataclass
class StackedFit:
    """What the stacked fit leaves for each job's test and record."""

    seconds: float
    members: list[Member]


def fit_stacked(jobs: Sequence[Job]) -> StackedFit:
    """Build every job as it would be built alone, then fit them stacked in one Trainer."""
    quiet_libraries()
    first = jobs[0].cfg
    if first.get("threads"):
        torch.set_num_threads(first.threads)
    members = [_member(job) for job in jobs]
    data = [m.data for m in members]
    timer = Timer(verbose=False)
    module = StackedModule(members)
    trainer_cfg = first.trainer
    lean: dict[str, Any] = {"profiler": NullProfiler()}
    trainer = build(
        "trainer",
        trainer_cfg,
        callbacks=[timer, MemberCheckpoints(members, timer)],
        logger=False,
        enable_checkpointing=True,  # MemberCheckpoints is its checkpoint callback
        enable_progress_bar=False,
        enable_model_summary=False,
        **lean,
    )
    skip_idle_hooks(trainer.callbacks)
    for d in data:
        d.trainer = trainer
        d.setup("fit")
    try:
        trainer.fit(
            module,
            train_dataloaders=Zipped([d.train_dataloader() for d in data]),
            val_dataloaders=Zipped([d.val_dataloader() for d in data]),
        )
    except SystemExit:  # Lightning's graceful stop (Ctrl-C, SIGTERM): each job recorded
        _interrupted(trainer, members)
        raise
    module.write_back()
    for d in data:
        d.trainer = None
    # The Timer's training time, as a job alone reports it: the stack's, shared by its jobs.
    return StackedFit(timer.time_elapsed("train"), members)


def _interrupted(trainer: L.Trainer, members: list[Member]) -> None:
    """Each job of a stack Ctrl-C or SIGTERM stopped recorded as a job alone is (status
    interrupted, resumable from its last checkpoint), then `Interrupted`."""
    from mnistx.runs.records import Interrupted, record_interrupt

    if not trainer.interrupted:
        return
    cause = "SIGTERM" if getattr(trainer, "received_sigterm", False) else "Ctrl-C"
    if trainer.is_global_zero:
        for i, m in enumerate(members):  # the command that finishes the sweep, said once
            history, epoch = dict(m.module.history), trainer.current_epoch
            record_interrupt(m.job.folder, m.job.run, epoch, history, cause=cause, say=i == 0)
    raise Interrupted(cause) from None


def _member(job: Job) -> Member:
    cfg = job.cfg
    check_config(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = build("data", cfg.data)
    data.prepare_data()
    module = ClassifierModule.from_config(cfg)
    rng = torch.get_rng_state()  # seeded, after the weights drew theirs: as alone
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    checkpoints = {
        "best": build("callbacks.model_checkpoint", cfg.callbacks.model_checkpoint),
        "last": build("callbacks.last_checkpoint", cfg.callbacks.last_checkpoint),
    }
    return Member(job, module, data, rng, cuda_rng, checkpoints=checkpoints)


def finish_job(member: Member, fit: StackedFit) -> dict[str, Any]:
    """A stacked job's records, as the solo recipe makes them: its trackers (hyperparameters
    and every epoch's values, as a job alone logs them), model summary and pictures, then the
    test of its best checkpoint and metrics.json. A job that left the stack gets what a job
    alone that diverged has: the records of its start and its failure."""
    from mnistx.runs.records import record_failure
    from mnistx.training.loggers import close_trackers
    from mnistx.training.recipe import Fitted, build_run, record, test

    job, trained = member.job, member.module
    setup = build_run(job.cfg, (), job.run)
    try:
        history = {k: list(v) for k, v in trained.history.items()}
        _start_records(setup, member, history)
        if member.failed:
            record_failure(job.folder, job.run, member.failed)
            return {"status": "failed", "reason": member.failed}
        epochs = len(history.get("val/acc", []))
        for pictures in _pictures(setup):
            pictures.curves(setup.trainer, history, epochs)
        module = setup.module
        module.load_state_dict(trained.state_dict())
        module.history, module.best_epoch = history, trained.best_epoch
        module.val_acc_best = trained.val_acc_best
        metrics = {k: v[-1] for k, v in history.items() if v}
        if trained.best_epoch >= 0:
            metrics["val/acc_best"] = float(trained.val_acc_best.compute())
        best = Path(member.checkpoints["best"].dirpath or ".") / "best.ckpt"
        fitted = Fitted(
            history=history,
            metrics=metrics,
            epochs=epochs,
            train_seconds=fit.seconds,
            compile_seconds=None,
            best_checkpoint=str(best) if best.exists() else "",
            pruned_at=None,
        )
        results, tested = test(setup, fitted, job.run)
        return record(setup, fitted, results, tested, job.run)
    finally:
        close_trackers(setup.loggers)


def _start_records(setup: Any, member: Member, history: dict[str, list[float]]) -> None:
    """What a fit alone writes as it starts and as each epoch ends (bar the per-epoch
    misclassified images, drawn from weights the stack no longer holds)."""
    from mnistx.training.hparams import flat_hparams
    from mnistx.training.recipe import write_model_summary

    params = flat_hparams(member.job.cfg, member.job.choices)
    val = history.get("val/acc", [])
    for logger in setup.loggers:
        logger.log_hyperparams(params)
        for epoch in range(len(val)):
            values = {k: v[epoch] for k, v in history.items() if epoch < len(v)}
            logger.log_metrics({**values, "val/acc_best": max(val[: epoch + 1])}, epoch)
        logger.save()
    write_model_summary(setup.module, setup.out / "model_summary.txt")
    for pictures in _pictures(setup):
        pictures.samples(setup.trainer, setup.datamodule)


def _pictures(setup: Any) -> list[Any]:
    from mnistx.training.run_pictures import Pictures

    return [c for c in setup.trainer.callbacks if isinstance(c, Pictures)]


def train_stack(jobs: list[Any]) -> list[float | None]:
    """Fit the jobs stacked, then test and record each; a job's val/acc_best, or None for
    one that failed (recorded in its folder, as a failed job of any sweep is)."""
    from mnistx.runs.lock import hold, release
    from mnistx.runs.records import record_failure

    held = []
    try:
        for job in jobs:
            hold(job.folder)
            held.append(job.folder)
        fit = fit_stacked(jobs)
        values: list[float | None] = []
        for member in fit.members:
            job = member.job
            try:
                metrics = finish_job(member, fit)
            except UserError as e:
                record_failure(job.folder, job.run, str(e))
                metrics = {"status": "failed", "reason": str(e)}
            if metrics.get("status") == "failed":
                print(f"error: {metrics['reason']}", file=sys.stderr)
            values.append(metrics.get("val/acc_best"))
        return values
    finally:
        for folder in held:
            release(folder)
