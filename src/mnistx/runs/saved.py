"""The one reader of a saved run: whatever is read from a run or sweep folder is data, checked
before it is used, and nothing in it is ever executed.

A run folder may come from anywhere (a colleague's archive, a download), so its files are not
trusted: `.hydra/config.yaml` and a checkpoint's hyperparameters may build only what mnistx's
allow-list allows (mnistx.config.targets), and name no resolver that acts (only `${oc.env:}`,
`${hydra:}`, `${now:}` and plain `${key}` references); a checkpoint is read with
`weights_only=True`; metrics.json must be a JSON object; a sweep's multirun.yaml gives only its
command line. Anything else is refused with one paragraph naming the file and the key, before
anything is built. eval, predict, serve, resume= and compare all read runs through here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.config.targets import check_node
from mnistx.errors import UserError
from mnistx.runs.layout import BEST, CHECKPOINTS, CONFIG, LAST, METRICS, SWEEP_CONFIG, sweep_jobs

# Resolvers a saved config may use: they read (an environment variable, Hydra's runtime
# values, the clock); mnistx's own (unique_dir, run_dir, ...) name a new run's folders and
# read the disk, which a saved run has no business doing, so are refused.
SAFE_RESOLVERS = {"oc.env", "hydra", "now", "oc.select"}
_RESOLVER = re.compile(r"\$\{\s*([^}:\s]+)\s*:")
# The sections of a run config mnistx builds objects from.
BUILT = ("data", "model", "optimizer", "scheduler", "loss", "augment", "trainer")
BUILT_MANY = ("callbacks", "logger")
HPARAMS = ("model", "optimizer", "loss", "scheduler", "augment")


def first_line(error: BaseException) -> str:
    """An exception's first line (or its type), at most 200 characters, for a message."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _check_resolvers(node: Any, key: str, path: Path) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _check_resolvers(v, f"{key}.{k}" if key else str(k), path)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_resolvers(v, f"{key}[{i}]", path)
    elif isinstance(node, str):
        for name in _RESOLVER.findall(node):
            if name not in SAFE_RESOLVERS:
                raise UserError(
                    f"{path}: {key}={node!r} calls the resolver {name!r}, which a saved run may "
                    "not use (it could create or change files), so the run was not read and "
                    "nothing was built. The configs mnistx writes never hold it; the file was "
                    "changed after the run was saved."
                )


def load_config(path: Path) -> DictConfig:
    """A saved config file (.hydra/config.yaml): a mapping with no acting resolver, or one
    paragraph saying what is wrong with the file."""
    try:
        cfg = OmegaConf.load(path)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: the run's saved config is missing.") from None
    except Exception as e:
        raise UserError(
            f"Cannot read {path} ({first_line(e)}): it is not the YAML config mnistx saves for a "
            "run. It may have been cut short or edited; restore it from a copy of the run."
        ) from None
    if not isinstance(cfg, DictConfig) or not cfg:
        what = "is empty" if not cfg else "holds a list"
        raise UserError(
            f"Cannot read {path}: it {what}, not the run's config (a mapping of keys such as "
            "model, data, optimizer). Restore it from a copy of the run."
        )
    _check_resolvers(OmegaConf.to_container(cfg, resolve=False), "", path)
    return cfg


def run_config(
    run_dir: Path,
    data_dir: str | None = None,
    trusted: list[str] | None = None,
    continued: bool = False,
) -> DictConfig:
    """The run's own saved config, in today's shape (for a run of an earlier mnistx), its
    objects checked against the allow-list before anything is built. `trusted`: what the
    command that continues the run says it trusts (its trusted_targets=, never the file's).
    `continued`: the run trains on, so every folder it writes must lie inside it."""
    from omegaconf.errors import OmegaConfBaseException

    from mnistx.config.legacy import upgrade
    from mnistx.config.targets import trusting

    path = run_dir / CONFIG
    cfg = upgrade(load_config(path))
    cfg.output_dir = str(run_dir)  # was ${hydra:runtime.output_dir}, unknown outside Hydra
    if data_dir:
        cfg.data.data_dir = data_dir
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        raise UserError(
            f"Cannot read {path}: {str(e).strip().splitlines()[0]}. Restore the file from a "
            "copy of the run."
        ) from None
    assert isinstance(plain, dict)
    with trusting(trusted or []):
        check_run_config(plain, path)
    if continued:
        _check_writes_stay_inside(plain, "", run_dir, path)
    cfg.trusted_targets = list(trusted or [])
    return cfg


