"""Lightning's Rich progress bar, redrawn every few batches instead of after every batch."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Per batch, Lightning's bar updates its task and re-reads every logged metric, which
    costs a measurable share of a small model's ~2 ms step; every `every_n_batches` is plenty
    for a bar that redraws a few times a second."""

    def __init__(self, every_n_batches: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.every_n_batches = max(1, every_n_batches)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        done = batch_idx + 1
        if done % self.every_n_batches == 0 or done == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
