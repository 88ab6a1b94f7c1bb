"""A run's labels for the trackers: its name, swept values, `tags` and `notes`, the tracked
runs' ids an earlier process of it recorded (trackers.json), and the order of its
hyperparameters in TensorBoard's HParams tab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mnistx.runs.layout import TRACKERS
from mnistx.runs.records import write_json

# The knobs a user compares most: first in TensorBoard's HParams tab, after the swept keys.
MAIN_KNOBS = (
    "model",
    "optimizer",
    "optimizer/lr",
    "model/activation",
    "loss",
    "data/batch_size",
)


class Labels:
    """What a tracked run is called and tagged with (the same in every tracker). A plain
    class, not a dataclass: Hydra's instantiate would turn a dataclass argument into a
    config node."""

    def __init__(
        self,
        output_dir: str,
        run_name: str,
        tags: list[str] | None = None,
        notes: str | None = None,
        swept: dict[str, str] | None = None,  # in a sweep: this job's values
        group: str | None = None,  # in a sweep: the sweep folder's name
        is_rank_zero: bool = True,
    ) -> None:
        self.output_dir, self.run_name = output_dir, run_name
        self.tags, self.notes = list(tags or []), notes
        self.swept, self.group, self.is_rank_zero = dict(swept or {}), group, is_rank_zero

    def remembered(self, tracker: str) -> dict[str, Any]:
        """What an earlier process of this run recorded for `tracker` (its run id)."""
        try:
            data = json.loads((Path(self.output_dir) / TRACKERS).read_text())
        except (OSError, ValueError):
            return {}
        found = data.get(tracker) if isinstance(data, dict) else None
        return found if isinstance(found, dict) else {}

    def remember(self, tracker: str, record: dict[str, Any]) -> None:
        if not self.is_rank_zero:
            return
        path = Path(self.output_dir) / TRACKERS
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[tracker] = record
        write_json(path, data)


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def labels_record(cfg: Any) -> dict[str, Any]:
    """`tags` and `notes` as metrics.json records them."""
    return {"tags": _tags(cfg.get("tags")), "notes": cfg.get("notes")}


def run_labels(cfg: Any, run: Any) -> Labels:
    """The labels of the run `cfg` describes (`run`: its records, with its swept values)."""
    from mnistx.runs.env import is_rank_zero
    from mnistx.runs.layout import sweep_of

    out = Path(cfg.output_dir)
    sweep = sweep_of(out)
    return Labels(
        output_dir=str(out),
        run_name=out.name,
        tags=_tags(cfg.get("tags")),
        notes=cfg.get("notes"),
        swept=dict(run.swept),
        group=f"{sweep.parent.name}/{sweep.name}" if sweep is not None else None,
        is_rank_zero=is_rank_zero(),
    )


def hparams_order(params: dict[str, Any], swept: dict[str, str]) -> dict[str, Any]:
    """The swept keys first, then the main knobs, then everything else (constants last)."""
    first = [k.replace(".", "/") for k in swept]
    first += [k for k in MAIN_KNOBS if k not in first]
    ordered = {k: params[k] for k in first if k in params}
    ordered.update((k, v) for k, v in params.items() if k not in ordered)
    return ordered
