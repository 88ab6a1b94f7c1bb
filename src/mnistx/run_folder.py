"""A run folder's whole life in one place: create, fail, interrupt, resume, extend, finish.

A run folder is what users keep, so every entry point (train, resume, eval, predict, compare,
sweeps) reads and writes it through this module, and two rules hold:

- A folder that holds a run is written only by that run: by its own process, or by a
  continuation of it (`resume=`), never by a second run aimed at it (`hydra.run.dir=`), by
  two continuations at once (a lock), or by an evaluation (it writes under `eval/`).
- A finished run's results are never overwritten or nulled: resuming it changes no file;
  extending it (`resume=<run> trainer.max_epochs=<more>`) trains on and rewrites metrics.json
  for the whole run, and if the extension fails, the finished record is kept in it.

Layout:

    .hydra/config.yaml, overrides.yaml   the composed config and the command line (Hydra)
    .hydra/resumed-<time>/               the same for each continuation
    metrics.json                         status (ok | failed | skipped | interrupted), results
    checkpoints/best.ckpt, last.ckpt     best by val/acc; the latest validated epoch
    eval/<checkpoint>/                   what `python -m mnistx.eval` writes
    .lock                                held (flock) while a process trains in the folder
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError

METRICS = "metrics.json"
CONFIG = Path(".hydra") / "config.yaml"
OVERRIDES = Path(".hydra") / "overrides.yaml"
CHECKPOINTS = "checkpoints"
LAST = Path(CHECKPOINTS) / "last.ckpt"
BEST = Path(CHECKPOINTS) / "best.ckpt"
EVAL = "eval"
OUTPUTS = "outputs"  # conf/train.yaml's run and sweep folders are made under it
LOCK = ".lock"
SWEEP_CONFIG = "multirun.yaml"  # written by Hydra into a sweep folder
# Keys the resume command line may still change; every other setting is the run's own.
ADJUSTABLE = ("trainer.max_epochs", "resume", "ckpt_path")

_claimed: dict[str, str] = {}
_reclaimed: set[str] = set()  # folders requeued SLURM jobs found again
_locks: dict[str, int] = {}
_epochs_in: dict[Path, int] = {}  # epochs each checkpoint holds, read once per process


# --- creating ----------------------------------------------------------------------------


def _overwritten_by_a_merge() -> bool:
    """Whether OmegaConf is resolving a value only because a config merge is about to replace
    it: it looks at the old value first (to see whether it is a node), which would claim a
    folder for nothing each time a preset sets hydra.run.dir or hydra.sweep.dir (debug=...,
    hparams_search=optuna)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_map_merge" and "omegaconf" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def unique_dir(path: str) -> str:
    """Claim `path`, or `path-1`, `path-2`, ... if taken; mkdir is atomic, so racing runs differ.

    Hydra resolves the run dir more than once, on copies of the config; the answer is
    remembered per process so a run claims exactly one folder.
    """
    if _overwritten_by_a_merge():
        return path
    if path in _claimed:
        return _claimed[path]
    candidate, n = path, 0
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        while True:
            try:
                os.mkdir(candidate)
                _claimed[path] = candidate
                return candidate
            except FileExistsError:
                n += 1
                candidate = f"{path}-{n}"
    except PermissionError as e:
        raise UserError(
            f"Cannot create the run folder {candidate}: {e.strerror} for {e.filename}. Run "
            "from a folder you can write to, or send the outputs elsewhere with "
            "hydra.run.dir=<folder> (hydra.sweep.dir=<folder> for -m)."
        ) from None


