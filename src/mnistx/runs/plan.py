"""What a train command line will do, decided before Hydra writes anything (preflight)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Action = Literal["new", "join", "resume", "extend", "finish_sweep", "nothing"]


@dataclass(frozen=True)
class Plan:
    """What a command line will do, decided before Hydra writes anything.

    new: a new run or sweep; join: a DDP rank joining its first process's run; resume /
    extend: an unfinished run continued, a finished one trained longer, in its folder;
    finish_sweep: a sweep run again into its folder (`args`: the command line to run, for
    `resume=<sweep>`); nothing: nothing to do, and `message` says why (the command exits 0).
    """

    action: Action
    folder: Path | None = None
    args: list[str] | None = field(default=None)
    message: str = ""
