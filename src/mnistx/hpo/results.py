"""What a search leaves besides its trials' folders: best.yaml (the best trial, and the
command that repeats it as a single run) and, for a multi-objective search, pareto.yaml."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.config.overrides import override_value
from mnistx.hpo.settings import directions, objectives
from mnistx.hpo.study import FOLDER, counts

log = logging.getLogger("mnistx")


def rerun_command(params: dict[str, Any], fixed: Sequence[str] = ()) -> str:
    """The single run a trial was: the search's command line (its preset, e.g.
    hparams_search=optuna, and constants) with the trial's values; a cross-validated trial's
    setting trained once on the usual split (cv.* dropped)."""
    constants = [
        o for o in fixed if not o.lstrip("+~").startswith(("hydra.", "hydra/", "cv.", "cv="))
    ]
    overrides = [*constants, *(f"{k}={override_value(v)}" for k, v in params.items())]
    return " ".join(["python -m mnistx.train", *overrides])


def _trial_record(trial: Any, names: Sequence[str], fixed: Sequence[str]) -> dict[str, Any]:
    values = dict(zip(names, trial.values, strict=True))
    return {
        "trial": trial.number,
        # Each objective's value, also at the top (but `params` there is the settings).
        **{name: value for name, value in values.items() if name != "params"},
        "values": values,
        "params": dict(trial.params),
        "folder": trial.user_attrs.get(FOLDER),
        **(
            {"folds": trial.user_attrs["mnistx.folders"]}
            if "mnistx.folders" in trial.user_attrs
            else {}
        ),
        "command": rerun_command(trial.params, fixed),
    }


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all: workers that end together may both write it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    OmegaConf.save(OmegaConf.create(data), tmp)
    os.replace(tmp, path)


def write_best(
    study: Any, sweeper: DictConfig, sweep_dir: Path, fixed: Sequence[str] = ()
) -> dict[str, Any]:
    """best.yaml (the best trial: its value, settings and the command that reruns it) and,
    for a multi-objective search, pareto.yaml (every trial on the Pareto front); printed."""
    from optuna.trial import TrialState
    from rich.console import Console

    console = Console()
    names = objectives(sweeper)
    trials = study.get_trials(deepcopy=False)
    tally = {
        "finished": sum(t.state.is_finished() and counts(t) for t in trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and counts(t) for t in trials),
    }
    summary = (
        f"{tally['finished']} trials: {tally['complete']} complete, {tally['pruned']} "
        f"pruned, {tally['failed']} failed"
    )
    front = study.best_trials
    if not front:
        log.error(
            "No trial of study %r completed (%s); see the trials' train.log.",
            study.study_name,
            summary,
        )
        return {}
    # Multi-objective: the front's best by the first objective stands for the search.
    first = -1.0 if directions(sweeper)[0] == "maximize" else 1.0
    best = min(front, key=lambda t: (first * t.values[0], t.number))
    result = {"study_name": study.study_name, **_trial_record(best, names, fixed), "trials": tally}
    _write_yaml(sweep_dir / "best.yaml", result)
    values = ", ".join(f"{n} {_shown(n, v)}" for n, v in zip(names, best.values, strict=True))
    console.print(f"[bold]Best trial[/bold] #{best.number}: {values} ({summary})")
    for key, value in best.params.items():
        console.print(f"  {key} = {value}")
    console.print(f"Written to {sweep_dir / 'best.yaml'}")
    if len(names) > 1:
        ordered = sorted(front, key=lambda t: (first * t.values[0], t.number))
        records = [_trial_record(t, names, fixed) for t in ordered]
        _write_yaml(
            sweep_dir / "pareto.yaml",
            {
                "study_name": study.study_name,
                "objectives": dict(zip(names, directions(sweeper), strict=True)),
                "front": records,
            },
        )
        console.print(
            f"[bold]Pareto front[/bold] ({len(front)} of {tally['complete']} complete trials):"
        )
        for t in ordered:
            shown = ", ".join(f"{n} {_shown(n, v)}" for n, v in zip(names, t.values, strict=True))
            console.print(f"  #{t.number}: {shown}")
        console.print(f"Written to {sweep_dir / 'pareto.yaml'}")
        result["pareto"] = records
    return result


def _shown(name: str, value: float) -> str:
    if name.endswith("acc") or name.endswith("acc_best"):
        return f"{100 * value:.2f}%"
    if name == "params":
        return f"{int(value):,}"
    return f"{value:.4g}"
