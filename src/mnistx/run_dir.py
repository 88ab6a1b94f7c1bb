"""Run folders that stay unique even when two runs start in the same second."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

_claimed: dict[str, str] = {}


def unique_dir(path: str) -> str:
    """Claim `path`, or `path-1`, `path-2`, ... if taken; mkdir is atomic, so racing runs differ.

    Hydra resolves the run dir more than once, on copies of the config; the answer is
    remembered per process so a run claims exactly one folder.
    """
    if path in _claimed:
        return _claimed[path]
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    candidate, n = path, 0
    while True:
        try:
            os.mkdir(candidate)
            _claimed[path] = candidate
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}-{n}"


def register_resolvers() -> None:
    """Make ${unique_dir:...} available to Hydra configs."""
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir)
