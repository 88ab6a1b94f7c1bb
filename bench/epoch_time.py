"""Epoch-time benchmark: mnistx vs a hand-written loop vs the tutorials' per-sample pipeline.

For the default MLP and the default CNN at batch 128, in one process, times training epochs
(train loop only, medians) three ways:
  mnistx    the real Trainer, callbacks, logging and progress bar, as `python -m mnistx.train`
  loop      a minimal PyTorch loop over the same pre-normalised in-memory tensors
  pipeline  torchvision MNIST + per-sample ToTensor/Normalize + DataLoader (the tutorials)
and prints the ratios, writing them as a Markdown table to bench/RESULTS.md. mnistx and the
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
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from mnistx.train import compose_config, train

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
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup()
    x, y = dm.splits["train"]
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

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


def time_pipeline(cfg, epochs: int) -> list[float]:
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(cfg.data.data_dir, train=True, transform=tf)
    ds = Subset(ds, range(len(ds) - cfg.data.val_size))  # same number of samples as the others
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
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
            ours_t, loop_t = time_paired(cfg)
        ours_t, loop_t = ours_t[1:], loop_t[1:]  # the first pair warms up
        ratio = statistics.median(o / h for o, h in zip(ours_t, loop_t, strict=True))
        ours, loop = statistics.median(ours_t), statistics.median(loop_t)
        pipe = statistics.median(time_pipeline(cfg, args.pipeline_epochs))
        rows.append((model, ours, loop, pipe, ratio))
        print(
            f"{model}: mnistx {ours:.2f} s/epoch, loop {loop:.2f} s, pipeline {pipe:.2f} s | "
            f"mnistx/loop {ratio:.2f}x, pipeline/mnistx {pipe / ours:.1f}x",
            flush=True,
        )

    lines = [
        f"Training-epoch time at batch {BATCH}, one process, torch {torch.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} threads. Medians of {args.epochs} "
        f"epochs; mnistx / loop is the median ratio of {args.epochs} pairs of adjacent epochs "
        f"(one mnistx epoch, then one loop epoch); {args.pipeline_epochs} epochs for the "
        "pipeline. `python bench/epoch_time.py`",
        "",
        "| model | mnistx s/epoch | hand loop s/epoch | per-sample pipeline s/epoch "
        "| mnistx / loop | pipeline / mnistx |",
        "|---|---|---|---|---|---|",
    ]
    for model, ours, loop, pipe, ratio in rows:
        lines.append(
            f"| {model} | {ours:.2f} | {loop:.2f} | {pipe:.2f} | {ratio:.2f}x "
            f"| {pipe / ours:.1f}x |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
