"""What each tracker costs a run: the default MLP's epoch time (training and validation,
everything a tracker does per epoch: metrics, pictures, artifacts) with each `logger=` option
against `logger=none`, in one process.

Runs alternate (none, tracker, none, tracker, ...) so the machine's drift hits both alike;
the ratio is the median over adjacent pairs of each run's median epoch time. It prints the
ratios and writes bench/TRACKER_COST.md.

    python bench/tracker_cost.py [--epochs 3] [--repeats 3] [--data-dir data]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L

from mnistx.config.compose import compose_config
from mnistx.training.recipe import train

TRACKERS = ("tensorboard", "csv", "mlflow", "wandb")


class EpochClock(L.Callback):
    """Seconds from each training epoch's start to the end of its validation (and the
    trackers' work for it)."""

    def __init__(self) -> None:
        self.epochs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.epochs.append(time.perf_counter() - self._t)


def epoch_time(logger: str, out: Path, data_dir: str, epochs: int) -> float:
    clock = EpochClock()
    overrides = [
        f"logger={logger}",
        f"output_dir={out}",
        f"data.data_dir={data_dir}",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
    ]
    if logger == "mlflow":  # the store and artifacts in the benchmark's own folder
        overrides += [
            f"logger.mlflow.tracking_uri=sqlite:///{out.parent}/mlflow.db",
            f"logger.mlflow.artifact_location={out.parent}/mlflow-artifacts",
        ]
    cfg = compose_config(overrides)
    train(cfg, extra_callbacks=[clock])
    return statistics.median(clock.epochs[1:] or clock.epochs)  # the first warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("MNISTX_DATA_DIR", "data"))
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tracker in TRACKERS:
            ratios, base, with_tracker = [], [], []
            for i in range(args.repeats):
                a = epoch_time("none", Path(tmp, f"none-{tracker}-{i}"), args.data_dir, args.epochs)
                b = epoch_time(tracker, Path(tmp, f"{tracker}-{i}"), args.data_dir, args.epochs)
                base.append(a)
                with_tracker.append(b)
                ratios.append(b / a)
            rows.append((tracker, statistics.median(base), statistics.median(with_tracker),
                         statistics.median(ratios)))  # fmt: skip
            print(f"{tracker}: {rows[-1][2]:.3f} s/epoch vs {rows[-1][1]:.3f}: {rows[-1][3]:.3f}x")
    lines = [
        f"Epoch time (training + validation, default MLP, batch 128, real MNIST, {args.epochs}"
        f" epochs per run, {args.repeats} adjacent pairs per tracker, medians) with each tracker"
        " against logger=none. `python bench/tracker_cost.py`",
        "",
        "| logger | none s/epoch | with it s/epoch | ratio |",
        "|---|---|---|---|",
        *(f"| {t} | {a:.3f} | {b:.3f} | {r:.3f}x |" for t, a, b, r in rows),
    ]
    Path(__file__).with_name("TRACKER_COST.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
