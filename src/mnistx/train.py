"""Train, validate and test one configuration: `python -m mnistx.train [key=value ...]`.

    python -m mnistx.train model=cnn optimizer=adam
    python -m mnistx.train -m optimizer.lr=1e-3,1e-2 model.activation=relu,tanh
    python -m mnistx.train resume=outputs/2026-11-23/14-02-11

This module is the command line: `cli` checks the run folder before Hydra writes anything
(mnistx.runs.preflight), and Hydra's `main` runs one job of it: a single run, a sweep job, a
DDP rank, a resumed or requeued run; each ends with a record in its folder. The work itself
is the recipe, mnistx.training.recipe. Torch and Lightning are imported only once a run
really starts, so `--help` and `--cfg job` answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import hydra
from omegaconf import DictConfig

from mnistx.errors import UnavailableError, UserError

if TYPE_CHECKING:
    from hydra.conf import HydraConf

    from mnistx.runs.job import Job
from mnistx.runs.compose import set_up_omegaconf

set_up_omegaconf()
log = logging.getLogger("mnistx")
MULTIRUN = {"-m", "--multirun"}


def _ddp_ranks_join_this_job(hc: HydraConf, overrides: Sequence[str]) -> None:
    """Lightning starts DDP ranks 1.. by re-running this command line with
    hydra.run.dir=<HydraConfig run.dir>. In a sweep job that would re-run the whole multirun
    and claim a fresh folder; make it run this one job, in this job's folder."""
    from omegaconf import read_write

    # An Optuna trial's sweeper settings and number too: every rank prunes with rank 0.
    sweeper = [
        str(o)
        for o in hc.overrides.hydra
        if str(o).startswith(("hydra/sweeper=", "hydra.sweeper."))
    ]
    sys.argv = [sys.argv[0], *overrides, *sweeper]
    run = cast(DictConfig, hc.run)  # HydraConf's nodes are DictConfigs at run time
    with read_write(run):
        run.dir = hc.runtime.output_dir


