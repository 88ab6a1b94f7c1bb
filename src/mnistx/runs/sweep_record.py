"""The one reader of a sweep folder's record (multirun.yaml): its command line, as plain data.

Part of the saved-run reader (mnistx.runs.saved): a sweep folder may come from anywhere, so
only the sweep's own command line and its sweeper's name and search space are read from it;
nothing in it is resolved or built, and the Hydra settings it may pass on to the command that
finishes the sweep are a short list of plain ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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


def read_sweep_record(folder: Path) -> DictConfig:
    """What a sweep folder's multirun.yaml says of the sweep, as plain data: its command line
    (hydra.overrides.task and .hydra) and its sweeper's `_target_` and `params`. Nothing else
    of the file is kept, so nothing in it is ever resolved or built."""
    path = folder / SWEEP_CONFIG
    try:
        record = OmegaConf.load(path)
        hydra = record.hydra
        task = [str(o) for o in hydra.overrides.task]
        hydra_overrides = [str(o) for o in hydra.overrides.get("hydra") or []]
        sweeper = hydra.get("sweeper") or {}
        target = sweeper.get("_target_")
        raw = sweeper.get("params")
        params = {} if raw is None else OmegaConf.to_container(raw, resolve=False)
        if not isinstance(params, dict):
            raise ValueError("hydra.sweeper.params is not a mapping")
        params = {str(k): str(v) for k, v in params.items()}
    except Exception as e:
        raise UserError(
            f"Cannot read {path} ({first_line(e)}), the record of the sweep in that folder, "
            f"so it cannot be finished. python -m mnistx.compare {folder} still reports the "
            "jobs it has."
        ) from None
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
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": task, "hydra": hydra_overrides},
                "sweeper": {"_target_": None if target is None else str(target), "params": params},
            }
        }
    )