def check_run_config(plain: dict[Any, Any], path: Path | str) -> None:
    """Every object a run config describes is one mnistx builds (mnistx.config.targets)."""
    source = str(path)
    for section in ("model", "data"):
        if not isinstance(plain.get(section), dict):
            raise UserError(
                f"{source}: it has no {section} section, so it is not a run's config. Restore "
                "the file from a copy of the run."
            )
    for section in BUILT:
        check_node(plain.get(section), section, source, section=section)
    for section in BUILT_MANY:
        for name, node in (plain.get(section) or {}).items():
            check_node(node, f"{section}.{name}", source)
    for key, node in plain.items():
        if key not in (*BUILT, *BUILT_MANY):
            check_node(node, str(key), source)


# Keys whose value is a folder a run writes into (checkpoints, pictures, trackers, profiler).
WRITTEN_FOLDERS = {"dirpath", "out_dir", "save_dir", "default_root_dir"}


def _check_writes_stay_inside(node: Any, key: str, run_dir: Path, path: Path) -> None:
    """A saved config writes only inside its own run folder (a crafted `dirpath` could aim a
    resumed run's checkpoints at another run)."""
    if isinstance(node, list):
        for i, value in enumerate(node):
            _check_writes_stay_inside(value, f"{key}[{i}]", run_dir, path)
        return
    if not isinstance(node, dict):
        return
    for name, value in node.items():
        where = f"{key}.{name}" if key else str(name)
        if name in WRITTEN_FOLDERS and isinstance(value, str):
            target = Path(os.path.abspath(os.path.join(run_dir, os.path.expanduser(value))))
            if not target.is_relative_to(os.path.abspath(run_dir)):
                raise UserError(
                    f"{path}: {where}={value!r} lies outside the run's own folder, and a run "
                    "writes only there; the run was not read and nothing was built. The "
                    "configs mnistx saves never do this: the file was changed after the run."
                )
        else:
            _check_writes_stay_inside(value, where, run_dir, path)


