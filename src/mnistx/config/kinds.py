"""Every key a user can set takes the kind of value (a number, an integer, true/false, a list,
a name) that the config groups in conf/ give it, so `data.batch_size=true` or
`model.hidden_sizes=128` get one clear line instead of a silent batch of 1 or a traceback.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.compat.omegaconf import read_yaml
from mnistx.errors import UserError

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
    "tune",
)
# Keys that take several kinds (Lightning: devices=2|auto|[0,1], precision=16|bf16-mixed;
# torch.compile: true or its arguments).
ANY_KIND = {
    "trainer.devices": {"int", "str", "list"},
    "trainer.precision": {"int", "str"},
    "model.compile": {"bool", "dict"},
    "trainer.deterministic": {"bool", "str"},
    "tags": {"list", "str"},  # tags=baseline is tags=[baseline]
    "tune.early_stop_threshold": {"null"},  # null: the range test never stops early
}


def kind_of(value: Any) -> str | None:
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
    root = read_yaml(str(conf / "train.yaml"))
    assert isinstance(root, dict)
    chosen = {k: v for d in root["defaults"] if isinstance(d, dict) for k, v in d.items()}
    for key, value in root.items():
        if key not in ("defaults", "hydra"):
            _leaves(value, str(key), found)
    for group in GROUPS:
        names = sorted(f.name for f in (conf / group).iterdir() if f.name.endswith(".yaml"))
        names.sort(key=lambda name: name != f"{chosen.get(group)}.yaml")
        for name in names:
            _leaves(read_yaml(str(conf / group / name)), group, found)
    return found


def show(value: Any) -> str:
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
    kind = kind_of(value)
    if kind is None or kind in kinds:
        return True
    return kind == "int" and "float" in kinds  # 1 for 1.0


# train.yaml's nodes of plain settings, and their keys.
SETTINGS_NODES = {"cv": ("folds", "fold"), "slurm": ("partition", "account")}


def check_settings_nodes(cfg: DictConfig) -> None:
    """cv and slurm are nodes of settings, not values (`cv=5` replaced the node)."""
    for key in SETTINGS_NODES:
        node = cfg.get(key)
        if node is not None and not isinstance(node, DictConfig):
            keys = ", ".join(f"{key}.{k}" for k in SETTINGS_NODES[key])
            raise UserError(
                f"{key}={show(node)} replaces the {key} settings ({keys}) with a single value. "
                f"Set one of them instead, e.g. {key}.{SETTINGS_NODES[key][0]}=..."
            )


def check_kinds(cfg: DictConfig) -> None:
    """Each key the config groups know takes the kind of value they give it."""
    check_settings_nodes(cfg)  # first: others interpolate them (data.folds: ${cv.folds})
    values = OmegaConf.to_container(cfg, resolve=True)
    defaults = default_values()

    def walk(node: Any, key: str) -> None:
        known = defaults.get(key)
        if known is not None:
            kinds = ANY_KIND.get(key, set()) | {k for v in known if (k := kind_of(v))}
            if kinds - {"null"} and not _accepts(kinds, node):
                if kind_of(node) == "null" and kinds & {"dict"} and key.startswith("callbacks."):
                    return  # callbacks.<name>=null turns a callback off
                example = next((v for v in known if kind_of(v) not in (None, "null")), None)
                wanted = " or ".join(sorted(_WHAT[k] for k in kinds if k != "null"))
                hint = " (true and false are not numbers)" if kind_of(node) == "bool" else ""
                raise UserError(
                    f"{key}={show(node)} must be {wanted}{hint}; its default is "
                    f"{show(example)}. Example: {key}={show(example)}"
                )
            if isinstance(node, list):
                items = {k for v in known if isinstance(v, list) for x in v if (k := kind_of(x))}
                bad = [x for x in node if items and not _accepts(items, x)]
                if bad:
                    raise UserError(
                        f"{key}={show(node)}: {show(bad[0])} is not "
                        f"{' or '.join(sorted(_WHAT[k] for k in items))}. Example: "
                        f"{key}={show(next(v for v in known if isinstance(v, list)))}"
                    )
        if isinstance(node, dict):
            for k, v in node.items():
                if not str(k).startswith("_"):
                    walk(v, f"{key}.{k}" if key else str(k))

    assert isinstance(values, dict)
    for section, node in values.items():
        if section != "hydra":
            walk(node, str(section))


def in_range(
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
        raise UserError(f"{key}={show(value)} must be {what}. Example: {key}={example}")
