"""mnistx's sweepers and launcher: the grid sweeper (Hydra's basic sweeper, able to finish a
sweep that was cut short), the Optuna sweeper (mnistx.hpo) and the stacked launcher
(hydra/launcher=stacked: jobs trained together, mnistx.training.stacked).

Here, under `hydra_plugins`, because Hydra builds plugins only from that package; train.py
registers them explicitly (Hydra does not find plugins of an editable install, Hydra #2359).
The decisions are mnistx.sweeps' and mnistx.hpo's; these classes only apply them
to Hydra's sweep loop.

Run into a folder that already holds a sweep (`hydra.sweep.dir=<it>`, or `resume=<it>`), it
does not write over the sweep's multirun.yaml, does not launch the jobs that finished (their
folders stay byte-identical), and launches the others into their own folders, where
interrupted ones continue from their checkpoints.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mnistx.compat.hydra import basic_sweeper, reused_compositions, sweeper_params
from mnistx.errors import UserError

log = logging.getLogger("mnistx")


def fold_axis(config: DictConfig, arguments: Sequence[str]) -> list[str]:
    """cv.folds=k: one job per fold (cv.fold=0 ... k-1) for every setting, unless the command
    line picks the folds itself."""
    from mnistx.data.folds import configured_folds

    folds = configured_folds(config)
    if folds is None or any(a.split("=")[0].lstrip("+~") == "cv.fold" for a in arguments):
        return []
    return [f"cv.fold=range(0,{folds})"]


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
        try:
            axis = fold_axis(self.config, [*arguments, *sweeper_params(self)])
        except UserError as e:  # one paragraph and exit 1, as the Optuna sweeper's
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        overrides = parser.parse_overrides([*sweeper_params(self), *arguments, *axis])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record = sweep_dir / SWEEP_CONFIG
        plan = None
        if record.exists():  # run again into its folder: finish the sweep
            plan = plan_rerun(sweep_dir, [job for b in self.overrides for job in b])
            log.info(describe_plan(sweep_dir, plan))
        else:
            if axis:  # recorded as swept: the jobs' folders and values name their fold
                with read_write(self.config), open_dict(self.config):
                    params = dict(self.config.hydra.sweeper.get("params") or {})
                    self.config.hydra.sweeper.params = {**params, "cv.fold": axis[0][8:]}
            OmegaConf.save(self.config, record)
        pending = iter(plan or [])

        @functools.cache  # each call copies Hydra's config repository (~16 ms here)
        def is_group(key: str) -> bool:
            return bool(loader.get_group_options(key))

        returns = []
        job_idx = 0
        with reused_compositions(loader):  # jobs choosing the same groups: composed once
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
        self.hydra_context: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """A mistake in the settings: one paragraph and exit 1 (Hydra, which calls this, would
        print any exception with its stack)."""
        import sys

        from mnistx.hpo.search import run_search

        assert self.config is not None
        try:
            with reused_compositions(self.hydra_context.config_loader):
                return run_search(self.config, self.launcher, arguments)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)


class StackedLauncher(Launcher):
    """hydra/launcher=stacked: the jobs of a batch that may train together
    (mnistx.sweeps.stacking) set up in their folders by Hydra one by one, then trained as
    one (mnistx.training.stacked); the others run one after the other as Hydra's basic
    launcher runs them."""

    def __init__(self, max_models: int = 16) -> None:
        self.max_models = max_models
        self.config: DictConfig | None = None
        self.hydra_context: Any = None
        self.task_function: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        """A mistake in the settings: one paragraph and exit 1 (as the sweepers do). A stack
        stopped by Ctrl-C or SIGTERM: the report of the sweep so far, exit 130 or 143."""
        import sys

        from mnistx.errors import UserError
        from mnistx.runs.records import Interrupted
        from mnistx.sweeps.comparison import compare

        try:
            return self._launch(job_overrides, initial_job_idx)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except Interrupted as e:  # the stack's jobs are recorded; report the sweep, as a job does
            assert self.config is not None
            compare([Path(self.config.hydra.sweep.dir)])
            sys.exit(e.exit_code)

    def _launch(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[Any]:
        from hydra.core.utils import configure_log, run_job, setup_globals

        from mnistx.sweeps.stacking import check_max_models, groups
        from mnistx.training.stacked import train_stack

        config = self.config
        assert config is not None
        setup_globals()
        max_models = check_max_models(self.max_models)
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        for i, overrides in enumerate(job_overrides):
            job = self.hydra_context.config_loader.load_sweep_config(config, list(overrides))
            with open_dict(job):
                job.hydra.job.id = job.hydra.job.num = first + i
            configs.append(job)
        plan = groups(configs, max_models, fresh=[_fresh(c) for c in configs])
        log.info(
            "Launching %d jobs: %s",
            len(configs),
            ", ".join(f"{len(g)} stacked" if len(g) > 1 else "1 alone" for g in plan),
        )

        def run(i: int, task: Any) -> Any:
            log.info("\t#%d : %s", first + i, " ".join(job_overrides[i]))
            ret = run_job(
                hydra_context=self.hydra_context,
                task_function=task,
                config=configs[i],
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
            return ret

        returns: list[Any] = [None] * len(configs)
        for group in plan:
            if len(group) == 1:
                returns[group[0]] = run(group[0], self.task_function)
                continue
            staged = {i: run(i, _stage_job) for i in group}  # folders and configs, no training
            values = train_stack([staged[i].return_value for i in group])
            for i, value in zip(group, values, strict=True):
                staged[i].return_value = value
                returns[i] = staged[i]
        return returns


def _fresh(config: DictConfig) -> bool:
    """Whether the job's folder was claimed for it and holds nothing yet (not a job being
    continued or finished, which runs as always)."""
    try:
        folder = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
    except Exception:  # named by a value only the job knows
        return False
    return folder.is_dir() and not any(folder.iterdir())


def _stage_job(cfg: DictConfig) -> Any:
    """The task Hydra runs for a job of a stack: the job resolved in its folder, its config
    saved by Hydra, nothing trained yet; and its callbacks from Hydra's settings (an Optuna
    trial's reporter) and log file (train.log, Hydra's file handler of this job)."""
    from hydra.core.hydra_config import HydraConfig

    from mnistx.hpo.trial import reporter
    from mnistx.runs.job import Launch, resolve_job
    from mnistx.training.stacked import StackedJob

    hc = HydraConfig.get()
    job = resolve_job(cfg, Launch(list(hc.overrides.task), dict(hc.runtime.choices), True))
    OmegaConf.resolve(job.cfg)  # now, while Hydra's settings are this job's (output_dir)
    trial = reporter(hc, job.cfg.trainer.get("max_epochs"))
    files: list[logging.Handler] = [
        h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)
    ]
    return StackedJob(job, [trial] if trial else [], files)
