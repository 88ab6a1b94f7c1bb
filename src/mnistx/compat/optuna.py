"""Optuna's internals: a trial's storage id.

A worker reports for, and marks, a trial it did not ask for itself (a DDP rank, a trial
whose worker died). Optuna's public Trial is made from the study and the trial's storage id,
which a FrozenTrial holds only as `_trial_id`.
"""

from __future__ import annotations

from typing import Any


def live_trial(study: Any, frozen: Any) -> Any:
    """The optuna.trial.Trial of a FrozenTrial of `study`, to report or set attributes on."""
    import optuna

    return optuna.trial.Trial(study, frozen._trial_id)
