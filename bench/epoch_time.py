"""Epoch-time benchmark: mnistx vs a hand-written loop vs the tutorials' per-sample pipeline.

For the default MLP and the default CNN at batch 128, in one process, times training epochs
(train loop only, medians) three ways:
  mnistx    the real Trainer, callbacks, logging and progress bar, as `python -m mnistx.train`
  loop      a minimal PyTorch loop over the same pre-normalised in-memory tensors
  pipeline  torchvision MNIST + per-sample ToTensor/Normalize + DataLoader (the tutorials)
and, for the MLP, a bare LightningModule (same net and tensors, every callback, logger and
progress bar off): the floor that Lightning's own loop sets on this machine.
All of them use the optimizer of the run's config (mnistx's default: fused Adam), so the
ratios measure the loops and data paths, not the optimizer implementation.
It prints the ratios and writes them as a Markdown table to bench/RESULTS.md. mnistx and the
loop run in alternating adjacent epochs, so drift in the machine's speed hits both alike.

    python bench/epoch_time.py [--epochs 6] [--models mlp,cnn] [--data-dir data]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from mnistx.config.build import build
from mnistx.models.networks import build_network
from mnistx.runs.compose import compose_config
from mnistx.training.recipe import train

BATCH = 128


class PairedClock(L.Callback):
    """Times each mnistx training epoch (validation excluded, as in the other two loops) and,
    right after it, one epoch of the hand-written loop, so each pair of epochs runs on the
    machine in the same state. This machine's speed drifts by tens of percent from minute to
    minute; ratios within pairs are steadier than ratios of separately taken medians."""

    def __init__(self, loop_epoch) -> None:
        self.loop_epoch = loop_epoch
        self.ours: list[float] = []
        self.loop: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.ours.append(time.perf_counter() - self._t)

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # after validation, grad on
        if len(self.ours) == len(self.loop):  # no validation this epoch
            self.ours.append(time.perf_counter() - self._t)
        self.loop.append(self.loop_epoch())


def _cfg(model: str, data_dir: str, out: str, epochs: int):
    return compose_config(
        [
            f"model={model}",
            f"data.data_dir={data_dir}",
            f"data.batch_size={BATCH}",
            f"trainer.max_epochs={epochs}",
            f"output_dir={out}",
            "trainer.enable_model_summary=false",
            "test=false",
        ]
    )


def _run_epoch(net, opt, batches) -> float:
    t = time.perf_counter()
    for x, y in batches():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def hand_loop(cfg):
    """A minimal loop over the same pre-normalised tensors; returns 'run one epoch'."""
    dm = build("data", cfg.data)
    dm.prepare_data()
    dm.setup()
    x, y = dm.splits["train"].tensors()
    torch.manual_seed(cfg.seed)
    net = build_network(cfg.model)
    opt = build("optimizer", cfg.optimizer)(net.parameters())

    def batches():
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            yield x[idx], y[idx]

    return lambda: _run_epoch(net, opt, batches)


def time_paired(cfg) -> tuple[list[float], list[float]]:
    clock = PairedClock(hand_loop(cfg))
    train(cfg, extra_callbacks=[clock])
    return clock.ours, clock.loop


class BareModule(L.LightningModule):
    """The least a LightningModule can be: forward, loss, one optimizer."""

    def __init__(self, net: torch.nn.Module, optimizer) -> None:
        super().__init__()
        self.net = net
        self.make_optimizer = optimizer

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return self.make_optimizer(self.parameters())


def time_bare_lightning(cfg) -> tuple[list[float], list[float]]:
    dm = build("data", cfg.data)
    dm.prepare_data()
    dm.setup()
    clock = PairedClock(hand_loop(cfg))
    torch.manual_seed(cfg.seed)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=cfg.trainer.max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    module = BareModule(build_network(cfg.model), build("optimizer", cfg.optimizer))
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    return clock.ours, clock.loop


def _paired(times: tuple[list[float], list[float]]) -> tuple[float, float, float]:
    """Medians of both, and the median ratio of pairs; the first pair warms up."""
    ours, loop = times[0][1:], times[1][1:]
    ratio = statistics.median(o / h for o, h in zip(ours, loop, strict=True))
    return statistics.median(ours), statistics.median(loop), ratio


def time_pipeline(cfg, epochs: int) -> list[float]:
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(cfg.data.data_dir, train=True, transform=tf)
    ds = Subset(ds, range(len(ds) - cfg.data.val_size))  # same number of samples as the others
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg.model)
    opt = build("optimizer", cfg.optimizer)(net.parameters())
    return [_run_epoch(net, opt, lambda: loader) for _ in range(epochs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="timed epoch pairs per model")
    parser.add_argument("--pipeline-epochs", type=int, default=2)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)

    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as out:
            cfg = _cfg(model, args.data_dir, out, args.epochs + 1)
            ours, loop, ratio = _paired(time_paired(cfg))
            bare = _paired(time_bare_lightning(cfg))[2] if model == "mlp" else None
        pipe = statistics.median(time_pipeline(cfg, args.pipeline_epochs))
        rows.append((model, ours, loop, pipe, ratio, bare))
        print(
            f"{model}: mnistx {ours:.2f} s/epoch, loop {loop:.2f} s, pipeline {pipe:.2f} s | "
            f"mnistx/loop {ratio:.2f}x, pipeline/mnistx {pipe / ours:.1f}x"
            + (f", bare Lightning/loop {bare:.2f}x" if bare else ""),
            flush=True,
        )

    lines = [
        f"Training-epoch time at batch {BATCH}, one process, torch {torch.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} threads. Medians of {args.epochs} "
        f"epochs; mnistx / loop is the median ratio of {args.epochs} pairs of adjacent epochs "
        f"(one mnistx epoch, then one loop epoch); {args.pipeline_epochs} epochs for the "
        "pipeline. Bare Lightning / loop: a LightningModule with only forward, loss and "
        "optimizer, every callback, logger and progress bar off, paired the same way: "
        "Lightning's own per-step cost. All of them use the run's optimizer as its config "
        "builds it (fused Adam). `python bench/epoch_time.py`",
        "",
        "| model | mnistx s/epoch | hand loop s/epoch | per-sample pipeline s/epoch "
        "| mnistx / loop | pipeline / mnistx | bare Lightning / loop |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, ours, loop, pipe, ratio, bare in rows:
        lines.append(
            f"| {model} | {ours:.2f} | {loop:.2f} | {pipe:.2f} | {ratio:.2f}x "
            f"| {pipe / ours:.1f}x | {f'{bare:.2f}x' if bare else '-'} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
