"""Several jobs of a sweep trained as one, then each recorded as a job alone.

`train_stack(staged)` builds each job as the solo recipe does (its seed, data, network), fits
them in one Trainer over a StackedModule (mnistx.training.stacked_module) with each job's
checkpoints written as a job alone writes them (mnistx.training.stacked_checkpoints), then
gives each job the rest of the solo recipe (mnistx.training.recipe): its trackers, model
summary and pictures, the test of its best checkpoint, its metrics.json.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Timer

from mnistx.compat.lightning import NullProfiler, skip_idle_hooks
from mnistx.config.build import build
from mnistx.errors import UserError
from mnistx.runs.job import Job
from mnistx.training.stacked_checkpoints import MemberCheckpoints
from mnistx.training.stacked_member import Member, Zipped
from mnistx.training.stacked_module import StackedModule

log = logging.getLogger("mnistx")


@dataclass
class StackedJob:
    """A job of a stack as the launcher staged it: the job; its extra callbacks (an Optuna
    trial's reporter); the handlers of its own log file (train.log), as Hydra set them up."""

    job: Job
    callbacks: list[Any] = field(default_factory=list)
    log_handlers: list[logging.Handler] = field(default_factory=list)


@dataclass
class StackedFit:
    """What the stacked fit leaves for each job's test and record."""

    seconds: float
    members: list[Member]


def fit_stacked(jobs: Sequence[Job], callbacks: Sequence[Sequence[Any]] = ()) -> StackedFit:
    """Build every job as the solo recipe builds it (with its own extra `callbacks`: an Optuna
    trial's reporter), then fit them stacked in one Trainer."""
    extras = callbacks or [()] * len(jobs)
    members = [_member(job, extra) for job, extra in zip(jobs, extras, strict=True)]
    data = [m.data for m in members]
    timer = Timer(verbose=False)
    module = StackedModule(members)
    trainer = build(
        "trainer",
        jobs[0].cfg.trainer,
        callbacks=[timer, MemberCheckpoints(members, timer)],
        logger=False,
        enable_checkpointing=True,  # MemberCheckpoints is its checkpoint callback
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=NullProfiler(),
    )
    skip_idle_hooks(trainer.callbacks)
    for m in members:  # an Optuna trial's job reports to its trial, as alone
        if m.reporter is not None:
            m.reporter.open()
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


def _member(job: Job, callbacks: Sequence[Any]) -> Member:
    """The job built by the solo recipe (its checks, seed, data, network, callbacks,
    trackers and Trainer), and its random state as it would start training alone."""
    from mnistx.training.recipe import build_run, write_model_summary

    setup = build_run(job.cfg, callbacks, job.run)
    # As alone, before the fit: the network as built (its dtype too; the stack's Trainer
    # converts it for trainer.precision=64-true).
    write_model_summary(setup.module, setup.out / "model_summary.txt")
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    return Member(job, setup, torch.get_rng_state(), cuda_rng)


def finish_job(member: Member, fit: StackedFit) -> dict[str, Any]:
    """A stacked job's records, as the solo recipe makes them: its trackers (hyperparameters
    and every epoch's values, as a job alone logs them), model summary and pictures, then the
    test of its best checkpoint and metrics.json. A job that left the stack gets what a job
    alone that diverged has: the records of its start and its failure."""
    from mnistx.runs.records import record_failure
    from mnistx.training.recipe import Fitted, fitted_metrics, record, test

    job, setup = member.job, member.setup
    history = {k: list(v) for k, v in member.module.history.items()}
    _start_records(setup, member, history)
    if member.failed:
        record_failure(job.folder, job.run, member.failed)
        return {"status": "failed", "reason": member.failed}
    epochs = len(history.get("val/acc", []))
    for pictures in _pictures(setup):
        pictures.curves(setup.trainer, history, epochs)
    best = Path(member.checkpoint(monitored=True).dirpath or ".") / "best.ckpt"
    fitted = Fitted(
        history=history,
        metrics=fitted_metrics(member.module, history),
        epochs=epochs,
        train_seconds=fit.seconds,
        compile_seconds=None,
        best_checkpoint=str(best) if best.exists() else "",
        pruned_at=member.pruned,
    )
    results, tested = test(setup, fitted, job.run)
    return record(setup, fitted, results, tested, job.run)


def _start_records(setup: Any, member: Member, history: dict[str, list[float]]) -> None:
    """What a fit alone writes as it starts and as each epoch ends (the per-epoch
    misclassified images were drawn during the stack's fit)."""
    from mnistx.training.hparams import flat_hparams

    params = flat_hparams(member.job.cfg, member.job.choices)
    val = history.get("val/acc", [])
    for logger in setup.loggers:
        logger.log_hyperparams(params)
        for epoch in range(len(val)):
            values = {k: v[epoch] for k, v in history.items() if epoch < len(v)}
            logger.log_metrics({**values, "val/acc_best": max(val[: epoch + 1])}, epoch)
        logger.save()
    for pictures in _pictures(setup):
        pictures.samples(setup.trainer, setup.datamodule)


def _pictures(setup: Any) -> list[Any]:
    from mnistx.training.run_pictures import Pictures

    return [c for c in setup.trainer.callbacks if isinstance(c, Pictures)]


def train_stack(staged: Sequence[StackedJob]) -> list[float | None]:
    """Fit the jobs stacked, then test and record each, its log in its own train.log; a
    job's val/acc_best, or None for one that failed or could not run (recorded in its folder,
    as such a job of any sweep is: the sweep goes on)."""
    from mnistx.runs.lock import hold, release
    from mnistx.training.loggers import close_trackers

    start, jobs = time.time(), [s.job for s in staged]
    held, members = [], []
    try:
        for job in jobs:
            hold(job.folder)
            held.append(job.folder)
        try:
            fit = fit_stacked(jobs, [s.callbacks for s in staged])
        except Exception as e:  # (Interrupted, Ctrl-C, is not an Exception: it ends the sweep)
            for one in staged:
                with _logging_to(one.log_handlers):
                    _failed(one.job, e)
            return [None] * len(jobs)
        members = fit.members
        values: list[float | None] = []
        for member, one in zip(members, staged, strict=True):
            with _logging_to(one.log_handlers):
                try:
                    metrics = finish_job(member, fit)
                except Exception as e:
                    metrics = _failed(member.job, e)
                if metrics.get("status") == "failed" and member.failed:
                    print(f"error: {member.failed}", file=sys.stderr)
                took = time.time() - start
                log.info("finished in %.1f s; outputs in %s", took, member.job.folder)
            values.append(metrics.get("val/acc_best"))
        return values
    finally:
        for member in members:
            close_trackers(member.setup.loggers)
        for folder in held:
            release(folder)


@contextmanager
def _logging_to(handlers: Sequence[logging.Handler]) -> Iterator[None]:
    """The log also in a job's own files (its train.log), then those closed."""
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def _failed(job: Job, error: BaseException) -> dict[str, Any]:
    """A job that could not run (skipped) or failed, recorded and said as alone."""
    from mnistx.errors import UnavailableError
    from mnistx.runs.records import record_failure

    if isinstance(error, UserError):
        status = "skipped" if isinstance(error, UnavailableError) else "failed"
        record_failure(job.folder, job.run, str(error), status)
        print(f"{status if status == 'skipped' else 'error'}: {error}", file=sys.stderr)
        return {"status": status, "reason": str(error)}
    reason = f"{type(error).__name__}: {error}"
    record_failure(job.folder, job.run, reason)
    log.exception("job failed; the sweep goes on (outputs in %s)", job.folder)
    return {"status": "failed", "reason": reason}
