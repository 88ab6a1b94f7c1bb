"""The learning-rate range test: `python -m mnistx.train tune=lr_find [model=cnn ...]`.

Lightning's Tuner trains the configured model (network, optimizer, loss, data) for one batch
per learning rate, rising from tune.min_lr to tune.max_lr, and suggests the rate where the
loss falls fastest. The run folder gets lr_find.png (loss against learning rate, the
suggestion marked) and lr_find.json (the suggestion and every point), and the command that
trains with the suggestion is printed. Nothing is checkpointed or tested: it is a look at the
loss before training, not a run to compare, so the trackers and callbacks are left out (and
the configured scheduler: the Tuner sets the rate of every step).
"""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from mnistx.compat.lightning import NullProfiler
from mnistx.config.build import build
from mnistx.config.kinds import in_range
from mnistx.config.targets import trusting
from mnistx.errors import UserError
from mnistx.runs.job import Job
from mnistx.training.module import ClassifierModule
from mnistx.training.runtime import prepare_process

log = logging.getLogger("mnistx")
PLOT, RECORD = "lr_find.png", "lr_find.json"
# Lightning's suggestion skips the first 10 and the last point of the curve.
MIN_POINTS = 20
MODES = ("exponential", "linear")


def check_tune(tune: Any) -> None:
    """The tune.* settings, with one line per mistake."""
    if tune.get("kind") != "lr_find":
        raise UserError(
            f"tune.kind={tune.get('kind')!r} is not a tuning mnistx runs. Use tune=lr_find (the "
            "learning-rate range test), or leave tune unset to train."
        )
    in_range(tune.min_lr, "tune.min_lr", 1e-300, None, "a positive learning rate", "1e-6")
    if not isinstance(tune.max_lr, int | float) or not tune.max_lr > tune.min_lr:
        raise UserError(
            f"tune.max_lr={tune.max_lr} must be a learning rate above tune.min_lr="
            f"{tune.min_lr}: the test rises from one to the other. Example: tune.max_lr=1"
        )
    what = f"an integer >= {MIN_POINTS} (one training batch per learning rate tried)"
    in_range(tune.num_training, "tune.num_training", MIN_POINTS, None, what, "100", integer=True)
    if tune.mode not in MODES:
        raise UserError(
            f"tune.mode={tune.mode!r} must be exponential (even steps of log lr, the usual "
            "choice) or linear. Example: tune.mode=exponential"
        )
    threshold = tune.early_stop_threshold
    if threshold is not None and not (
        isinstance(threshold, int | float) and not isinstance(threshold, bool) and threshold > 1
    ):
        raise UserError(
            f"tune.early_stop_threshold={threshold} must be a number above 1 (stop once the "
            "loss is that many times its best so far), or null to try every learning rate. "
            "Example: tune.early_stop_threshold=4"
        )


def lr_find_job(job: Job, extra_callbacks: Any = ()) -> dict[str, Any]:
    """The range test for one job of the train command: a new single run only."""
    if job.ckpt is not None:
        raise UserError(
            "tune=lr_find cannot continue a run (resume= or ckpt_path=): the range test starts "
            "from fresh weights. Run it without resume/ckpt_path."
        )
    with trusting(job.cfg.get("trusted_targets") or []):
        return lr_find(job.cfg, job.overrides)


def lr_find(cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """Run the test in cfg.output_dir; write lr_find.png and lr_find.json; return the record."""
    from lightning.pytorch.tuner import Tuner

    tune, out = cfg.tune, Path(cfg.output_dir)
    check_tune(tune)
    prepare_process(cfg)
    datamodule = build("data", cfg.data)
    datamodule.prepare_data()
    # The Tuner raises the rate itself, step by step: the configured schedule has no part.
    plain = cfg.copy()
    with open_dict(plain):
        plain.scheduler = {"_target_": None}
    module = ClassifierModule.from_config(plain)
    # As many epochs as the test needs (a small training split may hold fewer batches).
    lean: dict[str, Any] = {"logger": False, "enable_checkpointing": False}
    lean["enable_model_summary"] = False
    lean |= {"max_epochs": -1, "default_root_dir": str(out), "profiler": NullProfiler()}
    trainer = build("trainer", cfg.trainer, callbacks=[], **lean)
    # The Tuner reloads the weights it saved a moment before (its own file in the run folder,
    # deleted after); Lightning's note that it reads them as a full pickle is about that file.
    restore_log = logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector")
    restore_log.setLevel(logging.WARNING)
    finder = Tuner(trainer).lr_find(
        module,
        datamodule=datamodule,
        min_lr=tune.min_lr,
        max_lr=tune.max_lr,
        num_training=tune.num_training,
        mode=tune.mode,
        early_stop_threshold=tune.early_stop_threshold,
        update_attr=False,
    )
    if finder is None:  # Lightning skips it under fast_dev_run
        raise UserError(
            "tune=lr_find does not run under debug=fdr (trainer.fast_dev_run), which trains a "
            "single batch. Leave debug unset for the range test."
        )
    suggestion = finder.suggestion()
    points = len(finder.results["lr"])
    if suggestion is None:
        raise UserError(
            f"The range test stopped after {points} learning rates (the loss diverged early), "
            f"too few for a suggestion. Lower tune.max_lr (now {tune.max_lr}) or raise "
            f"tune.early_stop_threshold (now {tune.early_stop_threshold}; null never stops)."
        )
    command = train_command(overrides, suggestion)
    record = {
        "suggestion": suggestion,
        "command": command,
        **{k: tune[k] for k in ("min_lr", "max_lr", "num_training", "mode")},
        "early_stop_threshold": tune.early_stop_threshold,
        "points": points,
        "lr": [float(x) for x in finder.results["lr"]],
        "loss": [float(x) for x in finder.results["loss"]],
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    _plot(finder, out / PLOT)
    log.info(
        "suggested optimizer.lr=%.3g of %d tried; loss curve in %s", suggestion, points, out / PLOT
    )
    print(f"Suggested optimizer.lr={suggestion:.3g}. Train with it:\n  {command}")
    return record


def train_command(overrides: list[str], lr: float) -> str:
    """The user's command line without tune=..., with optimizer.lr set to `lr`."""
    kept = [
        o
        for o in overrides
        if not o.startswith(("tune=", "tune.", "+tune", "optimizer.lr=", "hydra."))
    ]
    return shlex.join(["python", "-m", "mnistx.train", *kept, f"optimizer.lr={lr:.3g}"])


def _plot(finder: Any, path: Path) -> None:
    from mnistx.sweeps.report_plots import figure

    fig, ax = figure(6.4, 4.8)
    finder.plot(suggest=True, ax=ax)
    ax.set_title(f"learning-rate range test: suggestion {finder.suggestion():.3g}")
    fig.savefig(path, dpi=120, bbox_inches="tight")
