"""The job side of an Optuna trial: report val/acc to the trial after every validation, and
stop training when the study's pruner says the trial will not beat the others.

A pruned run ends cleanly after that epoch, skips the test, and records `status: pruned`
and the epoch in its metrics.json; the sweeper then tells the study it was PRUNED.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import Callback

from mnistx.compat.optuna import live_trial
from mnistx.runs.records import ACCURACY_DIGITS

log = logging.getLogger("mnistx")


class TrialReporter(Callback):
    """val/acc -> the Optuna trial, once per validation (step = the epoch, from 0)."""

    def __init__(self, sweeper: Any, number: int, max_epochs: int | None) -> None:
        self.sweeper = sweeper
        self.number = number
        self.max_epochs = max_epochs
        self.trial: Any = None
        self.prunes = str(sweeper.pruner) != "none"
        self.pruned_epoch: int | None = None  # counted from 1

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero:
            self.open()

    def open(self) -> None:
        """Find this job's trial in its study (once; none for a multi-objective study)."""
        from mnistx.hpo.settings import objectives
        from mnistx.hpo.study import open_study

        if self.trial is not None or len(objectives(self.sweeper)) > 1:
            return  # Optuna takes intermediate values of single-objective trials only
        study = open_study(self.sweeper, self.max_epochs, create=False)
        (frozen,) = [t for t in study.get_trials(deepcopy=False) if t.number == self.number]
        self.trial = live_trial(study, frozen)

    def report(self, value: float, epoch: int) -> bool:
        """val/acc after `epoch` (from 0) to the trial; whether the pruner stops it."""
        if self.trial is None:
            return False
        try:  # to the digits metrics.json keeps: the study and the records say the same
            self.trial.report(round(value, ACCURACY_DIGITS), step=epoch)
            return self.prunes and bool(self.trial.should_prune())
        except Exception as e:  # e.g. the trial was closed: its search was stopped
            log.warning(
                "Stopped reporting to Optuna trial #%d (%s); training goes on.", self.number, e
            )
            self.trial = None
            return False

    def stop(self, epoch: int) -> None:
        """Pruned after `epoch` (from 0): said once, recorded by the recipe."""
        self.pruned_epoch = epoch + 1
        log.info(
            "Optuna pruned trial #%d after epoch %d: its val/acc is below the "
            "study's bar (hydra.sweeper.pruner=%s).",
            self.number,
            self.pruned_epoch,
            self.sweeper.pruner,
        )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val/acc")
        prune = value is not None and self.report(float(value), trainer.current_epoch)
        if trainer.world_size > 1:  # every rank stops together
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.stop(trainer.current_epoch)
            trainer.should_stop = True


def reporter(hydra_cfg: Any, max_epochs: int | None) -> TrialReporter | None:
    """The reporter for this job when it is an Optuna trial (hydra.sweeper.trial is set by
    mnistx's Optuna sweeper); None for every other run."""
    sweeper = hydra_cfg.sweeper
    number = sweeper.get("trial") if "OptunaSweeper" in str(sweeper.get("_target_")) else None
    if number is None:
        return None
    return TrialReporter(sweeper, int(number), max_epochs)


def pruned_epoch(callbacks: Any) -> int | None:
    """The epoch after which a TrialReporter among `callbacks` stopped the run, if it did."""
    return next(
        (c.pruned_epoch for c in callbacks if isinstance(c, TrialReporter) and c.pruned_epoch), None
    )
