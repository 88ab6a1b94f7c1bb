"""The pictures a run leaves: PNG files in the run folder and TensorBoard's Images tab.

  samples.png           training images with their labels (at the start)
  curves.png            train/val accuracy and loss per epoch (at the end of training)
  predictions.png       test images captioned "pred / true", wrong ones in red
  misclassified.png     the most confidently wrong test images
  confusion_matrix.png  counts per cell, coloured by the fraction of the true class
TensorBoard also gets the misclassified validation images after every epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from mnistx.config.kinds import in_range
from mnistx.inspection import drawing
from mnistx.inspection.inference import captions, most_confident_mistakes, predict_probs
from mnistx.training.loggers import Tracker


class Pictures(L.Callback):
    def __init__(self, out_dir: str, n_images: int = 32, val_images: int = 1000) -> None:
        for key, value, example in (
            ("n_images", n_images, "32"),
            ("val_images", val_images, "1000"),
        ):
            what = "an integer >= 1"
            in_range(value, f"callbacks.pictures.{key}", 1, None, what, example, integer=True)
        self.out = Path(out_dir)
        self.n = n_images
        self.val_images = val_images

    def _emit(self, trainer: L.Trainer, image, tag: str, name: str | None, step: int) -> None:
        """As a PNG file and to every tracker, encoded once for all."""
        if not trainer.is_global_zero:
            return
        png = drawing.png(image)
        file = self.out / name if name else None
        if file is not None:
            file.write_bytes(png)
        for logger in trainer.loggers:
            if isinstance(logger, Tracker):
                logger.log_picture(tag, image, png, file, step)

    def _grid(self, dm, x, y, idx, probs=None, title: str = ""):
        if probs is None:
            titles, wrong = [f"label {int(y[i])}" for i in idx], None
        else:
            titles = captions(probs, y, idx)
            wrong = (probs[idx].argmax(1) != y[idx]).tolist()
        return drawing.image_grid(x[idx].cpu(), titles, wrong, dm.mean, dm.std, title)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.samples(trainer, trainer.datamodule)  # type: ignore[attr-defined]

    def samples(self, trainer: L.Trainer, dm: Any) -> None:
        """samples.png: the first training images of the run's split."""
        dm.setup("fit")
        x, y = dm.splits["train"].rows(slice(0, self.n))
        idx = torch.arange(len(x))
        self._emit(
            trainer, self._grid(dm, x, y, idx, title="Training images"), "samples", "samples.png", 0
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        dm = trainer.datamodule  # type: ignore[attr-defined]
        x, y = self.val_rows(dm)
        self.val_mistakes(trainer, dm, x, y, predict_probs(pl_module, x), trainer.current_epoch)

    def val_rows(self, dm: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation images the per-epoch picture is drawn from, and their labels."""
        return dm.splits["val"].rows(slice(0, self.val_images))

    def val_mistakes(
        self, trainer: L.Trainer, dm: Any, x: torch.Tensor, y: torch.Tensor, probs, epoch: int
    ) -> None:
        """TensorBoard's per-epoch picture: the most confidently wrong of `val_rows`."""
        idx = most_confident_mistakes(probs, y, self.n)
        if len(idx):
            fig = self._grid(dm, x, y.cpu(), idx, probs, "Misclassified validation images")
            self._emit(trainer, fig, "val/misclassified", None, epoch)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "history", None)  # ClassifierModule's per-epoch record
        self.curves(trainer, history, trainer.current_epoch)

    def curves(self, trainer: L.Trainer, history: dict | None, epoch: int) -> None:
        """curves.png: the per-epoch record of the fit."""
        if history:
            self._emit(trainer, drawing.curves_figure(history), "curves", "curves.png", epoch)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._test_probs: list[torch.Tensor] = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the test step's predictions (in order on one device; DDP ranks see shards)."""
        if trainer.world_size == 1 and isinstance(outputs, torch.Tensor):
            self._test_probs.append(outputs.float().softmax(1).cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from torchmetrics.functional.classification import multiclass_confusion_matrix

        dm = trainer.datamodule  # type: ignore[attr-defined]
        x, y = dm.splits["test"].tensors()
        y = y.cpu()
        kept = getattr(self, "_test_probs", [])
        probs = torch.cat(kept) if kept else torch.empty(0)
        if len(probs) != len(y):  # a limited or sharded test: predict the whole set here
            probs = predict_probs(pl_module, x)
        step = trainer.current_epoch
        first = torch.arange(min(self.n, len(x)))
        self._emit(
            trainer,
            self._grid(dm, x, y, first, probs, "Test predictions"),
            "test/predictions",
            "predictions.png",
            step,
        )
        wrong = most_confident_mistakes(probs, y, self.n)
        if len(wrong):
            fig = self._grid(dm, x, y, wrong, probs, "Most confidently wrong test images")
            self._emit(trainer, fig, "test/misclassified", "misclassified.png", step)
        confmat = multiclass_confusion_matrix(probs.argmax(1), y, num_classes=probs.shape[1])
        names = dm.classes or [str(i) for i in range(probs.shape[1])]
        self._emit(
            trainer,
            drawing.confusion_figure(confmat, names),
            "test/confusion_matrix",
            "confusion_matrix.png",
            step,
        )
