"""The run folder's checks, before Hydra creates or writes anything.

A refused command leaves every file as it was: a resume must name a run that is not running
and has something left to do; a new run is never aimed at another run's folder; a sweep run
again into its folder must be the same sweep. `resume=<sweep folder>` becomes that sweep's
command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mnistx.config.overrides import override_key
from mnistx.config.targets import check_trusted
from mnistx.errors import UserError
from mnistx.runs.continuation import checkpoint_epochs, epochs_done, requested_epochs, typed
from mnistx.runs.env import is_rank_zero
from mnistx.runs.layout import (
    CONFIG,
    LAST,
    OUTPUTS,
    SWEEP_CONFIG,
    folder_of,
    holds_run,
    resume_command,
    sweep_jobs,
)
from mnistx.runs.lock import hold
from mnistx.runs.plan import Plan
from mnistx.runs.records import is_finished, read_metrics
from mnistx.runs.rerun import sweep_command, sweep_rerun
from mnistx.runs.saved import run_config


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def preflight(overrides: Sequence[str], multirun: bool) -> Plan:
    """Decide about the run folder before Hydra writes anything into it.

    A resume must name a run, not be running already, and either continue an unfinished run
    or extend a finished one (a finished run asked for nothing new is left as it is). A new
    run must not be aimed at a folder that holds a run. A sweep run again into its folder
    must be the same sweep (it is then finished: `sweep_rerun`). `resume=<sweep folder>` is
    that command, planned as the overrides of a multirun to run instead. A refusal is a
    UserError; nothing here ends the process.
    """

    if not is_rank_zero():
        return Plan("join")  # the extra DDP processes join the folder their first process owns
    values = {override_key(o): o for o in overrides}
    resume = typed(values["resume"]) if "resume" in values else None
    ckpt = typed(values["ckpt_path"]) if "ckpt_path" in values else None
    folder = folder_of(resume, ckpt)
    if "hydra.sweeper.max_batch_size" in values:
        size = typed(values["hydra.sweeper.max_batch_size"])
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise UserError(
                f"hydra.sweeper.max_batch_size={size} must be null (launch the whole grid at "
                "once) or a number of jobs >= 1 per launch. Example: "
                "hydra.sweeper.max_batch_size=4"
            )
    if multirun and values.get("hydra/launcher", "").endswith("=slurm"):
        _check_slurm()
    if folder is None:
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        target = typed(values[key]) if key in values else None
        _check_writable(Path(os.path.expanduser(str(target or OUTPUTS))), key)
        if target:
            _check_not_inside(Path(os.path.expanduser(str(target))), key, multirun)
        if target and multirun:
            sweep_dir = Path(os.path.expanduser(str(target)))
            all_done = sweep_rerun(sweep_dir, overrides)
            if all_done:
                return Plan("nothing", sweep_dir, message=all_done)
            again = (sweep_dir / SWEEP_CONFIG).is_file()
            if not _is_search(values):  # one process runs a grid sweep into its folder
                sweep_dir.mkdir(parents=True, exist_ok=True)
                hold(sweep_dir)
            return Plan("finish_sweep" if again else "new", sweep_dir)
        if target and not multirun and holds_run(Path(os.path.expanduser(target))):
            raise UserError(
                f"hydra.run.dir={target} holds a run already, and a run never writes into "
                f"another run's folder. To continue that run: {resume_command(target)}; to "
                "start a new one, drop hydra.run.dir= (a fresh folder under outputs/ is made) "
                "or name a folder that does not exist yet."
            )
        return Plan("new", Path(os.path.expanduser(str(target))) if target else None)
    if resume and (folder / SWEEP_CONFIG).is_file() and not (folder / CONFIG).is_file():
        return sweep_command(folder, overrides)
    if multirun:
        raise UserError(
            "resume= continues one run in its own folder; run it without -m/--multirun "
            f"(once per run): {resume_command(folder)}"
        )
    if "hydra.run.dir" in values:
        raise UserError(
            f"resume= continues the run in its own folder ({folder}), so hydra.run.dir= cannot "
            f"send it elsewhere. Drop hydra.run.dir=: {resume_command(folder)}"
        )
    if not (folder / CONFIG).is_file():
        jobs = sweep_jobs(folder)
        hint = (
            f"{folder} is a sweep folder; resume one of its jobs, e.g. {resume_command(jobs[0])}"
            if jobs
            else "Pass the folder of a run started with python -m mnistx.train, e.g. "
            "resume=outputs/2026-11-23/14-02-11"
        )
        raise UserError(f"resume={folder}: not a run folder (no .hydra/config.yaml). {hint}")
    ckpt_file = Path(os.path.expanduser(str(ckpt))) if ckpt else folder / LAST
    if not ckpt_file.is_file():
        raise UserError(
            f"No checkpoint to resume from: {ckpt_file} does not exist (the run stopped before "
            "its first epoch ended, or ran without checkpointing). Start it again instead."
        )
    # The saved config and checkpoint are data: checked before anything is built or locked.
    trusted = typed(values["trusted_targets"]) if "trusted_targets" in values else None
    run_config(folder, trusted=check_trusted(trusted), continued=True)
    checkpoint_epochs(ckpt_file)
    metrics = read_metrics(folder)
    wanted = requested_epochs(overrides)
    if wanted is not None and (
        not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1
    ):
        raise UserError(
            f"trainer.max_epochs={wanted} must be an integer >= 1: the epoch count to train "
            f"the run to. Example: {resume_command(folder, 'trainer.max_epochs=20')}"
        )
    if is_finished(metrics):
        done = int(metrics.get("epochs") or 0)
        if wanted is None:
            test = metrics.get("test/acc")
            acc = "not tested" if test is None else f"test accuracy {100 * test:.2f}%"
            return Plan(
                "nothing",
                folder,
                message=f"{folder} is finished (status ok, {acc}, {_epochs(done)}); nothing "
                "to resume and nothing was changed. To train it for more epochs: "
                f"{resume_command(folder, f'trainer.max_epochs={done + 10}')}",
            )
        if wanted <= done:
            raise UserError(
                f"trainer.max_epochs={wanted} is not above the {_epochs(done)} {folder} has "
                "trained already, so there is nothing to extend. Ask for more: "
                f"{resume_command(folder, f'trainer.max_epochs={done + 10}')}"
            )
    done = epochs_done(metrics, checkpoint_epochs(ckpt_file))
    if wanted is not None and wanted < done:
        raise UserError(
            f"trainer.max_epochs={wanted} is below the {_epochs(done)} {folder} has trained "
            f"already. Resume it with trainer.max_epochs={done} or more."
        )
    hold(folder)
    return Plan("extend" if is_finished(metrics) else "resume", folder)


def _is_search(values: dict[str, str]) -> bool:
    """An Optuna search, whose workers share one sweep folder and study on purpose."""
    chosen = " ".join(values.get(k, "") for k in ("hparams_search", "hydra/sweeper"))
    return "optuna" in chosen


def _check_slurm() -> None:
    import shutil

    if shutil.which("sbatch") is None:
        raise UserError(
            "hydra/launcher=slurm submits the sweep's jobs with SLURM's sbatch, which is not "
            "installed here. Run the command on the cluster's login node, or drop "
            "hydra/launcher=slurm to run the jobs on this machine (hydra/launcher=joblib "
            "runs them in parallel)."
        )


def _check_not_inside(target: Path, key: str, multirun: bool) -> None:
    """A new run or sweep folder never lies inside another run's or sweep's folder (a sweep
    run again into its own folder is that sweep, checked by `sweep_rerun`)."""
    from mnistx.runs.guard import owner_of

    owner = owner_of(target)
    if not multirun and (target / SWEEP_CONFIG).is_file():
        raise UserError(
            f"hydra.run.dir={target} is a sweep's folder, and a single run never writes into a "
            "sweep's folder (it would take the sweep's record over). Drop hydra.run.dir= (a "
            f"fresh folder under outputs/ is made); to finish the sweep: {resume_command(target)}"
        )
    if owner is None or os.path.abspath(owner) == os.path.abspath(target):
        return
    kind = "sweep" if (owner / SWEEP_CONFIG).is_file() and not holds_run(owner) else "run"
    raise UserError(
        f"{key}={target} lies inside {owner}, a {kind} folder, and a run never writes into "
        f"another run's or sweep's folder. Drop {key}= (a fresh folder under outputs/ is made) "
        "or name a folder outside it."
    )


def _check_writable(target: Path, key: str) -> None:
    """The run (or sweep) folder can be created: try it in its nearest existing parent, and
    leave nothing behind."""
    import tempfile

    parent = target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(parent))
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".mnistx-check-"))
    except OSError as e:
        raise UserError(
            f"Cannot create the run folder {target}: {e.strerror} in {parent.resolve()}. Run "
            f"from a folder you can write to, or send the outputs elsewhere with {key}=<folder>."
        ) from None
