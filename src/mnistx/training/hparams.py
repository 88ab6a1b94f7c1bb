"""The run's config as flat hyperparameters for the trackers (TensorBoard's HParams tab,
MLflow's params, W&B's config), linked there to its final metrics."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# Metrics the HParams tab shows next to each run; logged as scalars under the same tags.
HPARAM_METRICS = ("val/acc_best", "test/acc")
_SECTIONS = ("model", "optimizer", "scheduler", "loss", "augment", "data", "trainer")
_SKIP = {
    "_target_",
    "_partial_",
    "data_dir",
    "seed",
    "channels",
    "image_size",
    "num_classes",
    "in_channels",
    "mean",
    "std",
}


def flat_hparams(cfg: DictConfig, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """`section/key` -> scalar (lists become strings), plus the chosen config group names."""
    flat: dict[str, Any] = {"seed": cfg.seed}
    for group, choice in (choices or {}).items():
        if group in _SECTIONS:
            flat[group] = choice

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k not in _SKIP:
                    walk(f"{prefix}/{k}", v)
        elif isinstance(node, (int, float, str, bool)):
            flat[prefix] = node
        elif node is None:
            flat[prefix] = "none"
        else:
            flat[prefix] = str(node)

    for section in (s for s in _SECTIONS if s in cfg):
        walk(section, OmegaConf.to_container(cfg[section], resolve=True))
    return flat