def run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    """Hydra's run folder: the resumed run's own, or a fresh unique one. The tasks of one
    multi-task SLURM step (`srun -N2 python -m mnistx.train ...`: the ranks of one DDP run)
    start at slightly different times, so they share one named by the step instead. A job
    that SLURM requeued finds the folder it had (`started_by_this_job`)."""
    if _overwritten_by_a_merge():
        return new
    existing = folder_of(resume, ckpt_path)
    if existing is not None:
        return str(existing)
    if requeued():
        outputs = Path(new).parent.parent  # outputs/<date>/<time>
        for lock in sorted(outputs.glob(f"*/*/{LOCK}")):
            if started_by_this_job(lock.parent):
                return reclaim(lock.parent)
    if _peers_share_folder() and os.environ.get("SLURM_JOB_ID"):
        step = f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
        shared = os.path.join(os.path.dirname(new), step)
        os.makedirs(shared, exist_ok=True)
        return shared
    return unique_dir(new)


def config_subdir(
    resume: str | None, ckpt_path: str | None, stamp: str, output_dir: str | None = None
) -> str:
    """Where Hydra saves the composed config: a resume, and a job SLURM requeued into the
    folder it had (`reclaim`), keep the run's original .hydra/."""
    again = output_dir is not None and os.path.abspath(output_dir) in _reclaimed
    if folder_of(resume, ckpt_path) is None and not again:
        return ".hydra"
    return f".hydra/resumed-{stamp}"


def reclaim(folder: str | Path) -> str:
    """`folder` is this requeued SLURM job's own again (`started_by_this_job`)."""
    _reclaimed.add(os.path.abspath(folder))
    return str(folder)


