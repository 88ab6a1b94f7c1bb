"""An Optuna search as a Hydra sweep: ask Optuna for trials, run them through Hydra's
launcher (`hydra.sweeper.n_jobs` at a time), tell Optuna how each ended.

The sweeper (hydra_plugins.mnistx_sweeper.OptunaSweeper) is a thin shell around `Search`.
Each trial is a job of the sweep with its sampled values as overrides and its trial number
in `hydra.sweeper.trial`, so that the job reports val/acc to its trial every epoch and stops
when the pruner says so (mnistx.hpo.trial). The job's metrics.json is what the trial is
told: its objective value(s), PRUNED, or FAIL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.config.overrides import override_value
from mnistx.data.folds import configured_folds
from mnistx.hpo import results, settings
from mnistx.hpo import study as studies
from mnistx.hpo.space import search_space
from mnistx.runs.claims import launch

log = logging.getLogger("mnistx")
WAIT_FOR_OTHERS = 2.0  # seconds between looks at other workers' running trials


# --- the search space -----------------------------------------------------------------------


class Search:
    """One worker's part of the study: trials `n_jobs` at a time until the study holds
    `n_trials` that count, then waits for the other workers' running trials."""

    def __init__(self, config: DictConfig, launcher: Any, arguments: Sequence[str]) -> None:
        self.config = config
        self.sweeper = config.hydra.sweeper
        self.launcher = launcher
        settings.check_settings(self.sweeper)
        self.folds = configured_folds(config)
        self.space, self.fixed = search_space(self.sweeper, arguments)
        self.objectives = settings.objectives(self.sweeper)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.max_epochs = config.get("trainer", {}).get("max_epochs")
        settings.make_sampler(self.sweeper, 0)  # its options, before anything is written
        self.study = studies.open_study(self.sweeper, self.max_epochs)
        self.url, self.name = str(self.sweeper.storage), str(self.sweeper.study_name)
        self.seed = self.sweeper.get("seed")
        self.job_idx = 0
        self._waiting_for: list[int] = []

    def run(self) -> list[Any]:
        from mnistx.runs.layout import SWEEP_CONFIG

        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        record = self.sweep_dir / SWEEP_CONFIG
        if not record.exists():  # several workers may share the folder: the first says it
            OmegaConf.save(self.config, record)
        self._fail_abandoned()
        self._say_where_it_stands()
        returns = []
        with studies.Heartbeat(self.study) as heartbeat:
            while True:
                trials = self._ask(heartbeat)
                if trials:
                    returns.append(self._run_batch(trials, heartbeat))
                elif not self._others_running():
                    break
        return returns

    def _budget(self) -> tuple[int, int]:
        """(trials that count, trials in the study)."""
        trials = self.study.get_trials(deepcopy=False)
        return sum(studies.counts(t) for t in trials), len(trials)

    def _say_where_it_stands(self) -> None:
        counted, _ = self._budget()
        wanted = int(self.sweeper.n_trials)
        if counted:
            left = max(0, wanted - counted)
            log.info(
                "Study %r already has %d of %d trials; running the other %d.",
                self.name,
                min(counted, wanted),
                wanted,
                left,
            )

    def _ask(self, heartbeat: studies.Heartbeat) -> list[Any]:
        """Up to n_jobs new trials, within the study's n_trials."""
        from optuna.trial import TrialState

        wanted = int(self.sweeper.n_trials)
        trials = []
        with studies.budget_lock(self.url, self.name):
            counted, total = self._budget()
            for _ in range(min(int(self.sweeper.n_jobs), wanted - counted)):
                # Each trial samples with its own seed (the search's seed and the trial's
                # number), so workers that share a study never propose the same values.
                seed = None if self.seed is None else (int(self.seed) * 100_003 + total) % 2**32
                self.study.sampler = settings.make_sampler(self.sweeper, seed)
                trial = self.study.ask(self.space)
                heartbeat.add(trial)
                trials.append(trial)
                total += 1
        # Without a lock (a storage other than SQLite, PostgreSQL, MySQL) two workers may
        # both have taken the last trial: the later one gives its back.
        kept = []
        for trial in trials:
            ahead = [
                t
                for t in self.study.get_trials(deepcopy=False)
                if t.number < trial.number and studies.counts(t)
            ]
            if len(ahead) >= wanted:
                trial.set_user_attr(studies.KILLED, "over n_trials: another worker took it")
                self.study.tell(trial, state=TrialState.FAIL)
                heartbeat.done(trial.number)
            else:
                kept.append(trial)
        return kept

    def _fail_abandoned(self) -> int:
        """studies.fail_abandoned, under the lock other workers ask for trials under: a trial
        another worker has just asked for, whose worker and heartbeat it has not yet written,
        is not taken for one left behind."""
        with studies.budget_lock(self.url, self.name):
            return studies.fail_abandoned(self.study)

    def _others_running(self) -> bool:
        """Whether other workers still run trials that count (this worker then waits: one
        of them may yet fail, and be replaced)."""
        from optuna.trial import TrialState

        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return False
        if self._fail_abandoned():
            return True
        numbers = [t.number for t in running]
        if numbers != self._waiting_for:  # said once per change, not every few seconds
            log.info(
                "Waiting for %d trial(s) other workers are running (%s).",
                len(numbers),
                ", ".join(f"#{n}" for n in numbers),
            )
            self._waiting_for = numbers
        time.sleep(WAIT_FOR_OTHERS)
        return True

    def _run_batch(self, trials: list[Any], heartbeat: studies.Heartbeat) -> Any:
        # cv.folds=k: a trial is k jobs, one per fold, and its value their mean.
        folds = self.folds
        per_fold = [[f"cv.fold={i}"] for i in range(folds)] if folds else [[]]
        batch = []
        for trial in trials:
            sampled = [f"{k}={override_value(v)}" for k, v in trial.params.items()]
            trial_job = [*sampled, *self.fixed, f"hydra.sweeper.trial={trial.number}"]
            batch += [[*trial_job, *fold] for fold in per_fold]
        try:
            results = launch(self.launcher, self.sweep_dir, batch, self.job_idx)
        except BaseException:
            for trial in trials:  # e.g. Ctrl-C: the next search replaces them
                self._tell_killed(trial, "its search was stopped")
                heartbeat.done(trial.number)
            raise
        self.job_idx += len(batch)
        for i, trial in enumerate(trials):
            try:
                self._tell(trial, results[i * len(per_fold) : (i + 1) * len(per_fold)])
            except RuntimeError as e:  # already closed: another worker took it for dead
                log.warning(
                    "Trial #%d ended, but the study has it closed already (%s); its "
                    "run folder keeps the result.",
                    trial.number,
                    e,
                )
            heartbeat.done(trial.number)
        return results

    def _tell_killed(self, trial: Any, why: str) -> None:
        from optuna.trial import TrialState

        try:
            trial.set_user_attr(studies.KILLED, why)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        except Exception as e:  # the storage may be gone with the interrupt
            log.debug("could not mark trial #%s: %s", trial.number, e)

    def _tell(self, trial: Any, results: list[Any]) -> None:
        """The trial's result, from its jobs' metrics.json: one job, or one per fold (their
        mean, and a failure when any fold failed)."""
        from optuna.trial import TrialState

        from mnistx.runs.records import read_metrics

        found = []
        for result in results:
            folder = Path(str(result.hydra_cfg.hydra.runtime.output_dir))
            try:
                result.return_value  # noqa: B018  (raises what the job raised)
            except Exception as e:
                log.error("trial #%d failed: %s (outputs in %s)", trial.number, e, folder)
            found.append((folder, read_metrics(folder) or {}))
        trial.set_user_attr(studies.FOLDER, str(found[0][0]))
        if len(found) > 1:
            trial.set_user_attr("mnistx.folders", [str(f) for f, _ in found])
        if any(m.get("status") == "pruned" for _, m in found):
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        values = [[m.get(name) for _, m in found] for name in self.objectives]
        numbers = [[float(v) for v in each if isinstance(v, int | float)] for each in values]
        if all(m.get("status") == "ok" for _, m in found) and numbers == values:
            self.study.tell(trial, [sum(each) / len(each) for each in numbers])
            return
        reason = next((str(m["reason"]) for _, m in found if m.get("reason")), None)
        if reason:
            trial.set_user_attr("mnistx.reason", reason[:500])
        self.study.tell(trial, state=TrialState.FAIL)

    def finish(self) -> dict[str, Any]:
        return results.write_best(self.study, self.sweeper, self.sweep_dir, self.fixed)


def run_search(config: DictConfig, launcher: Any, arguments: Sequence[str]) -> list[Any]:
    """The sweeper's sweep(); a mistake in the settings is a UserError."""
    search = Search(config, launcher, arguments)
    returns = search.run()
    search.finish()
    return returns
