"""The Hydra internals mnistx.compat.hydra relies on: if a Hydra release moves or reshapes
them, these fail first, naming the one that changed."""

from __future__ import annotations

from omegaconf import OmegaConf

from mnistx.compat.hydra import basic_sweeper, grid_jobs, is_basic_launcher, sweeper_params


def test_the_basic_sweeper_is_where_the_grid_sweeper_takes_it_from():
    from hydra.plugins.sweeper import Sweeper

    cls = basic_sweeper()
    assert cls.__name__ == "BasicSweeper" and issubclass(cls, Sweeper)
    assert callable(cls.split_arguments)


def test_the_grid_is_expanded_in_hydras_launch_order():
    assert grid_jobs(["a=1,2", "b=x,y", "c=3"]) == [
        ["a=1", "b=x", "c=3"],
        ["a=1", "b=y", "c=3"],
        ["a=2", "b=x", "c=3"],
        ["a=2", "b=y", "c=3"],
    ]


def test_the_sweepers_params_read_as_overrides():
    sweeper = basic_sweeper()(max_batch_size=None, params={"optimizer.lr": "1e-3,1e-2"})
    sweeper.config = OmegaConf.create({"hydra": {"sweeper": {"params": sweeper.params}}})
    assert sweeper_params(sweeper) == ["optimizer.lr=1e-3,1e-2"]


def test_the_basic_launcher_is_the_default_and_is_told_from_the_others():
    from hydra.utils import get_class

    from mnistx.runs.compose import compose_config

    default = compose_config([], with_hydra=True).hydra.launcher._target_
    slurm = compose_config(["hydra/launcher=slurm"], with_hydra=True).hydra.launcher._target_
    assert is_basic_launcher(get_class(default)())
    assert not is_basic_launcher(get_class(slurm).__new__(get_class(slurm)))
