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

from mnistx.runs.compose import compose_config
from mnistx.training.recipe import train

TRACKERS = ("tensorboard", "csv", "mlflow", "wandb")


class EpochClock(L.Callback):
    """Seconds from each training epoch's start to the end of its validation, and the
    seconds spent inside the trackers' own calls (metrics, pictures) during fitting."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.inside_per_epoch: list[float] = []
        self.inside = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        for logger in trainer.loggers:
            for name in ("log_metrics", "log_picture"):
                if hasattr(logger, name):
                    setattr(logger, name, self._timed(getattr(logger, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if self.fitting:
                    self.inside += time.perf_counter() - start

        return timed

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        """The trackers' calls from one epoch's start to the next (the epoch's metrics are
        logged after its last hook) count as that epoch's."""
        if self.fitting:
            self.inside_per_epoch.append(self.inside - self._inside)
        self.fitting = True
        self._t, self._inside = time.perf_counter(), self.inside

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.epochs.append(time.perf_counter() - self._t)

    def on_fit_end(self, trainer, pl_module) -> None:
        self.inside_per_epoch.append(self.inside - self._inside)
        self.fitting = False

    fitting = False


def epoch_time(logger: str, out: Path, data_dir: str, epochs: int) -> tuple[float, float]:
    """(median epoch seconds, seconds inside the tracker's calls per epoch)"""
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
    # The first epoch warms up (and starts the tracker's run).
    inside = clock.inside_per_epoch[1:] or clock.inside_per_epoch
    return statistics.median(clock.epochs[1:] or clock.epochs), statistics.median(inside)


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
            ratios, base, with_tracker, inside = [], [], [], []
            for i in range(args.repeats):
                a, _ = epoch_time(
                    "none", Path(tmp, f"none-{tracker}-{i}"), args.data_dir, args.epochs
                )
                b, c = epoch_time(tracker, Path(tmp, f"{tracker}-{i}"), args.data_dir, args.epochs)
                base.append(a)
                with_tracker.append(b)
                inside.append(c / b)
                ratios.append(b / a)
            row = (tracker, statistics.median(base), statistics.median(with_tracker),
                   statistics.median(ratios), statistics.median(inside))  # fmt: skip
            rows.append(row)
            print(f"{tracker}: {row[2]:.3f} s/epoch vs {row[1]:.3f}: {row[3]:.3f}x, "
                  f"{100 * row[4]:.2f}% of the epoch inside its calls")  # fmt: skip
    lines = [
        f"Epoch time (training + validation, default MLP, batch 128, real MNIST, {args.epochs}"
        f" epochs per run, {args.repeats} adjacent pairs per tracker, medians) with each tracker"
        " against logger=none, and the share of the epoch spent inside the tracker's own calls"
        " (log_metrics, log_picture: metrics, the per-epoch picture, artifacts), timed around"
        " them. The ratio moves with the machine's drift (by up to ~30% between runs on this"
        " shared VM); the share inside"
        " the calls is the tracker's own cost. `python bench/tracker_cost.py`",
        "",
        "| logger | none s/epoch | with it s/epoch | ratio | inside its calls |",
        "|---|---|---|---|---|",
        *(f"| {t} | {a:.3f} | {b:.3f} | {r:.3f}x | {100 * s:.2f}% |" for t, a, b, r, s in rows),
    ]
    Path(__file__).with_name("TRACKER_COST.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
