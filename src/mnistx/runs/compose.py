"""Composing the config a command line describes, with mnistx's resolvers registered."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from mnistx.compat.omegaconf import cache_interpolation_parses, use_libyaml
from mnistx.runs.resolvers import config_subdir, job_dirname, run_dir, unique_dir


def set_up_omegaconf() -> None:
    """Make the run-folder resolvers (unique_dir, job_dirname, run_dir, config_subdir)
    available to Hydra configs, and have OmegaConf parse YAML with libyaml and each
    interpolation string once (mnistx.compat.omegaconf: same results, less time).

    The resolvers only name folders (mnistx.runs.claims makes them when the run starts).
    Cached in the config (use_cache), which Hydra copies into each sweep job's config.
    """
    use_libyaml()
    cache_interpolation_parses()
    for name, fn in (
        ("unique_dir", unique_dir),
        ("job_dirname", job_dirname),
        ("run_dir", run_dir),
        ("config_subdir", config_subdir),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


def compose_config(overrides: Sequence[str] = (), with_hydra: bool = False) -> DictConfig:
    """The config `python -m mnistx.train <overrides>` would run, for notebooks, tests and
    benchmarks (`with_hydra`: with the `hydra` node too). Outside a Hydra run, pass
    `output_dir=<folder>` among the overrides."""
    from hydra import compose, initialize_config_module

    set_up_omegaconf()
    with initialize_config_module("mnistx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=with_hydra)
