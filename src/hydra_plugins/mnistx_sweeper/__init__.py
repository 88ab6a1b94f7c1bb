"""mnistx's sweepers: the grid sweeper (Hydra's basic sweeper, able to finish a sweep that
was cut short) and the Optuna sweeper (mnistx.hpo).

Here, under `hydra_plugins`, because Hydra builds sweepers only from that package; train.py
registers them explicitly (Hydra does not find plugins of an editable install, Hydra #2359).
The decisions are mnistx.sweeps' and mnistx.hpo's; these classes only apply them
to Hydra's sweep loop.

Run into a folder that already holds a sweep (`hydra.sweep.dir=<it>`, or `resume=<it>`), it
does not write over the sweep's multirun.yaml, does not launch the jobs that finished (their
folders stay byte-identical), and launches the others into their own folders, where
interrupted ones continue from their checkpoints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from mnistx.compat.hydra import basic_sweeper, sweeper_params

log = logging.getLogger("mnistx")


class GridSweeper(basic_sweeper()):  # type: ignore[misc]
    def sweep(self, arguments: list[str]) -> Any:
        from mnistx.runs.claims import launch
        from mnistx.runs.layout import SWEEP_CONFIG
        from mnistx.runs.rerun import (
            FINISHED,
            covering_jobs,
            describe_plan,
            plan_rerun,
            rerun_overrides,
        )

        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        overrides = parser.parse_overrides([*sweeper_params(self), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record = sweep_dir / SWEEP_CONFIG
        plan = None
        if record.exists():  # run again into its folder: finish the sweep
            plan = plan_rerun(sweep_dir, [job for b in self.overrides for job in b])
            log.info(describe_plan(sweep_dir, plan))
        else:
            OmegaConf.save(self.config, record)
        pending = iter(plan or [])

        def is_group(key: str) -> bool:
            return bool(loader.get_group_options(key))

        returns = []
        job_idx = 0
        while not self.is_done():
            batch = list(self.get_job_batch())
            if plan is not None:
                jobs = [next(pending) for _ in batch]
                batch = [rerun_overrides(j) for j in jobs if j.state != FINISHED]
            if not batch:
                continue
            self.validate_batch_is_legal(covering_jobs(batch, is_group))
            results = launch(self.launcher, sweep_dir, batch, job_idx)
            for r in results:
                _ = r.return_value  # raises here if the job raised
            job_idx += len(batch)
            returns.append(results)
        return returns


class OptunaSweeper(Sweeper):
    """hparams_search=optuna: trials from an Optuna study, run through Hydra's launcher
    (conf/hydra/sweeper/optuna.yaml lists the settings, read from the config as given)."""

    def __init__(self, **settings: Any) -> None:
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """A mistake in the settings: one paragraph and exit 1 (Hydra, which calls this, would
        print any exception with its stack)."""
        import sys

        from mnistx.errors import UserError
        from mnistx.hpo.search import run_search

        assert self.config is not None
        try:
            return run_search(self.config, self.launcher, arguments)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