def _end_ddp_job() -> None:
    """The next sweep job starts its own process group, on a fresh port, with fresh ranks."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in ("MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)


def _report_user_error(error: UserError, label: str = "error") -> None:
    """One unwrapped paragraph on stderr, and the same line in the run's log file."""
    print(f"{label}: {error}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, str(error), (), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="pkg://mnistx.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One job: a single run, a sweep job, a DDP rank, a resumed or requeued run. In a sweep,
    a job that cannot run or fails is recorded (status skipped / failed, with the reason) and
    returns None; the other jobs go on. A single run exits non-zero."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mnistx.runs.job import Launch, resolve_job

    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    launch = Launch(
        list(hc.overrides.task), dict(hc.runtime.choices), sweep, hc.launcher.get("n_jobs")
    )
    with _job_scope(Path(cfg.output_dir), hc, cfg, sweep):
        job = resolve_job(cfg, launch)  # (the folder is this process's now)
        if job.kind == "finished":  # said on stderr: its train.log stays as it was
            print(f"{job.folder} has finished already; nothing to do.", file=sys.stderr)
            return job.finished.get("val/acc_best") if job.finished else None
        return _train(job, hc, sweep)


@contextmanager
def _job_scope(out: Path, hc: HydraConf, cfg: DictConfig, sweep: bool) -> Iterator[None]:
    """The job's folder held by this process, and a DDP sweep job's ranks kept to it."""
    from mnistx.runs.env import is_rank_zero
    from mnistx.runs.lock import hold, release

    ddp_job = sweep and "ddp" in str(cfg.trainer.get("strategy", ""))
    if ddp_job:
        _ddp_ranks_join_this_job(hc, list(hc.overrides.task))
    if is_rank_zero():  # (a resume's preflight holds it already; a sweep's checked it is free)
        hold(out)
    try:
        yield
    finally:
        if ddp_job:
            _end_ddp_job()
        release(out)


def _train(job: Job, hc: HydraConf, sweep: bool) -> float | None:
    """The recipe, and a record of the job when it cannot run or fails."""
    from mnistx.fast_exit import command_process
    from mnistx.runs.env import is_rank_zero
    from mnistx.runs.records import record_failure
    from mnistx.training.lr_find import lr_find_job
    from mnistx.training.recipe import train_job
    from mnistx.training.runtime import freeze_imports

    if sweep and command_process():  # (imported now: torch, Lightning)
        freeze_imports()
    owner, start = is_rank_zero(), time.time()
    work = lr_find_job if job.cfg.get("tune") else train_job
    try:
        metrics = work(job, extra_callbacks=_trial_reporter(hc, job.cfg))
    except UserError as e:
        skipped = isinstance(e, UnavailableError)
        if owner:
            _record(record_failure, job.folder, job.run, str(e), "skipped" if skipped else "failed")
        _report_user_error(e, "skipped" if skipped and sweep else "error")
        if not sweep:
            sys.exit(1)
        return None
    except KeyboardInterrupt as e:  # the recipe recorded the interrupted run
        if sweep and owner:
            _report_interrupted_sweep(Path(hc.sweep.dir))
        sys.exit(getattr(e, "exit_code", 130))
    except Exception as e:
        if owner:
            _record(record_failure, job.folder, job.run, f"{type(e).__name__}: {e}")
        if not sweep:
            raise
        log.exception("job failed; the sweep goes on (outputs in %s)", job.folder)
        return None
    if metrics.get("status") is not None:
        log.info("finished in %.1f s; outputs in %s", time.time() - start, job.folder)
    return metrics.get("val/acc_best")


def _record(write: Any, *args: Any) -> None:
    """A failure's record, when the disk lets it be written (a full disk: said, not raised)."""
    try:
        write(*args)
    except UserError as e:
        print(f"note: {e}", file=sys.stderr)


def _trial_reporter(hc: HydraConf, cfg: DictConfig) -> list[Any]:
    """[the Optuna trial's reporter] for a job of an Optuna search, else []."""
    if "OptunaSweeper" not in str(hc.sweeper.get("_target_")):
        return []
    from mnistx.data.folds import configured_folds

    if configured_folds(cfg):  # a trial's value is its folds' mean: no pruning
        return []
    from mnistx.hpo.trial import reporter

    found = reporter(hc, cfg.trainer.get("max_epochs"))
    return [found] if found else []


def _report_interrupted_sweep(sweep_dir: Path) -> None:
    """Ctrl-C ends the whole multirun: report what finished, and the jobs that never ran."""
    from mnistx.sweeps.comparison import compare

    try:
        compare([sweep_dir])
    except Exception as e:  # the runs are safe on disk; the report can be made again
        log.error(
            "Could not write the comparison report (%s). Make it again with: "
            "python -m mnistx.compare %s",
            e,
            sweep_dir,
        )


def cli() -> None:
    """The command line: plan -> Hydra's jobs (`main`), reading sys.argv (tests call it
    in-process). The only place that decides to end the process early."""
    from mnistx.train_help import answer_help

    args = sys.argv[1:]
    try:
        if answer_help(args):
            return
        if MULTIRUN & set(args) and any(a.startswith("tune=") for a in args):
            raise UserError(
                "tune=lr_find is one range test per command and does not sweep: run it once "
                "for each model or optimizer you want a learning rate for, without -m."
            )
        plan = _plan(args)
        if plan is not None and plan.action == "nothing":
            print(plan.message)
            sys.exit(0)
        if plan is not None and plan.args is not None:  # resume=<sweep>: that sweep's command
            flags = [a for a in args if a.startswith("-") and a not in MULTIRUN]
            args = ["-m", *flags, *plan.args]
        sys.argv = [sys.argv[0], *args]
        _register_sweepers()
        main()
    except BrokenPipeError:  # `--help | head`: the reader has gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except UserError as e:  # raised before the run started (e.g. its folder), nothing written
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def _register_sweepers() -> None:
    """Make conf/hydra/sweeper/'s sweepers (grid, optuna) known to Hydra, which does not discover
    the plugins of an editable install (Hydra #2359)."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # first: its scan executes BasicSweeper's module again ...
    from hydra_plugins.mnistx_sweeper import (  # ... subclasses it
        GridSweeper,
        OptunaSweeper,
        StackedLauncher,
    )

    plugins.register(GridSweeper)
    plugins.register(OptunaSweeper)
    plugins.register(StackedLauncher)


def _plan(args: Sequence[str]) -> Any:
    """The run folder's plan (mnistx.runs.preflight), before Hydra creates or writes
    anything; None for arguments Hydra cannot parse, which Hydra then explains."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from mnistx.config.legacy import check_old_keys
    from mnistx.runs.preflight import preflight

    words = [a for a in args if not a.startswith("-")]
    try:
        OverridesParser.create().parse_overrides(words)
    except HydraException:
        return None
    check_old_keys(words)
    return preflight(words, multirun=bool(MULTIRUN & set(args)))


def script() -> None:
    """`python -m mnistx.train` and the `mnistx-train` script: `cli`, without the
    interpreter's slow teardown at the end (fast_exit)."""
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        cli()


if __name__ == "__main__":
    script()
