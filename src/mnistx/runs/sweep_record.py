"""The one reader of a sweep folder's record (multirun.yaml): its command line, as plain data.

Part of the saved-run reader (mnistx.runs.saved): a sweep folder may come from anywhere, so
only the sweep's own command line and its sweeper's name and search space are read from it;
nothing in it is resolved or built, and the Hydra settings it may pass on to the command that
finishes the sweep are a short list of plain ones.
"""

from __future__ import annotations

import re
from pathlib import Path
from stat import S_ISREG
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.compat.omegaconf import read_yaml
from mnistx.config.overrides import swept_keys_of
from mnistx.errors import UserError
from mnistx.runs.layout import SWEEP_CONFIG
from mnistx.runs.saved import first_line

# Hydra overrides a sweep record may hand to the command that finishes its sweep: choices of
# conf/'s own launchers and sweepers and their plain settings. Never a `_target_`, Hydra's
# callbacks, or the SLURM launcher's shell lines (setup, srun_args).
_SWEEP_HYDRA_KEYS = re.compile(
    r"hydra/(launcher|sweeper)|hydra\.sweeper\.(?!_)[\w.]+|hydra\.callbacks\.sweep\.report|"
    r"hydra\.launcher\.(n_jobs|timeout_min|cpus_per_task|gpus_per_node|tasks_per_node|mem_gb|"
    r"nodes|partition|account|array_parallelism|qos|constraint|name|max_num_timeout|"
    r"prefer|backend|batch_size|pre_dispatch|verbose)|hydra\.job\.chdir|hydra\.mode|"
    r"hydra\.sweep\.dir|hydra\.verbose"
)


def _plain_record(path: Path) -> dict[str, Any]:
    """The command line (hydra.overrides.task and .hydra) and the sweeper's `_target_` and
    `params` of a multirun.yaml, as plain strings, nothing resolved; nothing else is kept."""
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("hydra"), dict):
        raise ValueError("no hydra node")
    hydra = raw["hydra"]
    overrides = hydra["overrides"]
    sweeper = hydra.get("sweeper") or {}
    params = sweeper.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("hydra.sweeper.params is not a mapping")
    target = sweeper.get("_target_")
    return {
        "task": [str(o) for o in overrides["task"]],
        "hydra": [str(o) for o in overrides.get("hydra") or []],
        "target": None if target is None else str(target),
        "params": {str(k): str(v) for k, v in params.items()},
    }


def _as_record(plain: dict[str, Any]) -> DictConfig:
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": plain["task"], "hydra": plain["hydra"]},
                "sweeper": {"_target_": plain["target"], "params": plain["params"]},
            }
        }
    )


def read_sweep_record(folder: Path) -> DictConfig:
    """What a sweep folder's multirun.yaml says of the sweep, as plain data: its command line
    (hydra.overrides.task and .hydra) and its sweeper's `_target_` and `params`, checked before
    any of it is run again. Nothing else of the file is kept, so nothing in it is ever
    resolved or built."""
    path = folder / SWEEP_CONFIG
    try:
        plain = _plain_record(path)
    except Exception as e:
        raise UserError(
            f"Cannot read {path} ({first_line(e)}), the record of the sweep in that folder, "
            f"so it cannot be finished. python -m mnistx.compare {folder} still reports the "
            "jobs it has."
        ) from None
    task, hydra_overrides, target, params = (
        plain[k] for k in ("task", "hydra", "target", "params")
    )
    for word in task:
        if word.split("=", 1)[0].lstrip("+~").startswith(("hydra.", "hydra/")):
            raise UserError(
                f"{path}: its saved command line sets {word!r}, a Hydra setting that a job's "
                "overrides never hold; the record was refused and nothing was run."
            )
    for word in [*task, *hydra_overrides, *params.values(), str(target)]:
        if "${" in word:
            raise UserError(
                f"{path}: {word!r} holds an interpolation, which a sweep's saved command line "
                "never does; the record was refused and nothing was run."
            )
    for word in hydra_overrides:
        key = word.split("=", 1)[0].lstrip("+~")
        if "_target_" in key or not _SWEEP_HYDRA_KEYS.fullmatch(key):
            raise UserError(
                f"{path}: its saved Hydra setting {word!r} is not one mnistx lets a saved sweep "
                "pass on (it could run code), so the sweep was not continued. Run the sweep's "
                "command yourself, with the settings you trust."
            )
    return _as_record(plain)


# swept_keys per multirun.yaml (its path, size and time): every job of a sweep asks.
_swept: dict[tuple[str, int, int], list[str]] = {}


def swept_keys(sweep_dir: Path) -> list[str]:
    """The keys the sweep in `sweep_dir` varies, from its multirun.yaml (written before any job
    starts); [] where there is no readable record (not a sweep). Read once per version of
    the file in a process (~5 ms each: the jobs of a sweep all ask)."""
    path = sweep_dir / SWEEP_CONFIG
    try:
        stat = path.stat()
    except OSError:
        return []
    if not S_ISREG(stat.st_mode):
        return []
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _swept:
        _swept[key] = _read_swept_keys(path)
    return list(_swept[key])


def _read_swept_keys(path: Path) -> list[str]:
    try:  # plain strings only: naming a job's folder runs nothing of the record
        plain = _plain_record(path)
    except Exception:  # not a readable sweep record: the job's values stay unknown
        return []
    if any("${" in w for w in [*plain["task"], *plain["params"], *plain["params"].values()]):
        return []  # an interpolation is never in a sweep's own command line
    return swept_keys_of(_as_record(plain))
