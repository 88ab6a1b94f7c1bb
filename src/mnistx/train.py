"""Train, validate and test one configuration: `python -m mnistx.train [key=value ...]`.

Torch and Lightning are imported only once a run really starts, so `--help` and `--cfg job`
answer at once.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError
from mnistx.run_dir import register_resolvers

register_resolvers()
log = logging.getLogger("mnistx")


def _build(what: str, build):
    """Instantiate a config node, turning Hydra's wrapped TypeErrors into a UserError."""
    from hydra.errors import InstantiationException

    try:
        return build()
    except (InstantiationException, TypeError) as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) else e
        if isinstance(cause, UserError):
            raise cause from None
        detail = str(cause or e).strip().splitlines()[-1]
        raise UserError(
            f"Could not build {what} from the config: {detail}. Check the {what}.* overrides "
            f"(`python -m mnistx.train --cfg job` prints the composed config)."
        ) from None


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m mnistx.train <overrides>` would run, for notebooks, tests and
    benchmarks. Outside a Hydra run, pass `output_dir=<folder>` among the overrides."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("mnistx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _quiet_libraries() -> None:
    """Send library logs through our handlers once, and drop chatter users don't act on."""
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # "GPU available: False", tips and "Restoring states": the summary says what matters.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
    # Metrics are logged per epoch, so the per-step logging interval does not matter.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


def train(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    choices: dict[str, str] | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Fit, test the best checkpoint, write metrics.json and return its contents.

    `extra_callbacks` (Lightning callbacks) are for programs that drive mnistx, e.g. benchmarks.
    """
    from mnistx.checks import check_accelerator, check_config

    check_config(cfg)
    import lightning.pytorch as L
    import torch
    from hydra.utils import instantiate
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import Timer

    from mnistx.hparams import flat_hparams, log_hparams
    from mnistx.module import ClassifierModule
    from mnistx.report import print_summary, write_json

    _quiet_libraries()
    check_accelerator(cfg.trainer.accelerator)
    out = Path(cfg.output_dir)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = _build("data", lambda: instantiate(cfg.data))
    parts = {
        k: OmegaConf.to_container(cfg[k], resolve=True)
        for k in ("model", "optimizer", "loss", "scheduler")
    }
    module = _build("model", lambda: ClassifierModule(**parts))
    _build("optimizer", lambda: instantiate(cfg.optimizer)(module.parameters()))  # fail fast
    timer = Timer(verbose=False)
    callbacks = [
        instantiate(c)
        for name, c in cfg.callbacks.items()
        if c and (name != "progress_bar" or cfg.trainer.get("enable_progress_bar", True))
    ] + [timer, *extra_callbacks]
    logger = instantiate(cfg.logger)
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    except Exception as e:  # Hydra wraps the Trainer's own error as the __cause__
        cause = e if isinstance(e, MisconfigurationException) else e.__cause__
        if not isinstance(cause, MisconfigurationException | ValueError):
            raise
        raise UserError(
            f"Invalid trainer settings: {cause} Check the trainer.* overrides."
        ) from None
    log_hparams(logger, flat_hparams(cfg, choices))

    trainer.fit(module, datamodule=datamodule)
    epochs = trainer.current_epoch  # completed epochs
    train_seconds = timer.time_elapsed("train")
    fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    results = {}
    if cfg.test:  # the best checkpoint when there is one, else the final weights
        results = trainer.test(
            module, datamodule=datamodule, ckpt_path="best" if best else None, verbose=False
        )[0]
    metrics: dict[str, Any] = {
        "status": "ok",
        "test/acc": results.get("test/acc"),
        "test/loss": results.get("test/loss"),
        "val/acc_best": fit_metrics.get("val/acc_best"),
        "best_epoch": module.best_epoch + 1,  # counted from 1
        "epochs": epochs,
        "train_seconds": round(train_seconds, 3),
        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 3),
        "params": sum(p.numel() for p in module.net.parameters()),
        "accelerator": trainer.strategy.root_device.type,
        **{k: fit_metrics.get(k) for k in ("train/loss", "train/acc", "val/loss", "val/acc")},
        "best_checkpoint": best or None,
        "overrides": list(overrides),
        "output_dir": str(out),
    }
    write_json(out / "metrics.json", metrics)
    print_summary(metrics)
    return metrics


def _fail(out: Path, overrides: Sequence[str], reason: str) -> None:
    from mnistx.report import write_json

    write_json(
        out / "metrics.json",
        {
            "status": "failed",
            "reason": reason,
            "overrides": list(overrides),
            "output_dir": str(out),
        },
    )


def _report_user_error(error: UserError) -> None:
    """One unwrapped paragraph on stderr, and the same line in the run's log file."""
    print(f"error: {error}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, str(error), None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="pkg://mnistx.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    out = Path(cfg.output_dir)
    start = time.time()
    try:
        metrics = train(cfg, overrides, dict(hc.runtime.choices))
    except UserError as e:
        _fail(out, overrides, str(e))
        _report_user_error(e)
        if hc.mode == RunMode.RUN:
            sys.exit(1)
        return None  # in a sweep: recorded as failed, the other jobs go on
    except Exception as e:
        _fail(out, overrides, f"{type(e).__name__}: {e}")
        raise
    log.info("finished in %.1f s; outputs in %s", time.time() - start, out)
    return metrics.get("val/acc_best")


if __name__ == "__main__":
    main()
