"""Catch bad config values before any data is loaded or any model is built.

Every key a user can set is checked for its kind (a number, an integer, true/false, a list,
a name) against the values the config groups in conf/ give it, so `data.batch_size=true` or
`model.hidden_sizes=128` get one clear line instead of a silent batch of 1 or a traceback; the
keys with a range get a range check below.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib.resources import files
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UnavailableError, UserError

log = logging.getLogger("mnistx")
# Config groups whose files give each key's kind; the root keys come from train.yaml.
GROUPS = (
    "data",
    "model",
    "optimizer",
    "scheduler",
    "loss",
    "augment",
    "trainer",
    "callbacks",
    "logger",
)
# Keys that take several kinds (Lightning: devices=2|auto|[0,1], precision=16|bf16-mixed;
# torch.compile: true or its arguments).
ANY_KIND = {
    "trainer.devices": {"int", "str", "list"},
    "trainer.precision": {"int", "str"},
    "model.compile": {"bool", "dict"},
    "trainer.deterministic": {"bool", "str"},
}
# Below this many validation images, val/acc (and so the best checkpoint) is mostly noise.
MIN_VAL_SIZE = 100


def _kind(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return None if "${" in value else "str"  # an interpolation: its kind is the target's
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return None


def _leaves(node: Any, prefix: str, out: dict[str, list[Any]]) -> None:
    if isinstance(node, dict):
        out.setdefault(prefix, []).append(node)
        for k, v in node.items():
            if k != "defaults" and not str(k).startswith("_"):
                _leaves(v, f"{prefix}.{k}", out)
    else:
        out.setdefault(prefix, []).append(node)


@cache
def default_values() -> dict[str, list[Any]]:
    """Every key's values across the files of its config group (and train.yaml's own keys),
    the default option's first (the examples in messages come from it)."""
    conf = files("mnistx.conf")
    found: dict[str, list[Any]] = {}
    root = OmegaConf.to_container(OmegaConf.load(str(conf / "train.yaml")))
    chosen = {k: v for d in root["defaults"] if isinstance(d, dict) for k, v in d.items()}
    for key, value in root.items():
        if key not in ("defaults", "hydra"):
            _leaves(value, key, found)
    for group in GROUPS:
        names = sorted(f.name for f in (conf / group).iterdir() if f.name.endswith(".yaml"))
        names.sort(key=lambda name: name != f"{chosen.get(group)}.yaml")
        for name in names:
            _leaves(OmegaConf.to_container(OmegaConf.load(str(conf / group / name))), group, found)
    return found


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool | None) else str(value).replace(" ", "")


_WHAT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a name",
    "list": "a list",
    "dict": "a mapping",
}


def _accepts(kinds: set[str], value: Any) -> bool:
    kind = _kind(value)
    if kind is None or kind in kinds:
        return True
    return kind == "int" and "float" in kinds  # 1 for 1.0


def check_kinds(cfg: DictConfig) -> None:
    """Each key the config groups know takes the kind of value they give it."""
    values = OmegaConf.to_container(cfg, resolve=True)
    defaults = default_values()

    def walk(node: Any, key: str) -> None:
        known = defaults.get(key)
        if known is not None:
            kinds = ANY_KIND.get(key, set()) | {k for v in known if (k := _kind(v))}
            if kinds - {"null"} and not _accepts(kinds, node):
                if _kind(node) == "null" and kinds & {"dict"} and key.startswith("callbacks."):
                    return  # callbacks.<name>=null turns a callback off
                example = next((v for v in known if _kind(v) not in (None, "null")), None)
                wanted = " or ".join(sorted(_WHAT[k] for k in kinds if k != "null"))
                hint = " (true and false are not numbers)" if _kind(node) == "bool" else ""
                raise UserError(
                    f"{key}={_show(node)} must be {wanted}{hint}; its default is "
                    f"{_show(example)}. Example: {key}={_show(example)}"
                )
            if isinstance(node, list):
                items = {k for v in known if isinstance(v, list) for x in v if (k := _kind(x))}
                bad = [x for x in node if items and not _accepts(items, x)]
                if bad:
                    raise UserError(
                        f"{key}={_show(node)}: {_show(bad[0])} is not "
                        f"{' or '.join(sorted(_WHAT[k] for k in items))}. Example: "
                        f"{key}={_show(next(v for v in known if isinstance(v, list)))}"
                    )
        if isinstance(node, dict):
            for k, v in node.items():
                if not str(k).startswith("_"):
                    walk(v, f"{key}.{k}" if key else str(k))

    for section, node in values.items():
        if section != "hydra":
            walk(node, section)


def _in_range(
    value: Any,
    key: str,
    low: float,
    high: float | None,
    what: str,
    example: str,
    integer: bool = False,
    closed_high: bool = False,
) -> None:
    """`low <= value < high` (or `<= high`), else one line saying what the key means."""
    ok = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
    ok = ok and value >= low and (high is None or value < high or (closed_high and value == high))
    if not ok:
        raise UserError(f"{key}={_show(value)} must be {what}. Example: {key}={example}")


