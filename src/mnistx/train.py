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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, open_dict

from mnistx.config.compose import register_resolvers
from mnistx.errors import UnavailableError, UserError

register_resolvers()
log = logging.getLogger("mnistx")


def _ddp_ranks_join_this_job(hc: Any, overrides: Sequence[str]) -> None:
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
    with read_write(hc.run):
        hc.run.dir = hc.runtime.output_dir


def _end_ddp_job() -> None:
    """The next sweep job starts its own process group, on a fresh port, with fresh ranks."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in ("MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)


def _set_threads(cfg: DictConfig, hc: Any, sweep: bool) -> None:
    """A job of a parallel sweep (joblib n_jobs) takes its share of the cores."""
    from mnistx.training.runtime import threads_per_job

    if sweep and cfg.get("threads") is None:
        with open_dict(cfg):
            cfg.threads = threads_per_job(hc.launcher.get("n_jobs"))


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

    from mnistx.runs.env import is_rank_zero
    from mnistx.runs.lock import hold, release
    from mnistx.runs.records import record_failure

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    out = Path(cfg.output_dir)
    sweep = hc.mode == RunMode.MULTIRUN
    _set_threads(cfg, hc, sweep)
    ddp_job = sweep and "ddp" in str(cfg.trainer.get("strategy", ""))
    if ddp_job:
        _ddp_ranks_join_this_job(hc, overrides)
    start = time.time()
    owner = is_rank_zero()
    if owner:  # (a resume's preflight holds it already; a sweep's checked it is free)
        hold(out)
    cfg, ckpt, run, again = _what_to_run(cfg, overrides, out, sweep)
    try:
        metrics = _run_job(cfg, hc, overrides, out, ckpt, run, again, sweep)
    except UserError as e:
        skipped = isinstance(e, UnavailableError)
        if owner:
            _record(record_failure, out, run, str(e), "skipped" if skipped else "failed")
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
            _record(record_failure, out, run, f"{type(e).__name__}: {e}")
        if not sweep:
            raise
        log.exception("job failed; the sweep goes on (outputs in %s)", out)
        return None
    finally:
        if ddp_job:
            _end_ddp_job()
        release(out)
    if metrics.get("status") is not None:
        log.info("finished in %.1f s; outputs in %s", time.time() - start, out)
    return metrics.get("val/acc_best")


def _record(write: Any, *args: Any) -> None:
    """A failure's record, when the disk lets it be written (a full disk: said, not raised)."""
    try:
        write(*args)
    except UserError as e:
        print(f"note: {e}", file=sys.stderr)


def _what_to_run(cfg: DictConfig, overrides: list[str], out: Path, sweep: bool) -> tuple:
    """(config, checkpoint to continue from, the run's records, whether the folder may hold
    this job already): a resume continues with the run's own config."""
    from mnistx.runs.continuation import continuation
    from mnistx.runs.env import requeued
    from mnistx.runs.layout import folder_of
    from mnistx.runs.records import run_info

    if folder_of(cfg.get("resume"), cfg.get("ckpt_path")) is not None:
        cfg, ckpt, run = continuation(cfg, overrides)  # checked by preflight
        log.info("Resuming %s from %s", out, ckpt)
        return cfg, ckpt, run, False
    # A sweep run again into its folder, or a job SLURM requeued, continues the run there.
    return cfg, None, run_info(out, overrides), sweep or requeued()


def _run_job(
    cfg: DictConfig,
    hc: Any,
    overrides: list[str],
    out: Path,
    ckpt: Path | None,
    run: Any,
    again: bool,
    sweep: bool,
) -> dict[str, Any]:
    """The recipe, unless the folder holds this job finished already (said on stderr: its
    train.log stays as it was), from the job's checkpoint when it holds it unfinished."""
    from mnistx.runs.continuation import continuation, continues_job
    from mnistx.runs.records import is_finished, read_metrics
    from mnistx.training.recipe import train

    finished = read_metrics(out) if again else None
    if is_finished(finished):
        print(f"{out} has finished already; nothing to do.", file=sys.stderr)
        return {"val/acc_best": finished.get("val/acc_best")}
    if again and continues_job(out):
        cfg, ckpt, run = continuation(cfg, overrides, job=out)
        _set_threads(cfg, hc, sweep)
        log.info("Continuing %s from %s", out, ckpt)
    return train(
        cfg,
        overrides,
        dict(hc.runtime.choices),
        ckpt_path=ckpt,
        run=run,
        extra_callbacks=_trial_reporter(hc, cfg),
    )


def _trial_reporter(hc: Any, cfg: DictConfig) -> list[Any]:
    """[the Optuna trial's reporter] for a job of an Optuna search, else []."""
    if "OptunaSweeper" not in str(hc.sweeper.get("_target_")):
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
    """The command line's work, reading sys.argv (tests call it in-process)."""
    from mnistx.config.help import answer_help
    from mnistx.sweeps.callback import register_sweeper

    args = sys.argv[1:]
    try:
        if answer_help(args):
            return
        args = _preflight(args)
        sys.argv = [sys.argv[0], *args]
        register_sweeper()
        main()
    except BrokenPipeError:  # `--help | head`: the reader has gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except UserError as e:  # raised before the run started (e.g. its folder), nothing written
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def _preflight(args: Sequence[str]) -> list[str]:
    """The run folder's checks, before Hydra creates or writes anything (preflight);
    the command line to run (`resume=<sweep folder>` becomes that sweep's multirun). Arguments
    Hydra cannot parse are left for Hydra to explain."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from mnistx.config.legacy import check_old_keys
    from mnistx.runs.preflight import preflight

    multirun = {"-m", "--multirun"}
    words = [a for a in args if not a.startswith("-")]
    try:
        OverridesParser.create().parse_overrides(words)
    except HydraException:
        return list(args)
    check_old_keys(words)
    sweep = preflight(words, multirun=bool(multirun & set(args)))
    if sweep is None:
        return list(args)
    flags = [a for a in args if a.startswith("-") and a not in multirun]
    return ["-m", *flags, *sweep]


def script() -> None:
    """`python -m mnistx.train` and the `mnistx-train` script: `cli`, without the
    interpreter's slow teardown at the end (fast_exit)."""
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        cli()


if __name__ == "__main__":
    script()
