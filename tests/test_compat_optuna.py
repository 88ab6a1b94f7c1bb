"""The Optuna internal mnistx.compat.optuna relies on: a FrozenTrial's storage id."""

from __future__ import annotations

import optuna

from mnistx.compat.optuna import live_trial


def test_a_frozen_trial_gives_a_live_trial_that_writes_to_the_same_trial():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    asked = study.ask()
    (frozen,) = study.get_trials(deepcopy=False)
    trial = live_trial(study, frozen)
    trial.report(0.5, step=1)
    trial.set_user_attr("by", "another worker")
    (again,) = study.get_trials()
    assert again.number == asked.number
    assert again.intermediate_values == {1: 0.5} and again.user_attrs == {"by": "another worker"}
