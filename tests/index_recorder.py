"""A Lightning callback for the DDP test, loaded by the training subprocess from tests/: each
rank writes the training-sample indices (rows of the decoded training set) it is given in each
epoch, and the rows of the validation split."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as L


class IndexRecorder(L.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out = Path(out_dir)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        order = trainer.train_dataloader.indices()
        name = f"epoch{trainer.current_epoch}-rank{trainer.global_rank}.json"
        (self.out / name).write_text(json.dumps(order.tolist()))
        val = trainer.datamodule.splits["val"].index
        (self.out / "val-rows.json").write_text(json.dumps(val.tolist()))
