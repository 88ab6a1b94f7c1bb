"""Where a default-MLP training step's time goes: the hand loop's phases next to a bare
LightningModule's, and the Adam step fused vs unfused.

Hook timestamps split the bare Lightning step into forward, forward->backward (the closure's
zero_grad and bookkeeping), backward, and "between steps" (from one on_train_batch_end to the
next training_step: data fetching, batch transfer, hook dispatch, progress counters). One hand
loop epoch runs after each Lightning epoch, in the same process. Prints medians per step (ms).

    python bench/step_phases.py [--epochs 4] [--data-dir data]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from epoch_time import BATCH, BareModule, _cfg
from hydra.utils import instantiate

from mnistx.models.networks import build_network

now = time.perf_counter


class PhaseModule(BareModule):
    def __init__(self, net, optimizer, record) -> None:
        super().__init__(net, optimizer)
        self.record, self._end = record, None

    def training_step(self, batch, batch_idx):
        t = now()
        if self._end is not None and batch_idx > 0:
            self.record("lightning: between steps", t - self._end)
        loss = super().training_step(batch, batch_idx)
        self._t = now()
        self.record("lightning: forward", self._t - t)
        return loss

    def _lap(self, name: str) -> None:
        t = now()
        self.record(name, t - self._t)
        self._t = t

    def on_before_backward(self, loss) -> None:
        self._lap("lightning: forward -> backward (closure, zero_grad)")

    def on_after_backward(self) -> None:
        self._lap("lightning: backward")

    def on_before_optimizer_step(self, optimizer) -> None:
        self._lap("lightning: after backward -> optimizer step")

    def on_train_batch_end(self, *args) -> None:
        self._lap("lightning: optimizer step and after")
        self._end = self._t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    cfg = _cfg("mlp", args.data_dir, tempfile.mkdtemp(), args.epochs)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup()
    x, y = dm.splits["train"].tensors()
    torch.manual_seed(cfg.seed)
    net = build_network(cfg.model)
    opt = instantiate(cfg.optimizer)(net.parameters())

    def hand_epoch() -> None:
        perm, end = torch.randperm(len(x)), now()
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            xb, yb = x[idx], y[idx]
            t0 = now()
            record("hand loop: batch", t0 - end)
            loss = F.cross_entropy(net(xb), yb)
            t1 = now()
            opt.zero_grad()
            loss.backward()
            t2 = now()
            opt.step()
            end = now()
            record("hand loop: forward", t1 - t0)
            record("hand loop: zero_grad + backward", t2 - t1)
            record("hand loop: optimizer step", end - t2)

    class HandEpochs(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            hand_epoch()

    torch.manual_seed(cfg.seed)
    module = PhaseModule(build_network(cfg.model), instantiate(cfg.optimizer), record)
    L.Trainer(
        accelerator="cpu",
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[HandEpochs()],
    ).fit(module, train_dataloaders=dm.train_dataloader())

    xb, yb = x[:BATCH], y[:BATCH]
    for fused in (False, True):
        adam = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused)
        F.cross_entropy(net(xb), yb).backward()
        for _ in range(20):
            adam.step()
        for _ in range(300):
            t = now()
            adam.step()
            record(f"Adam step alone, fused={fused}", now() - t)

    for name, values in times.items():
        print(f"{name:55s} {statistics.median(values) * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
