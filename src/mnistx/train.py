"""Train, validate and test one configuration: `python -m mnistx.train [key=value ...]`.

Torch and Lightning are imported only once a run really starts, so `--help` and `--cfg job`
answer at once.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, open_dict

from mnistx.errors import UnavailableError, UserError
from mnistx.run_folder import RunInfo, register_resolvers

register_resolvers()
log = logging.getLogger("mnistx")


def _build(what: str, build):
    """Instantiate a config node, turning Hydra's wrapped TypeErrors into a UserError."""
    from hydra.errors import InstantiationException

    try:
        return build()
    except (InstantiationException, TypeError) as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) else e
        if isinstance(cause, UserError):
            raise cause from None
        detail = str(cause or e).strip().splitlines()[-1]
        raise UserError(
            f"Could not build {what} from the config: {detail}. Check the {what}.* overrides "
            f"(`python -m mnistx.train --cfg job` prints the composed config)."
        ) from None


def compose_config(overrides: Sequence[str] = (), with_hydra: bool = False) -> DictConfig:
    """The config `python -m mnistx.train <overrides>` would run, for notebooks, tests and
    benchmarks (`with_hydra`: with the `hydra` node too). Outside a Hydra run, pass
    `output_dir=<folder>` among the overrides."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("mnistx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=with_hydra)


def _quiet_libraries() -> None:
    """Send library logs through our handlers once, and drop chatter users don't act on."""
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # "GPU available: False", tips and "Restoring states": the summary says what matters.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
    # Metrics are logged per epoch, so the per-step logging interval does not matter.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # The module's on_after_batch_transfer (batch augmentation) is meant to be used.
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
    # The test loads the best (EMA-averaged) checkpoint without the EMA callback on purpose.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint.*")
    # On a cluster's login node (srun installed) Lightning suggests srun for every run; mnistx
    # runs reach SLURM through hydra/launcher=slurm or the user's own srun / sbatch.
    warnings.filterwarnings("ignore", message=r".*`srun` command is available on your system.*")


def _skip_per_step_nvml_check(strategy: Any) -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 on import so that fork-based strategies
    can fork before CUDA starts. With it set, every optimizer step asks NVML whether CUDA is
    there (torch's graph-capture health check; a dlopen each time, 0.3-2 ms per step on this
    CPU machine, as long as a small MLP's whole step). Only the fork-based strategies need it."""
    if not any(word in str(strategy) for word in ("fork", "notebook")):
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


def _write_model_summary(module: Any, path: Path) -> None:
    """Lightning's summary (per-layer input/output shapes and parameter counts), as a file."""
    from lightning.pytorch.utilities.model_summary import ModelSummary

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(ModelSummary(module, max_depth=-1)) + "\n")


