"""Multiruns: which keys a sweep varies, readable job folder names, the end-of-sweep report.

Hydra gives each job the full override list, constants included; only the multirun's own
command line (and `hydra.sweeper.params`) says what is swept. `SweepCallback` reads that in
the launching process and hands it to the jobs through an environment variable, which local
processes, joblib workers and SLURM jobs all inherit.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEPT_ENV = "MNISTX_SWEPT_KEYS"
log = logging.getLogger("mnistx")
_claimed: dict[tuple[str, str], str] = {}


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


def swept_values(overrides: Sequence[str], keys: Sequence[str] | None = None) -> dict[str, str]:
    """This job's values of the swept keys, in sweep order."""
    if keys is None:
        keys = [k for k in os.environ.get(SWEPT_ENV, "").split(",") if k]
    values = parse_overrides(overrides)
    return {k: values[k] for k in keys if k in values}


def sweep_grid(cfg: DictConfig) -> list[list[str]] | None:
    """Every job of a grid sweep (Hydra's basic sweeper) as its overrides, in launch order,
    from the sweep's multirun.yaml; None for other sweepers (an Optuna search has no grid)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if "BasicSweeper" not in str(cfg.hydra.sweeper.get("_target_", "")):
        return None
    params = cfg.hydra.sweeper.get("params") or {}
    words = [f"{k}={v}" for k, v in params.items()] + list(cfg.hydra.overrides.task)
    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(words), None)
    return jobs


def _short(value: str) -> str:
    """Optuna's floats (0.00031622776601683794) shortened for a folder name."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 8 or not re.search(r"[.eE]", value) else f"{number:.4g}"


def job_dirname(num: Any, overrides: Sequence[str] | None, sweep_dir: str) -> str:
    """`optimizer.lr=0.01,model.activation=tanh` for a sweep job; the job number when nothing
    is known to be swept. A name already on disk (a repeated Optuna trial, a resumed study)
    gets `-1`, `-2`, ..."""
    values = swept_values(list(overrides or []))
    if not values:
        return str(num)
    name = ",".join(f"{k}={_short(v)}" for k, v in values.items())
    name = re.sub(r"[/\\\s:]+", "_", name)[:200]
    memo = (sweep_dir, f"{num}:{name}")
    if memo in _claimed:
        return _claimed[memo]
    os.makedirs(sweep_dir, exist_ok=True)
    candidate, n = name, 0
    while True:
        try:
            os.mkdir(os.path.join(sweep_dir, candidate))
            _claimed[memo] = candidate
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{name}-{n}"


class SweepCallback(Callback):
    """Publishes the swept keys to the jobs, and writes the comparison report at the end;
    for an Optuna search, also resumes its stored study and reports the best trial."""

    def __init__(self, report: bool = True) -> None:
        self.report = report

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistx.optuna_search import is_optuna, prepare_study

        os.environ[SWEPT_ENV] = ",".join(swept_keys_of(config))
        if is_optuna(config):  # runs before Hydra builds the sweeper from this config
            prepare_study(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistx.compare import compare
        from mnistx.optuna_search import is_optuna, write_best

        if is_optuna(config):
            write_best(config)
        if not self.report:
            return

        try:
            compare([str(config.hydra.sweep.dir)])
        except Exception as e:  # the runs are safe on disk; the report can be made again
            log.error(
                "Could not write the comparison report (%s). Make it again with: "
                "python -m mnistx.compare %s",
                e,
                config.hydra.sweep.dir,
            )
