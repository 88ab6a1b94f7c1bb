"""mnistx's Lightning callbacks, and the factories conf/callbacks/ builds them with.

A factory returns None for a callback its settings turn off (the recipe leaves it out), so
"off" is a value in the config, not a name check in the recipe.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback, EarlyStopping, EMAWeightAveraging

from mnistx.compat.lightning import PromptRichProgressBar
from mnistx.config.kinds import in_range
from mnistx.errors import UserError


class ProgressBar(PromptRichProgressBar):
    """Per batch, Lightning's bar updates its task and re-reads every logged metric, which
    costs a measurable share of a small model's ~2 ms step; every `every_n_batches` is plenty
    for a bar that redraws a few times a second."""

    def __init__(self, every_n_batches: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every_n_batches = max(1, every_n_batches)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        done = batch_idx + 1
        if done % self.every_n_batches == 0 or done == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def progress_bar(enabled: bool = True, **kwargs: Any) -> ProgressBar | None:
    """The bar, unless the Trainer runs without one (trainer.enable_progress_bar=false:
    Lightning refuses a progress bar callback then)."""
    for key, low, example in (("every_n_batches", 1, "10"), ("refresh_rate", 0, "4")):
        if kwargs.get(key) is not None:
            what = f"an integer >= {low}"
            in_range(kwargs[key], f"callbacks.progress_bar.{key}", low, None, what, example, True)
    return ProgressBar(**kwargs) if enabled else None


def ema(decay: float = 0.0, **kwargs: Any) -> Callback | None:
    """Lightning's EMAWeightAveraging; an average with decay 0 is the weights: off."""
    if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay < 1:
        raise UserError(
            f"callbacks.ema.decay={decay} must be in [0, 1): the weight kept by the moving "
            "average each step (0 turns it off). Example: callbacks.ema.decay=0.999"
        )
    return EMAWeightAveraging(decay=decay, **kwargs) if decay else None


def finish_line(target: float) -> Callback:
    """Lightning's EarlyStopping used as a finish line (target_acc=): stop at the first
    validation whose val/acc reaches `target`, never for lack of improvement."""
    return EarlyStopping(
        monitor="val/acc",
        mode="max",
        stopping_threshold=target,
        patience=10**9,
        check_on_train_epoch_end=False,
        verbose=False,
    )
