"""The Hydra internals mnistx.compat.hydra relies on: if a Hydra release moves or reshapes
them, these fail first, naming the one that changed."""

from __future__ import annotations

import pytest
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


def _loader():
    """Hydra's config loader as `python -m mnistx.train` gets it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.utils import JobRuntime

    from mnistx.runs.compose import set_up_omegaconf

    set_up_omegaconf()
    JobRuntime.instance().set("name", "train")
    return ConfigLoaderImpl(config_search_path=create_config_search_path("pkg://mnistx.conf"))


SWEEPS = [  # (Hydra's own overrides, the sweep's words, config-group choices among its jobs)
    (
        ["hydra/launcher=stacked", "hydra.sweep.dir=/unused/a"],
        ["seed=1,2", "optimizer.lr=1e-3,1e-2", "model=mlp,cnn", "~callbacks.pictures"],
        2,
    ),
    (
        ["hydra.sweep.dir=/unused/b", "hydra.job.chdir=false"],
        [
            "experiment=fast_mlp,tutorial_mlp_adam",
            "optimizer=adam,sgd",
            "+trainer.limit_train_batches=2,3",
            "callbacks.progress_bar={every_n_batches: 5}",
            "model.hidden_sizes=[64],[32,16]",
        ],
        4,
    ),
]


@pytest.mark.parametrize(("hydra_words", "words", "choices"), SWEEPS)
def test_reused_compositions_give_each_job_the_config_hydra_composes_alone(
    hydra_words, words, choices
):
    """Jobs in Hydra's launch order, so that each choice of config groups is composed once
    and copied for the jobs after it; each config, its values, `hydra.*` and flags included,
    equals Hydra's own composition of that job, also after an earlier job's copy was edited."""
    from hydra.types import RunMode
    from omegaconf import open_dict

    from mnistx.compat.hydra import reused_compositions

    loader = _loader()
    master = loader.load_configuration("train", [*hydra_words, *words], RunMode.MULTIRUN)
    jobs = grid_jobs(words)
    alone = [OmegaConf.to_yaml(loader.load_sweep_config(master, job)) for job in jobs]
    with reused_compositions(loader) as counts:
        for job, expected in zip(jobs, alone, strict=True):
            cfg = loader.load_sweep_config(master, job)
            assert OmegaConf.to_yaml(cfg) == expected, job
            assert OmegaConf.is_struct(cfg) and not OmegaConf.is_readonly(cfg.hydra)
            with open_dict(cfg):  # a job edits its config: the next copies stay clean
                cfg.seed, cfg.model.extra = 999, "edited"
    assert counts == {"composed": choices, "reused": len(jobs) - choices}
    # Outside the block, Hydra composes as it always does.
    assert OmegaConf.to_yaml(loader.load_sweep_config(master, jobs[0])) == alone[0]


def test_reused_compositions_still_refuse_a_bad_value_in_any_job():
    from hydra.errors import ConfigCompositionException
    from hydra.types import RunMode

    from mnistx.compat.hydra import reused_compositions

    loader = _loader()
    master = loader.load_configuration("train", ["seed=1,2"], RunMode.MULTIRUN)
    with reused_compositions(loader):
        loader.load_sweep_config(master, ["seed=1"])
        with pytest.raises(ConfigCompositionException, match="no_such_key"):
            loader.load_sweep_config(master, ["seed=2", "optimizer.no_such_key=1"])
        with pytest.raises(ConfigCompositionException, match="no_such_choice"):
            loader.load_sweep_config(master, ["seed=2", "model=no_such_choice"])
