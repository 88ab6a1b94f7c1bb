"""Hydra's internals: its basic sweeper and basic launcher, which live under `hydra._internal`.

mnistx's grid sweeper extends it (to finish a sweep cut short), and a sweep's list of jobs is
expanded from its multirun.yaml the way the basic sweeper expands a command line, so that a
sweep run again launches exactly the jobs it launched the first time.
"""

from __future__ import annotations

from collections.abc import Sequence
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