def read_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's contents, its hyperparameters checked as data; one paragraph for a
    file that is not a readable mnistx checkpoint."""
    import torch

    from mnistx.config.legacy import upgrade_hparams

    if not ckpt.is_file():
        raise UserError(f"Checkpoint {ckpt} does not exist or is not a file.")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"Cannot read checkpoint {ckpt} ({first_line(e)}). It may be truncated or not a "
            "Lightning checkpoint; use another one from the run's checkpoints/ folder."
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state or "mnistx" not in state:
        raise UserError(
            f"{ckpt} is not an mnistx training checkpoint (no model state or mnistx state). "
            "Use the run's checkpoints/last.ckpt."
        )
    hparams = state.get("hyper_parameters")
    if not isinstance(hparams, dict) or not isinstance(hparams.get("model"), dict):
        raise UserError(f"{ckpt} has no model settings saved in it; it was not written by mnistx.")
    source = f"{ckpt} (its saved hyperparameters)"
    _check_resolvers(hparams, "hyper_parameters", ckpt)
    # A checkpoint of an earlier mnistx, read in today's shape (here only: every reader of a
    # checkpoint comes through this function).
    names = ("model", "loss", "scheduler", "augment")
    upgraded = upgrade_hparams(*(hparams.get(k) for k in names))
    for name, node in zip(names, upgraded, strict=True):
        check_node(node, f"hyper_parameters.{name}", source, section=name)
        if name in hparams:
            hparams[name] = node
    check_node(hparams.get("optimizer"), "hyper_parameters.optimizer", source)
    unknown = [k for k in hparams if k not in HPARAMS]
    if unknown:
        raise UserError(
            f"{source}: hyper_parameters.{unknown[0]} is not one mnistx saves, so the checkpoint "
            "was refused before anything was built."
        )
    return state


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """The run's metrics.json (None when it has none), or one paragraph when it is not the
    JSON object mnistx writes."""
    path = folder / METRICS
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UserError(
            f"Cannot read {path} ({e}): it is not the JSON record mnistx writes for a run (cut "
            "short, or edited). The run's checkpoints are still usable with ckpt=<file>."
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"Cannot read {path}: it holds a JSON {type(data).__name__}, not the record (an "
            "object with status, test/acc, ...) mnistx writes for a run."
        )
    return data


def best_checkpoint(folder: Path) -> Path | None:
    """The checkpoint a run's record names as its best (metrics.json's `best_checkpoint`, a
    file inside its checkpoints/), else best.ckpt, else last.ckpt; None when it has none."""
    metrics = read_metrics(folder) or {}
    named = metrics.get("best_checkpoint")
    if isinstance(named, str) and named:
        candidate = folder / CHECKPOINTS / Path(named).name
        if candidate.is_file():
            return candidate
    found = [p for p in (folder / BEST, folder / LAST) if p.is_file()]
    return found[0] if found else None


def locate(run: str | None, ckpt: str | None) -> tuple[Path, Path]:
    """The run folder (holding .hydra/config.yaml) and the checkpoint to evaluate or predict
    with: `ckpt=` itself (a checkpoint of that run), or the run's best checkpoint."""
    if ckpt:
        ckpt_path = Path(os.path.expanduser(ckpt))
        if not ckpt_path.is_file():
            raise UserError(f"Checkpoint {ckpt_path} does not exist.")
        folder = Path(os.path.expanduser(run)) if run else ckpt_path.resolve().parent.parent
        read_checkpoint(ckpt_path)  # a checkpoint that cannot be read is said first
        if run and ckpt_path.resolve().parent.parent != folder.resolve():
            raise UserError(
                f"ckpt={ckpt_path} is not one of run={folder}'s checkpoints, and a run's "
                "evaluation is filed under that run. Pass the checkpoint alone (ckpt=<file>: "
                "its own run is the folder above checkpoints/) or one of the run's own files."
            )
    else:
        folder = Path(os.path.expanduser(str(run)))
        if not folder.is_dir():
            raise UserError(f"Run folder {folder} does not exist. Runs are under outputs/.")
        jobs = sweep_jobs(folder)
        if jobs:
            shown = "\n".join(f"  run={j}" for j in jobs[:10])
            more = f"\n  ... and {len(jobs) - 10} more" if len(jobs) > 10 else ""
            raise UserError(
                f"{folder} is a sweep folder with {len(jobs)} jobs, not one run. Pass one job's "
                f"folder:\n{shown}{more}\n(python -m mnistx.compare {folder} compares them.)"
            )
        if (folder / SWEEP_CONFIG).is_file() and not (folder / CONFIG).is_file():
            raise UserError(
                f"{folder} is a sweep folder with no finished job, not one run. Pass a run's "
                "folder, e.g. run=outputs/2026-11-23/14-02-11."
            )
        found = best_checkpoint(folder)
        if found is None:
            raise UserError(
                f"No checkpoint in {folder / CHECKPOINTS} (expected best.ckpt or "
                "last.ckpt). Was the run trained with checkpointing on? Or pass ckpt=<file>."
            )
        ckpt_path = found
        read_checkpoint(ckpt_path)
    if not (folder / CONFIG).is_file():
        raise UserError(
            f"{folder} holds no .hydra/config.yaml, so the run's own data and model settings "
            "are unknown. Pass run=<the run folder the checkpoint came from>."
        )
    return folder, ckpt_path
