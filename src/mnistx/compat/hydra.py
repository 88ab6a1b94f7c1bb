"""Hydra's internals: its basic sweeper and basic launcher, which live under `hydra._internal`,
and its composition of a sweep job's config.

mnistx's grid sweeper extends it (to finish a sweep cut short), and a sweep's list of jobs is
expanded from its multirun.yaml the way the basic sweeper expands a command line, so that a
sweep run again launches exactly the jobs it launched the first time.

Hydra composes every sweep job's config anew from conf/'s files (`load_sweep_config`): its
defaults list, then the files merged, then the job's values applied; the first two were
~0.08 s of the ~0.1 s each job's config took here, and depend only on the config groups the
job chooses. `reused_compositions` keeps them per choice while a sweep launches.
tests/test_compat_hydra.py checks that each job's config is the one Hydra composes alone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def basic_sweeper() -> Any:
    """Hydra's BasicSweeper class (imported when asked: Hydra's plugin scan executes its
    module again, and the grid sweeper must extend the class that scan leaves)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper


def is_basic_launcher(launcher: Any) -> bool:
    """Whether `launcher` is Hydra's basic launcher, which runs a batch's jobs one after the
    other in this process."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    return isinstance(launcher, BasicLauncher)


def sweeper_params(sweeper: Any) -> list[str]:
    """`hydra.sweeper.params` of a BasicSweeper as override strings (`key=a,b`)."""
    return list(sweeper._parse_config())


def grid_jobs(words: Sequence[str]) -> list[list[str]]:
    """Every job of a grid sweep's command line (`key=a,b` words), in Hydra's launch order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(words))
    (jobs,) = basic_sweeper().split_arguments(parsed, None)
    return [list(job) for job in jobs]


@contextmanager
def reused_compositions(loader: Any) -> Iterator[dict[str, int]]:
    """While the block runs, `loader` (Hydra's ConfigLoaderImpl) composes jobs that choose the
    same config groups (and search path) from one defaults list and one merge of the files,
    each job getting its own copy; Hydra itself still parses every job's overrides, applies
    its values (where a mistake is found, as before) and fills `hydra.*`. Yields counts:
    `composed` (merges done) and `reused` (copies handed out)."""
    from hydra._internal import config_loader_impl as impl
    from hydra._internal.defaults_list import DefaultsList, Overrides

    create, compose = impl.create_defaults_list, loader._compose_config_from_defaults_list
    counts = {"composed": 0, "reused": 0}
    lists: dict[tuple[Any, ...], Any] = {}
    merged: dict[int, tuple[Any, Any]] = {}  # id(a kept defaults list) -> (it, its merge)

    def create_defaults_list(
        repo: Any, config_name: Any, overrides_list: Any, prepend_hydra: bool, skip_missing: bool
    ) -> Any:
        # Hydra's own split: overrides of values (applied after composing) and the rest
        own = Overrides(repo, overrides_list)
        values = {id(o) for o in own.config_overrides}
        choices = tuple(o.input_line for o in overrides_list if id(o) not in values)
        sources = tuple((s.provider, s.path) for s in repo.get_sources())
        key = (config_name, sources, choices, prepend_hydra, skip_missing)
        if key not in lists:
            lists[key] = create(repo, config_name, overrides_list, prepend_hydra, skip_missing)
        kept = lists[key]
        return DefaultsList(
            defaults=kept.defaults,
            defaults_tree=kept.defaults_tree,
            config_overrides=own.config_overrides,
            overrides=kept.overrides,
        )

    def compose_config_from_defaults_list(defaults: Any, repo: Any) -> Any:
        entry = merged.get(id(defaults))
        if entry is not None and entry[0] is defaults:
            counts["reused"] += 1
            return copy.deepcopy(entry[1])
        cfg = compose(defaults=defaults, repo=repo)
        counts["composed"] += 1
        merged[id(defaults)] = (defaults, copy.deepcopy(cfg))  # pristine: Hydra edits `cfg`
        return cfg

    impl.create_defaults_list = create_defaults_list
    loader._compose_config_from_defaults_list = compose_config_from_defaults_list
    try:
        yield counts
    finally:
        impl.create_defaults_list = create
        del loader._compose_config_from_defaults_list
