"""Resuming a stored Optuna study and reporting its best trial, around Hydra's Optuna sweeper.

Hydra's sweeper runs `n_trials` new trials every time, even on a study that already has
some. `prepare_study` runs (from mnistx.sweep.SweepCallback) before the sweeper is built from
the config: it creates the study's folder, which must exist before SQLite opens its file
there, and lowers `n_trials` to the trials the stored study still lacks, so a re-run picks up
an interrupted search where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, read_write

log = logging.getLogger("mnistx")


def _finished_trials(study_name: str | None, storage: str | None) -> int:
    """Trials of a stored study that ended; ones left running by a killed search are marked
    failed, so that they count as neither done nor pending."""
    import optuna

    if not storage or not study_name:
        return 0
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return 0
    done = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        elif trial.state.is_finished():
            done += 1
    return done


def is_optuna(config: DictConfig) -> bool:
    return "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()


def prepare_study(config: DictConfig) -> None:
    sweeper = config.hydra.sweeper
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    wanted = sweeper.n_trials
    done = _finished_trials(sweeper.study_name, sweeper.storage)
    with read_write(sweeper):
        sweeper.n_trials = max(0, wanted - done)
        # A seeded sampler restarted with its seed would propose the first trials again.
        if done and sweeper.sampler.get("seed") is not None:
            sweeper.sampler.seed = int(sweeper.sampler.seed) + done
    if done:
        log.info(
            "Study %r already has %d of %d trials; running the other %d.",
            sweeper.study_name,
            done,
            wanted,
            sweeper.n_trials,
        )


def write_best(config: DictConfig) -> dict[str, Any]:
    """best.yaml: the best trial's value and settings, and the command that reruns it."""
    import optuna
    from rich.console import Console

    sweep_dir = Path(str(config.hydra.sweep.dir))
    study_name, storage = config.hydra.sweeper.study_name, config.hydra.sweeper.storage
    study = optuna.load_study(study_name=study_name, storage=storage)
    try:
        best = study.best_trial
    except ValueError:  # every trial failed
        log.error("No trial of study %r completed; see the trials' train.log.", study_name)
        return {}
    overrides = [f"{k}={v}" for k, v in best.params.items()]
    result = {
        "study_name": study_name,
        "trial": best.number,
        "val/acc_best": best.value,
        "params": dict(best.params),
        "command": "python -m mnistx.train hparams_search=optuna " + " ".join(overrides),
        "trials": {
            "finished": sum(t.state.is_finished() for t in study.trials),
            "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials),
        },
    }
    OmegaConf.save(OmegaConf.create(result), sweep_dir / "best.yaml")
    console = Console()
    console.print(
        f"[bold]Best trial[/bold] #{best.number}: val/acc_best {100 * best.value:.2f}% "
        f"({result['trials']['finished']} trials, {result['trials']['failed']} failed)"
    )
    for key, value in best.params.items():
        console.print(f"  {key} = {value}")
    console.print(f"Written to {sweep_dir / 'best.yaml'}")
    return result
