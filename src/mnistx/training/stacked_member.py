"""One job of a stack (mnistx.training.stacked_module): what the solo recipe built for it,
its random stream between its draws, and whether it still trains; and the jobs' loaders
side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from mnistx.hpo.trial import TrialReporter
from mnistx.runs.job import Job
from mnistx.training.module import ClassifierModule
from mnistx.training.recipe import Setup
from mnistx.training.run_pictures import Pictures


@dataclass
class Member:
    """One job in the stack: what the solo recipe built for it (its data, module, Trainer
    with its callbacks and trackers; the Trainer tests it after the stack has trained it)."""

    job: Job
    setup: Setup
    rng: torch.Tensor  # the job's torch random state between its draws
    cuda_rng: torch.Tensor | None = None
    failed: str | None = None  # why it left the stack
    pruned: int | None = None  # the epoch (from 1) after which its Optuna trial was pruned

    def active(self, epoch: int) -> bool:
        """Whether it trains in `epoch` (from 0): not failed, not pruned before it."""
        return not self.failed and (self.pruned is None or self.pruned > epoch)

    @property
    def reporter(self) -> TrialReporter | None:
        """Its Optuna trial's reporter (among the callbacks the solo recipe built for it)."""
        callbacks = self.setup.trainer.callbacks  # type: ignore[attr-defined]
        return next((c for c in callbacks if isinstance(c, TrialReporter)), None)

    @property
    def pictures(self) -> list[Pictures]:
        """Its Pictures callback, when it draws them."""
        callbacks = self.setup.trainer.callbacks  # type: ignore[attr-defined]
        return [c for c in callbacks if isinstance(c, Pictures)]

    @property
    def module(self) -> ClassifierModule:
        return self.setup.module

    @property
    def data(self) -> L.LightningDataModule:
        return self.setup.datamodule

    def checkpoint(self, monitored: bool) -> ModelCheckpoint:
        """Its best (val/acc) or last checkpoint callback, as the config built them."""
        callbacks = self.setup.trainer.checkpoint_callbacks
        return next(
            c for c in callbacks if isinstance(c, ModelCheckpoint) and bool(c.monitor) == monitored
        )


class Zipped:
    """The jobs' loaders side by side: each step, one batch of each (equal lengths)."""

    def __init__(self, loaders: Sequence[Any]) -> None:
        self.loaders = loaders

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self):
        return zip(*self.loaders, strict=True)
