"""hydra/launcher=stacked: which jobs of a sweep may train together, in stacks.

Jobs stack when they differ only in values that can be applied per network of the stack
(`PER_MODEL`): the seed, the optimizer's per-group settings, dropout, activation, the loss.
Everything else (network shape, data, batch size, epochs, Trainer, scheduler) must be equal.
Each job is first set up by Hydra in its own folder as any job is (its config saved, its
folder claimed), then the stack trains (mnistx.training.stacked). A job that cannot stack
runs as Hydra's basic launcher runs it, in the same sweep (hydra_plugins.mnistx_sweeper).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError

log = logging.getLogger("mnistx")

# Keys whose values may differ between the jobs of one stack (prefixes of config keys).
PER_MODEL = (
    "seed",
    "data.seed",
    "optimizer.lr",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "optimizer.dampening",
    "optimizer.nesterov",
    "optimizer.betas",
    "optimizer.eps",
    "optimizer.alpha",
    "model.dropout",
    "model.activation",
    "loss",
    "tags",
    "notes",
    "output_dir",
)


def why_alone(cfg: DictConfig) -> str | None:
    """None when the job can train in a stack; else why it trains alone."""
    trainer = cfg.trainer
    model = cfg.model
    checks = [
        (
            "DDP or several devices",
            "ddp" in str(trainer.get("strategy", ""))
            or trainer.get("devices") not in (None, 1, "auto", [0]),
        ),
        ("model.batch_norm", bool(model.get("batch_norm"))),
        ("model.activation=prelu (a weight per layer)", model.get("activation") == "prelu"),
        ("model.compile", bool(model.get("compile"))),
        (
            "a network other than mnistx's MLP and CNN",
            str(model.get("_target_"))
            not in ("mnistx.models.networks.MLP", "mnistx.models.networks.CNN"),
        ),
        ("trainer.gradient_clip_val", bool(trainer.get("gradient_clip_val"))),
        ("mixed precision", "16" in str(trainer.get("precision", "32"))),
        ("trainer.fast_dev_run", bool(trainer.get("fast_dev_run"))),
        ("target_acc (each job would stop at its own epoch)", cfg.get("target_acc") is not None),
        (
            "an EMA of the weights",
            bool((cfg.get("callbacks") or {}).get("ema", {}) and cfg.callbacks.ema.get("decay")),
        ),
        (
            "no checkpoints (callbacks.model_checkpoint or last_checkpoint off)",
            not (cfg.get("callbacks") or {}).get("model_checkpoint")
            or not cfg.callbacks.get("last_checkpoint"),
        ),
        (
            "callbacks of its own",
            bool(
                set(cfg.get("callbacks") or {})
                - {"model_checkpoint", "last_checkpoint", "progress_bar", "pictures", "ema"}
            ),
        ),
        ("trainer.profiler", bool(trainer.get("profiler"))),
        (
            "callbacks.model_checkpoint.save_on_train_epoch_end",
            (cfg.get("callbacks") or {}).get("model_checkpoint") is not None
            and cfg.callbacks.model_checkpoint.get("save_on_train_epoch_end") is not None,
        ),
    ]
    for reason, applies in checks:
        if applies:
            return reason
    return None


def stacking_key(cfg: DictConfig) -> str:
    """Equal for jobs that may train in one stack: the job's config (interpolations as
    written, so `${output_dir}/checkpoints` is the same text for every job) without the
    PER_MODEL keys and without Hydra's own settings."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)

    def strip(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v, f"{key}.{k}" if key else str(k))
                for k, v in node.items()
                if not _per_model(f"{key}.{k}" if key else str(k))
            }
        if isinstance(node, list):
            return [strip(v, key) for v in node]
        return node

    return json.dumps(strip(plain, ""), sort_keys=True, default=str)


def _per_model(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in PER_MODEL)


def groups(
    configs: Sequence[DictConfig], max_models: int, fresh: Sequence[bool]
) -> list[list[int]]:
    """Job indices in stacks of at most `max_models` (a job alone is a stack of one). Only
    fresh jobs stack: one whose folder holds a run already is continued, or left finished,
    as always."""
    stacks: dict[str, list[list[int]]] = {}
    alone: list[list[int]] = []
    for i, cfg in enumerate(configs):
        reason = why_alone(cfg) if fresh[i] else "its folder holds a run already"
        if reason is not None:
            log.info("job #%d trains alone: %s", i, reason)
            alone.append([i])
            continue
        key = stacking_key(cfg)
        bucket = stacks.setdefault(key, [[]])
        if len(bucket[-1]) >= max_models:
            bucket.append([])
        bucket[-1].append(i)
    stacked = [g for b in stacks.values() for g in b]
    return (
        [g for g in stacked if len(g) > 1]
        + [[i] for g in stacked if len(g) == 1 for i in g]
        + alone
    )


def check_max_models(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(
            f"hydra.launcher.max_models={value!r} must be a positive integer: the most jobs "
            "trained together in one stack. Example: hydra.launcher.max_models=8"
        )
    return value