def register_resolvers() -> None:
    """Make the run-folder resolvers (unique_dir, job_dirname, run_dir, config_subdir)
    available to Hydra configs.

    Cached in the config (use_cache): Hydra copies that cache into each sweep job's config, so
    a joblib worker or SLURM job resolves the sweep folder the launcher claimed, not a new one.
    """
    from mnistx.sweep import job_dirname

    for name, fn in (
        ("unique_dir", unique_dir),
        ("job_dirname", job_dirname),
        ("run_dir", run_dir),
        ("config_subdir", config_subdir),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


# --- reading -----------------------------------------------------------------------------


def folder_of(resume: str | None, ckpt_path: str | None) -> Path | None:
    """The run folder a resume names: `resume=` itself, or a checkpoint's grandparent."""
    if resume:
        return Path(os.path.expanduser(str(resume)))
    if ckpt_path:
        return Path(os.path.expanduser(str(ckpt_path))).resolve().parent.parent
    return None


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """The folder's metrics.json, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(metrics: dict[str, Any] | None) -> bool:
    return bool(metrics) and metrics.get("status") == "ok"


def _peers_share_folder() -> bool:
    """Ranks of one multi-task SLURM step (srun -N2) each run this command; any of them may
    write .hydra/ first."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1


def holds_run(folder: Path) -> bool:
    """Whether a run has written into `folder` (its results, checkpoints or config)."""
    if (folder / METRICS).exists() or any((folder / CHECKPOINTS).glob("*.ckpt")):
        return True
    return (folder / CONFIG).exists() and not _peers_share_folder()


def sweep_jobs(folder: Path) -> list[Path]:
    """The job folders of a sweep folder (empty when `folder` is not one)."""
    if not folder.is_dir() or (folder / CONFIG).exists():
        return []
    return sorted(p for p in folder.iterdir() if (p / CONFIG).exists())


def slurm_job() -> str | None:
    """This process's SLURM job id (`<array job>_<task>` for an array task); None outside."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def requeued() -> bool:
    """Whether SLURM started this job again (preemption, a node failure, scontrol requeue)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def started_by_this_job(folder: Path) -> bool:
    """Whether `folder` is this SLURM job's own, from before SLURM requeued it: `hold`
    records the job id in the folder's lock file."""
    job = slurm_job()
    if not (job and requeued()):
        return False
    try:
        return f"slurm={job}" in (folder / LOCK).read_text().split()
    except OSError:
        return False


def is_rank_zero() -> bool:
    """False in the extra processes of a DDP run (Lightning's LOCAL_RANK, torchrun's RANK and
    GROUP_RANK, the NODE_RANK of a multi-node launch, SLURM's task id): the first process
    owns the folder for them."""
    env = os.environ
    if any(env.get(key, "0") != "0" for key in ("LOCAL_RANK", "RANK", "GROUP_RANK", "NODE_RANK")):
        return False
    return not _peers_share_folder() or env.get("SLURM_PROCID", "0") == "0"


# --- commands that work when pasted --------------------------------------------------------


def resume_arg(folder: Path | str) -> str:
    """`resume=<folder>` as one bash word that Hydra's parser reads back as the path.

    Sweep job folders contain `=` and `,` (optimizer.lr=0.01,model.activation=tanh), which
    Hydra would read as another override or a sweep list, so such a path is quoted for Hydra
    and the whole word again for the shell."""
    path = str(folder)
    if all(c.isalnum() or c in "/._-+@%" for c in path):
        return f"resume={path}"
    if not set(path) & set("\"$`\\!'"):
        return f"\"resume='{path}'\""  # e.g. "resume='outputs/.../optimizer.lr=0.01'"
    return shlex.quote("resume='" + path.replace("'", "\\'") + "'")


def resume_command(folder: Path | str, *extra: str) -> str:
    return " ".join(["python -m mnistx.train", resume_arg(folder), *extra])


# --- one writer per folder -----------------------------------------------------------------


def hold(folder: Path) -> None:
    """Lock `folder` for this process until it exits or `release` is called; refuse when
    another process holds it. A flock: the kernel drops it when its process dies, so a killed
    run never leaves it stuck."""
    key = str(folder.resolve())
    if key in _locks:
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = (os.read(fd, 64).decode(errors="replace").split() or ["another process"])[0]
        os.close(fd)
        raise UserError(
            f"{folder} is in use: process {owner} is training in it right now. Wait for it to "
            "finish (or stop it), then run this again."
        ) from None
    os.ftruncate(fd, 0)
    job = slurm_job()
    os.write(fd, (f"{os.getpid()} slurm={job}" if job else str(os.getpid())).encode())
    _locks[key] = fd


def in_use(folder: Path) -> str | None:
    """The process training in `folder` right now (its pid, as `hold` wrote it), or None.
    Only looks: the lock file is opened read-only and left as it is."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return (os.read(fd, 64).decode(errors="replace").split() or ["another process"])[0]
    finally:
        os.close(fd)  # also drops the shared lock this probe may have taken


def release(folder: Path) -> None:
    fd = _locks.pop(str(folder.resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor drops the flock


# --- records -------------------------------------------------------------------------------


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    from mnistx.report import write_json

    write_json(folder / METRICS, metrics)


def _keep_finished(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A failed or interrupted extension of a finished run keeps that run's record."""
    before = read_metrics(folder)
    if is_finished(before):
        record["previous"] = before
    elif before and before.get("previous"):
        record["previous"] = before["previous"]
    return record


def record_failure(folder: Path, run: RunInfo, reason: str, status: str = "failed") -> None:
    write_metrics(
        folder,
        _keep_finished(
            folder,
            {
                "status": status,
                "reason": reason,
                "overrides": run.overrides,
                "swept": run.swept,
                "output_dir": str(folder),
            },
        ),
    )


def record_interrupt(folder: Path, run: RunInfo, epoch: int, history: dict[str, Any]) -> None:
    """A sweep job's record names the command that finishes its whole sweep."""
    sweep = (folder.parent / SWEEP_CONFIG).is_file() and not (folder / SWEEP_CONFIG).exists()
    command = resume_command(folder.parent if sweep else folder)
    what = "it and the rest of its sweep" if sweep else "it"
    write_metrics(
        folder,
        _keep_finished(
            folder,
            {
                "status": "interrupted",
                "reason": (
                    f"stopped by Ctrl-C during epoch {epoch + 1}; continue {what} with: {command}"
                ),
                "epochs": epoch,
                "overrides": run.overrides,
                "swept": run.swept,
                "output_dir": str(folder),
                "history": history,
                "resumes": run.resumes,
            },
        ),
    )
    print(f"interrupted: continue with {command}", file=sys.stderr)


# --- continuing ------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """What a run's records say about it across continuations: the command line that started
    it, its swept values, and each continuation (the epoch it continued from, and when)."""

    overrides: list[str]
    swept: dict[str, str]
    resumes: list[dict[str, Any]] = field(default_factory=list)


def _typed(override: str) -> Any:
    """An override's value as Hydra types it (`trainer.max_epochs=2` -> 2)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()


def _requested_epochs(overrides: Sequence[str]) -> Any:
    from mnistx.sweep import override_key

    found = [o for o in overrides if override_key(o) == "trainer.max_epochs"]
    return _typed(found[-1]) if found else None


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _epochs_done(metrics: dict[str, Any] | None, in_checkpoint: int) -> int:
    return int(metrics["epochs"]) if is_finished(metrics) else in_checkpoint


def preflight(overrides: Sequence[str], multirun: bool) -> list[str] | None:
    """Decide about the run folder before Hydra writes anything into it.

    A resume must name a run, not be running already, and either continue an unfinished run
    or extend a finished one (a finished run asked for nothing new is left as it is: exit 0).
    A new run must not be aimed at a folder that holds a run. A sweep run again into its
    folder must be the same sweep (it is then finished: `sweep_rerun`). `resume=<sweep
    folder>` is that command, returned as the overrides of a multirun to run instead.
    """
    from mnistx.sweep import override_key

    if not is_rank_zero():
        return None  # the extra DDP processes join the folder their first process owns
    values = {override_key(o): o for o in overrides}
    resume = _typed(values["resume"]) if "resume" in values else None
    ckpt = _typed(values["ckpt_path"]) if "ckpt_path" in values else None
    folder = folder_of(resume, ckpt)
    if "hydra.sweeper.max_batch_size" in values:
        size = _typed(values["hydra.sweeper.max_batch_size"])
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
        target = _typed(values[key]) if key in values else None
        _check_writable(Path(os.path.expanduser(str(target or OUTPUTS))), key)
        if target and multirun:
            sweep_rerun(Path(os.path.expanduser(str(target))), overrides)
        if target and not multirun and holds_run(Path(os.path.expanduser(target))):
            raise UserError(
                f"hydra.run.dir={target} holds a run already, and a run never writes into "
                f"another run's folder. To continue that run: {resume_command(target)}; to "
                "start a new one, drop hydra.run.dir= (a fresh folder under outputs/ is made) "
                "or name a folder that does not exist yet."
            )
        return None
    if resume and (folder / SWEEP_CONFIG).is_file() and not (folder / CONFIG).is_file():
        return _sweep_command(folder, overrides)
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
    if ckpt:  # a checkpoint named on the command line is checked even for a finished run
        _checkpoint_epochs(ckpt_file)
    metrics = read_metrics(folder)
    wanted = _requested_epochs(overrides)
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
            print(
                f"{folder} is finished (status ok, {acc}, {_epochs(done)}); nothing to resume "
                "and nothing was changed. To train it for more epochs: "
                f"{resume_command(folder, f'trainer.max_epochs={done + 10}')}"
            )
            raise SystemExit(0)
        if wanted <= done:
            raise UserError(
                f"trainer.max_epochs={wanted} is not above the {_epochs(done)} {folder} has "
                "trained already, so there is nothing to extend. Ask for more: "
                f"{resume_command(folder, f'trainer.max_epochs={done + 10}')}"
            )
    done = _epochs_done(metrics, _checkpoint_epochs(ckpt_file))
    if wanted is not None and wanted < done:
        raise UserError(
            f"trainer.max_epochs={wanted} is below the {_epochs(done)} {folder} has trained "
            f"already. Resume it with trainer.max_epochs={done} or more."
        )
    hold(folder)
    return None


def _check_slurm() -> None:
    import shutil

    if shutil.which("sbatch") is None:
        raise UserError(
            "hydra/launcher=slurm submits the sweep's jobs with SLURM's sbatch, which is not "
            "installed here. Run the command on the cluster's login node, or drop "
            "hydra/launcher=slurm to run the jobs on this machine (hydra/launcher=joblib "
            "runs them in parallel)."
        )


def _is_hydra_key(override: str) -> bool:
    from mnistx.sweep import override_key

    return override_key(override).startswith(("hydra.", "hydra/"))


def _sweep_record(folder: Path) -> DictConfig:
    try:
        record = OmegaConf.load(folder / SWEEP_CONFIG)
        record.hydra.overrides.task  # noqa: B018 (a sweep record has it)
        return record
    except Exception as e:
        raise UserError(
            f"Cannot read {folder / SWEEP_CONFIG} ({str(e).strip()[:200]}), the record of the "
            "sweep in that folder, so it cannot be finished. python -m mnistx.compare "
            f"{folder} still reports the jobs it has."
        ) from None


def _sweep_command(folder: Path, overrides: Sequence[str]) -> list[str]:
    """`resume=<sweep folder>`: the sweep's own command line again, into its folder."""
    from mnistx.sweep import hydra_quoted, override_key, sweep_grid

    record = _sweep_record(folder)
    task = [str(o) for o in record.hydra.overrides.task]
    others = [o for o in overrides if override_key(o) != "resume"]
    changed = [o for o in others if not _is_hydra_key(o)]
    if changed:
        raise UserError(
            f"resume={folder} finishes that sweep as it was started ({' '.join(task)}), so it "
            f"takes no other settings (got: {' '.join(changed)}). To train a finished job "
            "longer, extend it on its own: python -m mnistx.train resume=<job folder> "
            "trainer.max_epochs=<more>"
        )
    if sweep_grid(record) is None:
        raise UserError(
            f"{folder} holds an Optuna search, which resumes from its study: run its command "
            f"again: python -m mnistx.train -m {' '.join(task)}"
        )
    kept = [
        str(o)
        for o in record.hydra.overrides.hydra
        if override_key(str(o)) not in ("hydra.mode", "hydra.sweep.dir")
    ]
    args = [*task, *kept, *others, f"hydra.sweep.dir={hydra_quoted(str(folder)) or folder}"]
    sweep_rerun(folder, args)
    return args


def sweep_rerun(target: Path, overrides: Sequence[str]) -> None:
    """A multirun into `target`, a folder that may hold a sweep already. Then it finishes
    that sweep, so it must be the same one (the same task overrides), and not be running;
    when all its jobs have finished, say so and exit 0 without touching a file."""
    from mnistx.sweep import FINISHED, plan_rerun, sweep_grid, swept_keys_of

    if not (target / SWEEP_CONFIG).is_file():
        if holds_run(target):
            raise UserError(
                f"hydra.sweep.dir={target} is a single run's folder, and a sweep never writes "
                "into a run's folder. Drop hydra.sweep.dir= (a fresh folder is made) or name "
                "a folder that does not exist yet."
            )
        return
    record = _sweep_record(target)
    grid = sweep_grid(record)
    if grid is None:
        return  # an Optuna search's folder: its stored study resumes it
    recorded = [str(o) for o in record.hydra.overrides.task]
    asked = [o for o in overrides if not _is_hydra_key(o)]
    if sorted(recorded) != sorted(asked):
        raise UserError(
            f"{target} holds the sweep `{' '.join(recorded)}`; running into its folder "
            f"finishes that sweep, so the command must sweep the same (got `{' '.join(asked)}`)."
            f" Finish it with: python -m mnistx.train {resume_arg(target)}; for another sweep, "
            "drop hydra.sweep.dir= (a fresh folder is made)."
        )
    plan = plan_rerun(target, grid, swept_keys_of(record))
    for job in plan:
        owner = in_use(job.folder) if job.folder is not None else None
        if owner:
            raise UserError(
                f"The sweep in {target} is still running: process {owner} trains in "
                f"{job.folder}. Wait for it to end (or stop it), then run this again."
            )
    if all(job.state == FINISHED for job in plan):
        print(
            f"{target}: all {len(plan)} jobs of the sweep are finished; nothing to run and "
            f"nothing was changed. Compare them: python -m mnistx.compare {target}"
        )
        raise SystemExit(0)


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


def continues_job(folder: Path) -> bool:
    """Whether a job launched into `folder` continues the run that was there (its sweep was
    run again into its folder, sweep.plan_rerun, or SLURM requeued it): the folder has a
    checkpoint but no finished record. A new run's folder has neither."""
    return (folder / LAST).is_file() and not is_finished(read_metrics(folder))


def continuation(
    cfg: DictConfig, overrides: Sequence[str], job: Path | None = None
) -> tuple[DictConfig, Path, RunInfo]:
    """The run's own config (with the adjustable overrides applied), the checkpoint to continue
    from, and the run's records with this continuation added; `preflight` checked them.
    `job`: a sweep job's folder, continued because its sweep runs again (`continues_job`)."""
    import logging

    from mnistx.sweep import override_key

    folder = job or folder_of(cfg.get("resume"), cfg.get("ckpt_path"))
    assert folder is not None
    ckpt_path = cfg.get("ckpt_path")
    ckpt = Path(os.path.expanduser(str(ckpt_path))) if ckpt_path else folder / LAST
    own = OmegaConf.load(folder / CONFIG)
    ignored = [o for o in overrides if override_key(o) not in ADJUSTABLE]
    if ignored and job is None:  # a sweep job's overrides are its own
        logging.getLogger("mnistx").warning(
            "Resuming with the run's own config; ignoring %s", " ".join(ignored)
        )
    adjusted = [] if job else [o for o in overrides if override_key(o) == "trainer.max_epochs"]
    for o in adjusted:
        own.trainer.max_epochs = _typed(o)
    own.output_dir = str(folder)
    own.resume, own.ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    run = run_info(folder)
    metrics = read_metrics(folder) or {}
    if is_finished(metrics.get("previous")) and not is_finished(metrics):
        metrics = metrics["previous"]  # an extension that failed: the finished run's record
    run.resumes.append(
        {
            "from_epoch": _epochs_done(metrics, _checkpoint_epochs(ckpt)),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checkpoint": ckpt.name,
            **({"overrides": adjusted} if adjusted else {}),
        }
    )
    return own, ckpt, run


def _checkpoint_epochs(ckpt: Path) -> int:
    """The epochs a (checked) checkpoint has trained: it is written at an epoch's validation."""
    key = ckpt.resolve()
    if key not in _epochs_in:
        _epochs_in[key] = int(check_checkpoint(ckpt).get("epoch", -1)) + 1
    return _epochs_in[key]


def run_info(folder: Path, overrides: Sequence[str] | None = None) -> RunInfo:
    """The run's command line (its own .hydra/overrides.yaml unless given), its values of
    the keys its sweep varied (read from the sweep folder's multirun.yaml, so a resumed job
    keeps them), and the continuations recorded so far."""
    from mnistx.sweep import swept_keys_of, swept_values

    if overrides is None:
        file = folder / OVERRIDES
        overrides = [str(o) for o in OmegaConf.load(file)] if file.exists() else []
    overrides = list(overrides)
    keys = None
    sweep_file = folder.parent / SWEEP_CONFIG
    if os.environ.get("MNISTX_SWEPT_KEYS") is None and sweep_file.exists():
        try:
            keys = swept_keys_of(OmegaConf.load(sweep_file))
        except Exception:  # not a readable sweep record: the job's values stay unknown
            keys = []
    metrics = read_metrics(folder) or {}
    resumes = list(metrics.get("resumes") or (metrics.get("previous") or {}).get("resumes") or [])
    return RunInfo(overrides, swept_values(overrides, keys), resumes)


def check_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's contents, or a clear message for a file that is not a readable mnistx
    checkpoint."""
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"Cannot read checkpoint {ckpt} ({detail[:200]}). It may be truncated or not a "
            "Lightning checkpoint; use another one from the run's checkpoints/ folder."
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state or "mnistx" not in state:
        raise UserError(
            f"{ckpt} is not an mnistx training checkpoint (no model state or mnistx state). "
            "Use the run's checkpoints/last.ckpt."
        )
    return state


# --- inspecting ------------------------------------------------------------------------------


def locate(run: str | None, ckpt: str | None) -> tuple[Path, Path]:
    """The run folder (holding .hydra/config.yaml) and the checkpoint to evaluate or predict
    with: `ckpt=` itself, or the run's best.ckpt (last.ckpt when it has no best)."""
    if ckpt:
        ckpt_path = Path(os.path.expanduser(ckpt))
        if not ckpt_path.is_file():
            raise UserError(f"Checkpoint {ckpt_path} does not exist.")
        folder = Path(os.path.expanduser(run)) if run else ckpt_path.resolve().parent.parent
    else:
        folder = Path(os.path.expanduser(str(run)))
        if not folder.is_dir():
            raise UserError(f"Run folder {folder} does not exist. Runs are under outputs/.")
        jobs = sweep_jobs(folder)
        if jobs:
            shown = "\n".join(f"  run={j}" for j in jobs[:10])
            more = f"\n  ... and {len(jobs) - 10} more" if len(jobs) > 10 else ""
            raise UserError(
                f"{folder} is a sweep folder with {len(jobs)} jobs, not one run. Pass one job's "
                f"folder:\n{shown}{more}\n(python -m mnistx.compare {folder} compares them.)"
            )
        found = [p for p in (folder / BEST, folder / LAST) if p.is_file()]
        if not found:
            raise UserError(
                f"No checkpoint in {folder / CHECKPOINTS} (expected best.ckpt or "
                "last.ckpt). Was the run trained with checkpointing on? Or pass ckpt=<file>."
            )
        ckpt_path = found[0]
    check_checkpoint(ckpt_path)
    if not (folder / CONFIG).is_file():
        raise UserError(
            f"{folder} holds no .hydra/config.yaml, so the run's own data and model settings "
            "are unknown. Pass run=<the run folder the checkpoint came from>."
        )
    return folder, ckpt_path


def check_new_file(path: Path, option: str) -> None:
    """A file an inspection writes where the user says: never over a run's own files."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; name a PNG file, e.g. {option} sheet.png")
    if path.exists() and holds_run(path.parent):
        raise UserError(
            f"{option} {path} is one of a run's own files, and a prediction never writes over "
            f"them. Name another file, e.g. {option} sheet.png"
        )


def eval_dir(folder: Path, ckpt: Path, out: str | None) -> Path:
    """Where an evaluation writes: `--out`, or `<run>/eval/<checkpoint name>/`; never over a
    run's own files."""
    if out is None:
        target = folder / EVAL / ckpt.stem
    else:
        target = Path(os.path.expanduser(out))
        if target.exists() and not target.is_dir():
            raise UserError(
                f"--out {target} is a file; --out names a folder for eval.json and the "
                "pictures. Pass a new or existing folder, e.g. --out eval-results"
            )
        if holds_run(target):
            raise UserError(
                f"--out {target} is a run folder, and an evaluation never writes over a run's "
                f"own files. Leave out --out (it then writes to {folder / EVAL / ckpt.stem}) "
                "or name another folder."
            )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot create {target} ({e.strerror}). Pass --out <folder>.") from None
    return target
