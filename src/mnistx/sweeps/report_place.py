"""Where a comparison report may go (mnistx.runs.guard decides for every write): a sweep's
own folder for its own report, a new folder of its own for several sweeps or a single run,
or --out, a new folder outside every run and sweep.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from mnistx.errors import UserError
from mnistx.runs.guard import check_folder, expand, make_folder, new_folder, owner_of
from mnistx.runs.layout import holds_run

REPORT_FILES = (
    *("comparison.md", "comparison.csv", "val_acc_curves.png", "acc_vs_*.png"),
    *("importance.csv", "importance.png", "parallel_coordinates.png"),
)
# Where a report of several sweeps (or of a single run) goes: a new folder of its own.
COMPARISONS = Path("outputs") / "comparisons"


def check_tag(tag: str) -> None:
    if not re.fullmatch(r"[\w+@=-][\w.+@=-]*", tag):
        raise UserError(
            f"--tag {tag!r} is not a tag: tags are names such as baseline or bn-v2 (letters, "
            "digits and . _ - + @ =, not starting with a dot), as tags=[...] gave them."
        )


def report_folder(
    dirs: Sequence[str | Path], out: str | Path | None, tag: str | None, overwrite: bool
) -> tuple[Path, str | None]:
    """Where the report goes, and a line saying so when it is a new folder: `--out` (a new
    folder outside every run and sweep); the one sweep's own folder (or its `tag-<tag>/`), its
    own report written again; else a new folder under outputs/comparisons/."""
    if out is not None:
        folder = expand(out, "--out")
        check_folder(folder, "--out", REPORT_FILES, overwrite=overwrite)
        return make_folder(folder, "--out"), None
    first = Path(dirs[0])
    if (
        len(dirs) == 1
        and not holds_run(first)
        and owner_of(first) in (None, Path(os.path.abspath(first)))
    ):
        folder = first / f"tag-{tag}" if tag is not None else first
        check_folder(folder, "The report folder", REPORT_FILES, own=first)
        return make_folder(folder, "--out"), None
    folder = new_folder(COMPARISONS, time.strftime("%Y-%m-%d_%H-%M-%S"))
    what = "a single run" if len(dirs) == 1 else f"{len(dirs)} folders"
    return folder, (
        f"The report of {what} goes to a new folder of its own, {folder}, so no run's or "
        "sweep's files change (--out <new folder> names another)."
    )