def _compile_seconds() -> float | None:
    """Time torch.compile spent compiling (forward and backward graphs), which happens inside
    the first steps; training time is reported without it."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent()["total_wall_time"])
    except Exception:  # a torch without these counters: report the fit time as it is
        return None


def _time_to_target(target: float | None, fit: dict[str, float], seconds: float) -> dict:
    if target is None:
        return {}
    reached = fit.get("val/acc_best", 0.0) >= target
    return {
        "target_acc": target,
        "reached_target": reached,
        "seconds_to_target": round(seconds, 3) if reached else None,
    }


def _stop_at(target: float) -> Any:
    """Lightning's EarlyStopping used as a finish line: stop at the first validation whose
    val/acc reaches `target`, never for lack of improvement."""
    from lightning.pytorch.callbacks import EarlyStopping

    return EarlyStopping(
        monitor="val/acc",
        mode="max",
        stopping_threshold=target,
        patience=10**9,
        check_on_train_epoch_end=False,
        verbose=False,
    )


def train(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    choices: dict[str, str] | None = None,
    extra_callbacks: Sequence[Any] = (),
    ckpt_path: Path | None = None,
    run: RunInfo | None = None,
) -> dict[str, Any]:
    """Fit (from `ckpt_path` when resuming), test the best checkpoint, write metrics.json and
    return its contents.

    `extra_callbacks` (Lightning callbacks) are for programs that drive mnistx, e.g. benchmarks.
    `run`: the run's own command line, swept values and continuations (default: `overrides`).
    """
    from mnistx.checks import check_accelerator, check_config, check_devices

    check_config(cfg)
    import lightning.pytorch as L
    import torch
    from hydra.utils import instantiate
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import Timer, WeightAveraging

    from mnistx.hparams import flat_hparams, log_hparams
    from mnistx.hpo.trial import pruned_epoch
    from mnistx.module import ClassifierModule
    from mnistx.report import print_summary
    from mnistx.run_folder import is_rank_zero, record_interrupt, write_metrics
    from mnistx.step_overhead import NullProfiler, skip_idle_hooks
    from mnistx.sweep import swept_values

    if run is None:
        run = RunInfo(list(overrides), swept_values(overrides))

    _quiet_libraries()
    check_accelerator(cfg.trainer.accelerator)
    check_devices(cfg.trainer.accelerator, cfg.trainer.get("devices"))
    out = Path(cfg.output_dir)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = _build("data", lambda: instantiate(cfg.data))
    # All four data files, before anything is built or written (DDP's other ranks leave it to
    # rank 0, as Lightning's own prepare_data call does).
    if is_rank_zero():
        datamodule.prepare_data()
    module = _build("model", lambda: ClassifierModule.from_config(cfg))
    _build("optimizer", lambda: instantiate(cfg.optimizer)(module.parameters()))  # fail fast
    timer = Timer(verbose=False)
    callbacks = [
        instantiate(c)
        for name, c in cfg.callbacks.items()
        if c
        and (name != "progress_bar" or cfg.trainer.get("enable_progress_bar", True))
        and (name != "ema" or c.get("decay"))  # an average with decay 0 is the weights
    ] + [timer, *extra_callbacks]
    if cfg.get("target_acc") is not None:
        callbacks.append(_stop_at(cfg.target_acc))
    logger = instantiate(cfg.logger)
    # +trainer.profiler=simple|advanced|pytorch still profiles; unset, skip even the no-op one.
    lean = {} if cfg.trainer.get("profiler") else {"profiler": NullProfiler()}
    try:
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger, **lean)
    except Exception as e:  # Hydra wraps the Trainer's own error as the __cause__
        cause = e if isinstance(e, MisconfigurationException) else e.__cause__
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
        if isinstance(cause, TypeError) and unknown:
            raise UserError(
                f"trainer.{unknown[1]} is not an argument of Lightning's Trainer "
                f"(lightning {L.__version__}). Check its spelling against "
                "lightning.pytorch.Trainer's arguments, e.g. +trainer.gradient_clip_val=1.0"
            ) from None
        if not isinstance(cause, MisconfigurationException | ValueError | TypeError):
            raise
        raise UserError(
            f"Invalid trainer settings: {cause} Check the trainer.* overrides."
        ) from None
    rank_zero = trainer.is_global_zero  # under DDP, rank 0 alone writes the run's files
    if ckpt_path is None and rank_zero:  # a resumed run has them from its start
        log_hparams(logger, flat_hparams(cfg, choices))
        _write_model_summary(module, out / "model_summary.txt")
    _skip_per_step_nvml_check(cfg.trainer.get("strategy", "auto"))
    skip_idle_hooks(trainer.callbacks)
    # Cumulative per process, and a multirun's jobs may share one.
    compiled_before = _compile_seconds() if cfg.model.get("compile") else None

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit:
        if trainer.interrupted:  # Lightning exits after shutting down gracefully on Ctrl-C
            if rank_zero:
                record_interrupt(out, run, trainer.current_epoch, dict(module.history))
            raise KeyboardInterrupt from None
        raise
    history = dict(module.history)  # before testing loads the best checkpoint's copy
    epochs = trainer.current_epoch  # completed epochs
    compile_seconds = None
    if compiled_before is not None:
        compile_seconds = (_compile_seconds() or 0.0) - compiled_before
    train_seconds = timer.time_elapsed("train") - (compile_seconds or 0.0)
    # From the module's per-epoch record rather than trainer.callback_metrics: a resume of a
    # run that had finished fitting (killed while testing) fits nothing, and has none.
    fit_metrics = {k: v[-1] for k, v in history.items() if v}
    if module.best_epoch >= 0:
        fit_metrics["val/acc_best"] = float(module.val_acc_best.compute())
    # The checkpoint callback that monitors val/acc (last_checkpoint monitors nothing).
    best = next((c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor), "")
    # The best checkpoint already holds the averaged weights; an EMA callback would swap the
    # raw ones back in when the test loads it.
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
    results = {}
    # The final weights are in the module (averaged, with EMA), so `last` loads nothing.
    tested = "best" if best and cfg.test_checkpoint == "best" else "last"
    # An Optuna trial its pruner stopped: what it learned so far is its result, untested.
    pruned = pruned_epoch(trainer.callbacks)
    testing = cfg.test and pruned is None
    if testing:
        results = trainer.test(
            module,
            datamodule=datamodule,
            ckpt_path=best if tested == "best" else None,
            verbose=False,
        )[0]
    metrics: dict[str, Any] = {
        "status": "ok" if pruned is None else "pruned",
        **(
            {}
            if pruned is None
            else {
                "pruned_at_epoch": pruned,
                "reason": f"pruned by Optuna after epoch {pruned} of {cfg.trainer.max_epochs}",
            }
        ),
        "test/acc": results.get("test/acc"),
        "test/loss": results.get("test/loss"),
        "val/acc_best": fit_metrics.get("val/acc_best"),
        "best_epoch": module.best_epoch + 1,  # counted from 1
        "epochs": epochs,
        "train_seconds": round(train_seconds, 3),
        "compile_seconds": None if compile_seconds is None else round(compile_seconds, 3),
        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 3),
        "params": sum(p.numel() for p in module.net.parameters()),
        "accelerator": trainer.strategy.root_device.type,
        **{k: fit_metrics.get(k) for k in ("train/loss", "train/acc", "val/loss", "val/acc")},
        "best_checkpoint": best or None,
        "tested_weights": (tested if testing else None),
        **_time_to_target(cfg.get("target_acc"), fit_metrics, train_seconds),
        "threads": torch.get_num_threads(),
        "overrides": run.overrides,
        "swept": run.swept,
        **({"resumes": run.resumes} if run.resumes else {}),
        "output_dir": str(out),
        "history": history,
    }
    if rank_zero:
        write_metrics(out, metrics)
        print_summary(metrics)
    return metrics


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
    if sweep and cfg.get("threads") is None:
        with open_dict(cfg):
            cfg.threads = _threads_per_job(hc.launcher)


def _threads_per_job(launcher: DictConfig) -> int | None:
    """Torch threads for each of `n_jobs` parallel jobs (joblib launcher), so that together
    they use the cores once instead of each starting one thread per core."""
    n_jobs = launcher.get("n_jobs")
    if not isinstance(n_jobs, int) or n_jobs == 1:
        return None
    cores = os.cpu_count() or 1
    parallel = cores if n_jobs < 0 else min(n_jobs, cores)  # joblib: -1 means all cores
    return max(1, cores // parallel)


def _report_user_error(error: UserError, label: str = "error") -> None:
    """One unwrapped paragraph on stderr, and the same line in the run's log file."""
    print(f"{label}: {error}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, str(error), None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="pkg://mnistx.conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mnistx import run_folder

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    out = Path(cfg.output_dir)
    sweep = hc.mode == RunMode.MULTIRUN
    _set_threads(cfg, hc, sweep)
    ddp_job = sweep and "ddp" in str(cfg.trainer.get("strategy", ""))
    if ddp_job:
        _ddp_ranks_join_this_job(hc, overrides)
    start = time.time()
    ckpt = None
    owner = run_folder.is_rank_zero()
    if owner:  # (a resume's preflight holds it already; a sweep's checked it is free)
        run_folder.hold(out)
    resumed = run_folder.folder_of(cfg.get("resume"), cfg.get("ckpt_path")) is not None
    if resumed:
        cfg, ckpt, run = run_folder.continuation(cfg, overrides)  # checked by preflight
        log.info("Resuming %s from %s", out, ckpt)
    else:
        run = run_folder.run_info(out, overrides)
    # A sweep run again into its folder, or a job SLURM requeued, continues the run there.
    again = not resumed and (sweep or run_folder.requeued())
    # In a sweep, a job that cannot run or fails is recorded (status skipped / failed, with
    # the reason) and returns None; the other jobs go on. A single run exits non-zero.
    try:
        finished = run_folder.read_metrics(out) if again else None
        if run_folder.is_finished(finished):  # said on stderr: its train.log stays as it was
            print(f"{out} has finished already; nothing to do.", file=sys.stderr)
            return finished.get("val/acc_best")
        if again and run_folder.continues_job(out):
            cfg, ckpt, run = run_folder.continuation(cfg, overrides, job=out)
            _set_threads(cfg, hc, sweep)
            log.info("Continuing %s from %s", out, ckpt)
        metrics = train(
            cfg,
            overrides,
            dict(hc.runtime.choices),
            ckpt_path=ckpt,
            run=run,
            extra_callbacks=_trial_reporter(hc, cfg),
        )
    except UserError as e:
        skipped = isinstance(e, UnavailableError)
        if owner:
            run_folder.record_failure(out, run, str(e), "skipped" if skipped else "failed")
        _report_user_error(e, "skipped" if skipped and sweep else "error")
        if not sweep:
            sys.exit(1)
        return None
    except KeyboardInterrupt:  # train() recorded the interrupted run
        if sweep and owner:
            _report_interrupted_sweep(Path(hc.sweep.dir))
        sys.exit(130)
    except Exception as e:
        if owner:
            run_folder.record_failure(out, run, f"{type(e).__name__}: {e}")
        if not sweep:
            raise
        log.exception("job failed; the sweep goes on (outputs in %s)", out)
        return None
    finally:
        if ddp_job:
            _end_ddp_job()
        run_folder.release(out)
    log.info("finished in %.1f s; outputs in %s", time.time() - start, out)
    return metrics.get("val/acc_best")


def _trial_reporter(hc: Any, cfg: DictConfig) -> list[Any]:
    """[the Optuna trial's reporter] for a job of an Optuna search, else []."""
    if "OptunaSweeper" not in str(hc.sweeper.get("_target_")):
        return []
    from mnistx.hpo.trial import reporter

    found = reporter(hc, cfg.trainer.get("max_epochs"))
    return [found] if found else []


def _report_interrupted_sweep(sweep_dir: Path) -> None:
    """Ctrl-C ends the whole multirun: report what finished, and the jobs that never ran."""
    from mnistx.compare import compare

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
    from mnistx.cli_help import answer_help
    from mnistx.sweep import register_sweeper

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
    """The run folder's checks, before Hydra creates or writes anything (run_folder.preflight);
    the command line to run (`resume=<sweep folder>` becomes that sweep's multirun). Arguments
    Hydra cannot parse are left for Hydra to explain."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from mnistx.run_folder import preflight

    multirun = {"-m", "--multirun"}
    words = [a for a in args if not a.startswith("-")]
    try:
        OverridesParser.create().parse_overrides(words)
    except HydraException:
        return list(args)
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
