"""The one guard for every write: whether a command may write a path a user named.

A run folder (one holding metrics.json, a checkpoint or .hydra/config.yaml) and a sweep folder
(one holding multirun.yaml) belong to the run or sweep that made them; everything under them
is theirs. A command writes only

- into a folder it owns: the run it trains, the `eval/<checkpoint>/` folder of the run it
  evaluates, the report of the one sweep it compares (mnistx's own outputs for that run or
  sweep, which it writes again when asked again), or a folder it created for itself; or
- at a new path outside every run and sweep folder, naming no existing file (`--overwrite`
  lets it replace a file of its own there, never one inside a run or sweep).

Every refusal is one paragraph and changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistx.errors import UserError
from mnistx.runs.layout import SWEEP_CONFIG, holds_run


def expand(path: str | Path, option: str) -> Path:
    """A path the user typed; an empty one is a mistake, not the current folder."""
    if not str(path).strip():
        raise UserError(
            f"{option} is empty; name a path, e.g. {option} results/ (an empty value would "
            "write into the current folder)."
        )
    return Path(os.path.expanduser(str(path)))


def owner_of(path: Path) -> Path | None:
    """The run or sweep folder that `path` is, or lies inside, or None."""
    current = Path(os.path.abspath(path))
    for folder in (current, *current.parents):
        if folder.is_dir() and (holds_run(folder) or (folder / SWEEP_CONFIG).is_file()):
            return folder
    return None


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def check_file(path: Path, option: str, overwrite: bool = False) -> None:
    """A file a command writes where the user says (predict --show): new, or `overwrite`
    of a file outside every run and sweep."""
    owner = owner_of(path.parent if not path.exists() else path)
    if owner is not None:
        raise UserError(
            f"{option} {path} is inside {owner}, a {_kind(owner)} folder, and a command never "
            f"writes into another run's or sweep's files. Name a file outside it, e.g. "
            f"{option} sheet.png"
        )
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; name a file, e.g. {option} sheet.png")
    if path.exists() and not overwrite:
        raise UserError(
            f"{option} {path} exists already, and a command does not replace a file unless "
            f"told to. Name a new file, or add --overwrite to replace it."
        )


def check_folder(
    folder: Path,
    option: str,
    writes: tuple[str, ...],
    own: Path | None = None,
    overwrite: bool = False,
) -> None:
    """A folder a command writes `writes` into. `own`: the run or sweep folder whose own
    outputs these are (the command may write there and under it). Otherwise the folder lies
    outside every run and sweep, and holds none of `writes` (names or glob patterns) unless
    `overwrite`."""
    if own is not None and (
        _same(folder, own) or Path(os.path.abspath(folder)).is_relative_to(os.path.abspath(own))
    ):
        inner = owner_of(folder)
        if inner is None or _same(inner, own):
            return
        raise UserError(
            f"{option} {folder} is inside {inner}, another {_kind(inner)} folder within "
            f"{own}, and a command never writes into another run's files. Name a new folder."
        )
    if folder.exists() and not folder.is_dir():
        raise UserError(
            f"{option} {folder} is a file; {option} names a folder for {', '.join(writes)}. "
            f"Name a new folder, e.g. {option} results"
        )
    owner = owner_of(folder)
    if owner is not None:
        raise UserError(
            f"{option} {folder} is inside {owner}, a {_kind(owner)} folder, and a command "
            "never writes into another run's or sweep's files. Name a new folder outside it, "
            f"e.g. {option} results"
        )
    there = [p.name for pattern in writes for p in sorted(folder.glob(pattern))]
    if there and not overwrite:
        raise UserError(
            f"{option} {folder} holds {', '.join(there)} already, which this command would "
            "replace. Name a new folder, or add --overwrite to replace them."
        )


def make_folder(folder: Path, option: str) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"Cannot create {folder} ({e.strerror}). Name a folder you can write to with "
            f"{option} <folder>."
        ) from None
    return folder


def new_folder(parent: Path, stem: str) -> Path:
    """A fresh folder under `parent` (stem, stem-1, ...), claimed with an atomic mkdir: how
    every new folder is made (run, sweep, job, report)."""
    parent.mkdir(parents=True, exist_ok=True)
    candidate, n = parent / stem, 0
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = parent / f"{stem}-{n}"


def _kind(folder: Path) -> str:
    return "sweep" if (folder / SWEEP_CONFIG).is_file() and not holds_run(folder) else "run"
