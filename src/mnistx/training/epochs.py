"""What a classifier records per epoch: its metrics, its best epoch, its curves (history).

A mixin of ClassifierModule, public so that a stack of modules trained as one
(mnistx.training.stacked) runs the same bookkeeping for each of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnistx.errors import DivergedError


class EpochRecord:
    """Per-epoch metrics of train/val/test, the best val/acc and its epoch, the history."""

    # Made by ClassifierModule.__init__, named here for the type checker.
    train_loss: MeanMetric
    train_acc: MulticlassAccuracy
    val_loss: MeanMetric
    val_acc: MulticlassAccuracy
    val_acc_best: MaxMetric
    best_epoch: int
    history: dict[str, list[float]]
    hparams: Any
    _epoch_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    _epoch_lr: float | None

    def note_train_step(
        self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, epoch: int
    ) -> None:
        """A training step's loss and predictions, for the epoch's metrics. A loss that is not
        finite ends the run (DivergedError) on the CPU, where the check is free; on a GPU it
        would sync every step, so there the epoch-end check catches it."""
        self.note_train_outputs(loss.detach(), logits.detach().argmax(1), y)
        if loss.device.type == "cpu" and not torch.isfinite(loss):
            self._diverged(loss, f"at step {len(self._epoch_outputs)} of epoch {epoch + 1}")

    def note_train_outputs(self, loss: torch.Tensor, preds: torch.Tensor, y: torch.Tensor) -> None:
        """A training step's loss and predicted classes, computed elsewhere (a stack's)."""
        self._epoch_outputs.append((loss, preds, y))

    def note_eval_step(self, split: str, loss: torch.Tensor, logits: torch.Tensor, y) -> None:
        getattr(self, f"{split}_loss").update(loss, len(y))
        getattr(self, f"{split}_acc").update(logits.argmax(1), y)

    def start_train_epoch(self, lr: float | None) -> None:
        """A training epoch begins, at learning rate `lr` (a per-batch schedule: its first)."""
        self._epoch_outputs = []
        self._epoch_lr = lr

    def end_train_epoch(self) -> None:
        """The epoch's training steps into the train metrics, in one update."""
        if self._epoch_outputs:
            losses, preds, targets = zip(*self._epoch_outputs, strict=True)
            sizes = torch.tensor([len(t) for t in targets], device=losses[0].device)
            self.train_loss.update(torch.stack(losses), sizes)
            self.train_acc.update(torch.cat(preds), torch.cat(targets))
            self._epoch_outputs = []

    def epoch_values(self, split: str) -> dict[str, torch.Tensor]:
        """The split's loss and accuracy over the epoch (the metrics are reset), and, for
        train, the epoch's learning rate (one tag for every optimizer)."""
        values = {}
        for name in ("loss", "acc"):
            metric = getattr(self, f"{split}_{name}")
            values[f"{split}/{name}"] = metric.compute()
            metric.reset()
        if split == "train" and self._epoch_lr is not None:
            values["train/lr"] = torch.tensor(self._epoch_lr)
        return values

    def append_history(self, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append(float(value))

    def update_best(self, acc: torch.Tensor, epoch: int) -> None:
        best_before = self.val_acc_best.compute() if self.best_epoch >= 0 else None
        self.val_acc_best.update(acc)
        if best_before is None or acc > best_before:
            self.best_epoch = epoch

    def check_finite(self, loss: torch.Tensor, where: str) -> None:
        """DivergedError for a loss that is not finite."""
        if not torch.isfinite(loss):
            self._diverged(loss, where)

    def _diverged(self, loss: torch.Tensor, where: str) -> None:
        lr, value = self.hparams["optimizer"].get("lr"), float(loss.detach())
        raise DivergedError(
            f"Training diverged: train/loss became {value} {where} (optimizer.lr={lr}; "
            "a too-high learning rate is the usual cause). Lower optimizer.lr, or try "
            "+trainer.gradient_clip_val=1.0. Checkpoints of earlier epochs are kept."
        )
