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
    """Make the run-folder resolvers (unique_dir, job_dirname, run_dir, config_subdir)
    available to Hydra configs.

    Cached in the config (use_cache): Hydra copies that cache into each sweep job's config, so
    a joblib worker or SLURM job resolves the sweep folder the launcher claimed, not a new one.
    """
    from mnistx.resume import config_subdir, run_dir
    from mnistx.sweep import job_dirname

    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("job_dirname"):
        OmegaConf.register_new_resolver("job_dirname", job_dirname, use_cache=True)
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", run_dir, use_cache=True)
    if not OmegaConf.has_resolver("config_subdir"):
        OmegaConf.register_new_resolver("config_subdir", config_subdir, use_cache=True)