def _positive(value, key: str, example: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{key}={value} must be a positive number. Example: {key}={example}")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError for values that would fail late or silently train nonsense."""
    check_kinds(cfg)
    _in_range(
        cfg.get("seed"),
        "seed",
        0,
        2**32 - 1,
        "an integer from 0 to 4294967295 (it "
        "seeds the weights, the validation split and the batch order)",
        "42",
        integer=True,
        closed_high=True,
    )
    _positive(cfg.optimizer.get("lr"), "optimizer.lr", "1e-3")
    for key, example in (("weight_decay", "1e-4"), ("momentum", "0.9"), ("eps", "1e-8")):
        if cfg.optimizer.get(key) is not None:
            _in_range(cfg.optimizer[key], f"optimizer.{key}", 0, None, "a number >= 0", example)
    smoothing = cfg.loss.get("label_smoothing")
    if smoothing is not None:
        _in_range(
            smoothing,
            "loss.label_smoothing",
            0,
            1,
            "in [0, 1): the share of the target spread over the other classes",
            "0.1",
        )
    dropout = cfg.model.get("dropout")
    if dropout is not None:
        _in_range(dropout, "model.dropout", 0, 1, "in [0, 1): the share of units dropped", "0.2")
    for key in ("kernel_size", "fc_hidden"):
        if cfg.model.get(key) is not None and not (key == "fc_hidden" and cfg.model[key] == 0):
            _in_range(
                cfg.model[key], f"model.{key}", 1, None, "a positive integer", "5", integer=True
            )
    _check_trainer(cfg.trainer)
    fused = cfg.optimizer.get("fused")
    if fused is not None and not isinstance(fused, bool):
        raise UserError(
            f"optimizer.fused={fused} must be true or false (torch's fused implementation of "
            "the optimizer, or its per-parameter one). Example: optimizer.fused=false"
        )
    for key in ("batch_size", "eval_batch_size"):
        value = cfg.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(
                f"data.{key}={value} must be a positive integer. Example: data.{key}=128"
            )
    val_size = cfg.data.get("val_size")
    if not isinstance(val_size, int) or isinstance(val_size, bool) or val_size < 1:
        raise UserError(
            f"data.val_size={val_size} must be a positive integer: the number of official "
            "training images held out for validation. Example: data.val_size=5000"
        )
    if val_size < MIN_VAL_SIZE:
        log.warning(
            "data.val_size=%d: with so few validation images val/acc moves in steps of "
            "%.1f%%, so val/acc_best and the best checkpoint are mostly noise. %d or more "
            "(e.g. the default 5000) give a usable validation score.",
            val_size,
            100 / val_size,
            MIN_VAL_SIZE,
        )
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UserError(
            f"trainer.max_epochs={epochs} must be an integer >= 1. Example: trainer.max_epochs=10"
        )
    ema = (cfg.get("callbacks") or {}).get("ema")
    decay = ema.get("decay") if ema else 0.0
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise UserError(
            f"callbacks.ema.decay={decay} must be in [0, 1): the weight kept by the moving "
            "average each step (0 turns it off). Example: callbacks.ema.decay=0.999"
        )
    if cfg.get("test_checkpoint") not in ("best", "last"):
        raise UserError(
            f"test_checkpoint={cfg.get('test_checkpoint')} must be best (the checkpoint with the "
            "highest val/acc) or last (the final weights). Example: test_checkpoint=last"
        )
    if cfg.get("threads") is not None:
        _in_range(
            cfg.threads,
            "threads",
            1,
            None,
            "a positive integer (torch threads), or null for one per core",
            "2",
            integer=True,
        )
    if cfg.get("target_acc") is not None:
        _in_range(
            cfg.target_acc,
            "target_acc",
            1e-300,
            1,
            "an accuracy in (0, 1], or null to train for trainer.max_epochs",
            "0.99",
            closed_high=True,
        )
    _in_range(
        cfg.data.get("std"),
        "data.std",
        1e-300,
        None,
        "a positive number (pixels are divided by it)",
        "0.3081",
    )
    for key, low in (("image_size", 1), ("channels", 1), ("num_classes", 2)):
        _in_range(
            cfg.data.get(key),
            f"data.{key}",
            low,
            None,
            f"an integer >= {low}, as the dataset's files have it",
            {"image_size": "28", "channels": "1", "num_classes": "10"}[key],
            integer=True,
        )
    _check_callbacks(cfg.get("callbacks") or {})
    _check_scheduler(cfg)


# scheduler.scheduler.<key>: lowest value, highest (excluded), what it means, an example, integer.
_SCHEDULER_RANGES = (
    ("step_size", 1, None, "a positive integer: epochs between learning-rate drops", "3", True),
    ("gamma", 1e-300, None, "a positive factor (below 1 lowers the learning rate)", "0.5", False),
    ("pct_start", 0, 1, "in [0, 1): the share of the steps spent warming up", "0.25", False),
    ("max_lr", 1e-300, None, "a positive learning rate", "0.01", False),
    ("eta_min", 0, None, "a number >= 0", "0.0", False),
    ("T_max", 1, None, "a positive integer (epochs)", "10", True),
)


def _check_scheduler(cfg: DictConfig) -> None:
    sched = (cfg.get("scheduler") or {}).get("scheduler") or {}
    for key, low, high, what, example, integer in _SCHEDULER_RANGES:
        if sched.get(key) is not None:
            _in_range(
                sched[key], f"scheduler.scheduler.{key}", low, high, what, example, integer=integer
            )
    interval = (cfg.get("scheduler") or {}).get("interval")
    if sched and interval not in ("epoch", "step"):
        raise UserError(
            f"scheduler.interval={_show(interval)} must be epoch (the scheduler steps after each "
            "epoch) or step (after each batch). Example: scheduler.interval=epoch"
        )


def _check_callbacks(callbacks: DictConfig) -> None:
    for name, key, low, example in (
        ("progress_bar", "every_n_batches", 1, "10"),
        ("progress_bar", "refresh_rate", 0, "4"),
        ("pictures", "n_images", 1, "32"),
        ("pictures", "val_images", 1, "1000"),
        ("model_checkpoint", "save_top_k", -1, "1"),
    ):
        node = callbacks.get(name)
        if node and node.get(key) is not None:
            _in_range(
                node[key],
                f"callbacks.{name}.{key}",
                low,
                None,
                f"an integer >= {low}",
                example,
                integer=True,
            )


def _check_trainer(trainer: DictConfig) -> None:
    """The Trainer arguments a user sets most (Lightning's own errors for these are
    tracebacks, some only after the data is loaded)."""
    for key, example in (
        ("accumulate_grad_batches", "4"),
        ("check_val_every_n_epoch", "1"),
        ("log_every_n_steps", "50"),
    ):
        if trainer.get(key) is not None:
            _in_range(
                trainer[key], f"trainer.{key}", 1, None, "a positive integer", example, integer=True
            )
    if trainer.get("num_sanity_val_steps") is not None and trainer.num_sanity_val_steps != -1:
        _in_range(
            trainer.num_sanity_val_steps,
            "trainer.num_sanity_val_steps",
            0,
            None,
            "an integer >= 0 (or -1: the whole validation set)",
            "2",
            integer=True,
        )
    if trainer.get("gradient_clip_val") is not None:
        _in_range(
            trainer.gradient_clip_val,
            "trainer.gradient_clip_val",
            0,
            None,
            "a number >= 0 (0 turns clipping off)",
            "1.0",
        )
    interval = trainer.get("val_check_interval")
    if interval is not None:
        _in_range(
            interval,
            "trainer.val_check_interval",
            0,
            None,
            "a number of training batches (an integer), or a fraction of an epoch in (0, 1]",
            "0.5",
        )
        if isinstance(interval, float) and not 0 < interval <= 1:
            raise UserError(
                f"trainer.val_check_interval={interval} must be a fraction of an epoch in "
                "(0, 1], or an integer number of batches. Example: trainer.val_check_interval=0.5"
            )
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = trainer.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < 0
            or (isinstance(value, float) and value > 1)
        ):
            raise UserError(
                f"trainer.{key}={_show(value)} must be a number of batches (an integer >= 0) or "
                f"a fraction of them in [0, 1]. Example: +trainer.{key}=0.25"
            )


