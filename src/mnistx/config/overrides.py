"""A sweep's command line: which keys it varies, each job's values, and Hydra override text.

Hydra gives each job the full override list, constants included; only the multirun's own
command line (and `hydra.sweeper.params`), which the sweep's multirun.yaml records, says what
is swept (mnistx.runs.sweep_record.swept_keys reads it there, for every job).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from omegaconf import DictConfig


def override_key(override: str) -> str:
    """`+optimizer.lr=0.1` -> `optimizer.lr`; `model=cnn` -> `model`."""
    return override.split("=", 1)[0].lstrip("+~")


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    return {override_key(o): o.split("=", 1)[1] for o in overrides if "=" in o}


def swept_keys_of(cfg: DictConfig) -> list[str]:
    """Keys varied by a multirun: sweep syntax on its command line, plus sweeper params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(cfg.hydra.overrides.task))
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    params = cfg.hydra.sweeper.get("params") or {}
    keys += [str(k) for k in params if str(k) not in keys]
    return keys


def swept_values(overrides: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """This job's values of the swept keys (`swept_keys_of` its sweep record), in sweep
    order."""
    values = parse_overrides(overrides)
    return {k: values[k] for k in keys if k in values}


def sweep_grid(cfg: DictConfig) -> list[list[str]] | None:
    """Every job of a grid sweep (Hydra's basic sweeper) as its overrides, in launch order,
    from the sweep's multirun.yaml; None for other sweepers (an Optuna search has no grid)."""
    from mnistx.compat.hydra import grid_jobs

    if not str(cfg.hydra.sweeper.get("_target_", "")).endswith(("BasicSweeper", "GridSweeper")):
        return None
    params = cfg.hydra.sweeper.get("params") or {}
    words = [f"{k}={v}" for k, v in params.items()] + list(cfg.hydra.overrides.task)
    return grid_jobs(words)


def short_value(value: str) -> str:
    """Optuna's floats (0.00031622776601683794) shortened for a folder name or a table."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 8 or not re.search(r"[.eE]", value) else f"{number:.4g}"


def job_name(overrides: Sequence[str], keys: Sequence[str]) -> str | None:
    """A job's folder name from its swept values (None when nothing is known to be swept)."""
    values = swept_values(list(overrides), keys)
    if not values:
        return None
    name = ",".join(f"{k}={short_value(v)}" for k, v in values.items())
    return re.sub(r"[/\\\s:]+", "_", name)[:200]


def hydra_quoted(value: str) -> str | None:
    """`value` quoted for Hydra's override parser (None when it holds both quotes)."""
    for quote in ("'", '"'):
        if quote not in value and "\\" not in value:
            return f"{quote}{value}{quote}"
    return None


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (strings quoted when Hydra would split them)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and not re.fullmatch(r"[\w./@+-]+", value):
        return hydra_quoted(value) or value
    return str(value)
