"""Hydra's callback for every multirun: SLURM jobs followed with squeue where sacct has
nothing, and the comparison report at the end. (The jobs read what is swept from the sweep's
multirun.yaml: mnistx.runs.sweep_record.swept_keys.)"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("mnistx")


class SweepCallback(Callback):
    """Follows SLURM jobs on clusters without accounting; writes the report at the end."""

    def __init__(self, report: bool = True) -> None:
        self.report = report

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "SlurmLauncher" in str(config.hydra.launcher.get("_target_", "")):
            from mnistx.sweeps.slurm import follow_jobs

            follow_jobs()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistx.sweeps.comparison import compare

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
