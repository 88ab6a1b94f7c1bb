"""The LightningModule: one classifier, any model/loss/optimizer/scheduler from config."""

from __future__ import annotations

import copy
import functools
import inspect
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from omegaconf import DictConfig, OmegaConf
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnistx.compat.lightning import DirectHookName, attached_trainer
from mnistx.compat.torch import restart_from_closed_form
from mnistx.config.build import build, check_arguments, complete
from mnistx.models.networks import build_network
from mnistx.training.epochs import EpochRecord

# Scheduler attributes set from the run's length (CosineAnnealingLR, OneCycleLR).
_HORIZON = ("T_max", "total_steps", "_schedule_phases")


class ClassifierModule(DirectHookName, EpochRecord, L.LightningModule):
    """Builds its parts from plain config dicts, so a checkpoint rebuilds itself.

    The hyperparameters saved in checkpoints are only those dicts (strings and numbers), never
    modules or partial functions, so checkpoints load under torch's `weights_only=True`.
    Per-step work is kept to the forward/backward pass and metric accumulation; values are
    logged once per epoch.
    """

    def __init__(
        self,
        model: dict[str, Any],
        optimizer: dict[str, Any],
        loss: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = build_network(model)
        self.channels_last = bool(model.get("channels_last"))
        transform = build("augment", augment) if augment else None
        self.augment = None if transform is None or transform.identity else transform
        # Lets Lightning's model summary show each layer's input and output shapes.
        c, size = model.get("in_channels", 1), model.get("image_size", 28)
        self.example_input_array = torch.zeros(2, c, size, size)
        self.criterion = build("loss", loss)
        # Built once, when Lightning asks (configure_optimizers); its arguments checked now.
        self.make_optimizer = build("optimizer", optimizer)
        check_arguments("optimizer", self.make_optimizer, [])
        n = model["num_classes"]
        for split in ("train", "val", "test"):
            setattr(self, f"{split}_loss", MeanMetric(nan_strategy="disable"))
            setattr(
                self, f"{split}_acc", MulticlassAccuracy(n, average="micro", validate_args=False)
            )
        self.val_acc_best = MaxMetric()
        self.best_epoch = -1
        # Training-step outputs of the current epoch, fed to the metrics in one update at the
        # end: a torchmetrics update per step costs ~0.2 ms, as much as a small MLP's step.
        self._epoch_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._epoch_lr: float | None = None
        # Per-epoch values for metrics.json (the comparison report plots them); kept in
        # checkpoints so a resumed run still has its whole curve.
        self.history: dict[str, list[float]] = {}

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ClassifierModule:
        """The module a composed run config describes, from plain (resolved) dicts."""
        parts: dict[str, Any] = {
            k: OmegaConf.to_container(cfg[k], resolve=True)
            for k in ("model", "optimizer", "loss", "scheduler", "augment")
            if k in cfg
        }
        return cls(**parts)

    @classmethod
    def from_checkpoint(cls, ckpt: Path) -> ClassifierModule:
        """A trained module from a checkpoint read as data by the one reader of saved runs
        (checked, and upgraded when an earlier mnistx wrote it): what Lightning's
        load_from_checkpoint gives, without a second, unchecked read."""
        from mnistx.runs.saved import read_checkpoint

        state = read_checkpoint(ckpt)
        module = cls(**state["hyper_parameters"])
        module.load_state_dict(state["state_dict"])
        module.on_load_checkpoint(state)
        return module

    @property
    def trainer_attached(self) -> bool:
        return attached_trainer(self) is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Batch augmentation and memory layout, on the training device, after the transfer."""
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            return batch  # the model summary's example input
        x, y = batch
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.augment is not None and self.trainer_attached and self.trainer.training:
            x = self.augment(x)
        return x, y

    def _step(
        self, split: str, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the logits."""
        x, y = batch
        logits = self.net(x)
        loss = self.criterion(logits, y)
        if split == "train":
            self.note_train_step(loss, logits, y, self.current_epoch)
        else:
            self.note_eval_step(split, loss, logits, y)
        return loss, logits

    def _log_epoch(self, split: str) -> dict[str, torch.Tensor]:
        values = self.epoch_values(split)
        scores = {k: v for k, v in values.items() if k != "train/lr"}
        self.log_dict(scores, prog_bar=True, sync_dist=False)
        # Every tracker's x-axis is the epoch (counted from 0, as history's index), not the
        # batch count: runs with different batch sizes line up.
        self.log("step", float(self.current_epoch), sync_dist=False)
        if "train/lr" in values:
            self.log("train/lr", float(values["train/lr"]), sync_dist=False)
        if split != "test" and not self.trainer.sanity_checking:
            self.append_history(values)
        return values

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step("train", batch)[0]

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        """The test logits, for callbacks (the pictures use them instead of predicting the
        test set a second time)."""
        return self._step("test", batch)[1].detach()

    def on_train_epoch_start(self) -> None:
        optimizers = self.trainer.optimizers
        self.start_train_epoch(float(optimizers[0].param_groups[0]["lr"]) if optimizers else None)

    def on_train_epoch_end(self) -> None:
        self.end_train_epoch()
        loss = self._log_epoch("train")["train/loss"]
        self.check_finite(loss, f"in epoch {self.current_epoch + 1}")

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val")["val/acc"]
        if self.trainer.sanity_checking:
            return
        self.update_best(acc, self.current_epoch)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What Lightning does not keep but an exact resume needs: the best-so-far (torchmetrics
        # states are not saved), the curves, and the RNG that dropout draws from.
        checkpoint["mnistx"] = {
            "history": self.history,
            "best_epoch": self.best_epoch,
            "val_acc_best": float(self.val_acc_best.compute()) if self.best_epoch >= 0 else None,
            "torch_rng": torch.get_rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("mnistx", {})
        self.history = state.get("history", {})
        self.best_epoch = state.get("best_epoch", -1)
        self.val_acc_best.reset()
        if state.get("val_acc_best") is not None:
            self.val_acc_best.update(torch.tensor(state["val_acc_best"]))
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])

    def on_train_start(self) -> None:
        """An extended run (resumed with a larger trainer.max_epochs) restores its schedule's
        old length with the rest of its state: a cosine would sit at eta_min, a one-cycle would
        stop at its last step. Stretch such a schedule to this fit's length instead, so the
        remaining epochs follow what a schedule planned for the new count does from here."""
        horizons = getattr(self, "_horizons", [])
        for config, fresh in zip(self.trainer.lr_scheduler_configs, horizons, strict=False):
            scheduler = config.scheduler
            if all(getattr(scheduler, k) == v for k, v in fresh.items()):
                continue
            for key, value in fresh.items():
                setattr(scheduler, key, value)
            restart_from_closed_form(scheduler)  # cosine: its step is relative

    def _fused_unsupported(self) -> bool:
        """Fused optimizers unscale fp16 gradients inside their step, so Lightning cannot clip
        them first: that combination falls back to the unfused one."""
        trainer = attached_trainer(self)
        return (
            trainer is not None
            and str(trainer.precision).startswith("16")
            and bool(trainer.gradient_clip_val)
        )

    def configure_optimizers(self) -> Any:
        make_optimizer = self.make_optimizer
        if make_optimizer.keywords.get("fused") and self._fused_unsupported():
            make_optimizer = functools.partial(make_optimizer, fused=False)
        optimizer = complete("optimizer", make_optimizer, params=self.parameters())
        sched_cfg = dict(self.hparams["scheduler"] or {})
        interval = sched_cfg.pop("interval", "epoch")
        self._horizons = []
        if not sched_cfg.get("_target_"):  # scheduler=none: a constant learning rate
            return optimizer
        make = build("scheduler", sched_cfg)
        kwargs = {}
        if "total_steps" in inspect.signature(make.func).parameters and "total_steps" not in (
            make.keywords
        ):
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = complete("scheduler", make, optimizer, **kwargs)
        self._horizons = [
            {k: copy.deepcopy(getattr(scheduler, k)) for k in _HORIZON if hasattr(scheduler, k)}
        ]
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }
