"""The Hydra internals mnistx.compat.hydra relies on: if a Hydra release moves or reshapes
them, these fail first, naming the one that changed."""

from __future__ import annotations

from omegaconf import OmegaConf

from mnistx.compat.hydra import basic_sweeper, grid_jobs, sweeper_params


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