def check_val_interval(interval: Any, batches: int) -> None:
    """An integer val_check_interval is counted in batches of one epoch (checked once the data
    is there; Lightning would stop with a traceback)."""
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > batches:
        raise UserError(
            f"trainer.val_check_interval={interval} is more batches than one epoch has "
            f"({batches}), so validation would never run. Use at most {batches}, or a fraction "
            "of the epoch such as +trainer.val_check_interval=0.5."
        )


def check_accelerator(accelerator: str) -> None:
    """A clear error for an accelerator this machine does not have (Lightning's is a traceback)."""
    import torch

    name = str(accelerator).lower()
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UnavailableError(
            f"trainer.accelerator={accelerator}: gpu not available on this machine (torch sees no "
            "CUDA device). Use trainer.accelerator=cpu, or auto to pick what is there."
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise UnavailableError(
            f"trainer.accelerator={accelerator}: mps not available on this machine (it needs "
            "Apple silicon with macOS 12.3+). Use trainer.accelerator=cpu, or auto."
        )


def check_devices(accelerator: str, devices: object) -> None:
    """More devices than the machine has: one line instead of Lightning's traceback (GPUs) or
    hundreds of competing processes (CPU)."""
    import os

    import torch

    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        return  # "auto", device lists and bad values are Lightning's to judge
    name = str(accelerator).lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        available, what = torch.cuda.device_count(), "GPU(s)"
    elif name in ("cpu", "auto"):
        available, what = os.cpu_count() or 1, "CPU cores"
    else:
        return
    if devices > available:
        raise UserError(
            f"trainer.devices={devices}, but this machine has {available} {what}. Use "
            f"trainer.devices={available} or fewer (on CPUs each device is one process)."
        )
