"""The runs the app serves: found from what `run=` names, loaded once, asked together.

Each model sees the same 28x28 input as `python -m mnistx.predict` gives it (the run's own
normalisation, mnistx.data.digit_image's MNIST-style crop and centring), so the page and the
command line always agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from mnistx.errors import UserError
from mnistx.runs.layout import CONFIG, METRICS, sweep_jobs
from mnistx.runs.saved import locate, run_config

MNIST = "torchvision.datasets.MNIST"


@dataclass
class ServedModel:
    """One run's network with what the page shows about it."""

    label: str  # its swept values (model.activation=tanh) or its folder's name
    model: str  # the network's class (MLP, CNN, ...)
    run: Path
    net: nn.Module
    mean: float
    std: float
    classes: list[str]
    test_acc: float | None

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": self.model,
            "run": str(self.run),
            "test_acc": self.test_acc,
            "classes": self.classes,
        }


def _metrics(run: Path) -> dict[str, Any]:
    try:
        record = json.loads((run / METRICS).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def find_runs(specs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The run folders `run=` names (a sweep folder: its finished jobs), and a line for each
    job of a sweep that is left out (not finished, or no checkpoint)."""
    runs: list[Path] = []
    skipped: list[str] = []
    for spec in specs:
        folder = Path(os.path.expanduser(spec))
        jobs = sweep_jobs(folder)
        if not jobs:
            runs.append(folder)  # one run; load_models says what is wrong with it, if anything
            continue
        finished = []
        for job in jobs:
            status = _metrics(job).get("status", "not finished")
            if status != "ok":
                skipped.append(f"{job.name}: {status}")
            elif not any((job / "checkpoints").glob("*.ckpt")):
                skipped.append(f"{job.name}: no checkpoint")
            else:
                finished.append(job)
        if not finished:
            raise UserError(
                f"run={spec} is a sweep folder, but none of its {len(jobs)} jobs finished with a "
                "checkpoint. Serve a finished run, or let the sweep finish first (python -m "
                f"mnistx.compare {spec} shows where each job stands)."
            )
        runs += finished
    unique: dict[Path, Path] = {}  # the same run named twice is served once
    for run in runs:
        unique.setdefault(run.resolve(), run)
    return list(unique.values()), skipped


def _labels(runs: Sequence[Path]) -> list[str]:
    """Swept values for sweep jobs, else the folder's last two parts; made unique by more of
    the path where two would read the same."""
    labels = []
    for run in runs:
        swept = _metrics(run).get("swept") or {}
        if isinstance(swept, dict) and swept:
            labels.append(", ".join(f"{k}={v}" for k, v in swept.items()))
        else:
            labels.append("/".join(run.parts[-2:]))
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} ({'/'.join(runs[i].parts[-3:-1])})"
    return labels


def class_names(dataset: str) -> list[str]:
    """The classes' names as the page shows them: digits for MNIST, else the dataset's own."""
    if dataset == MNIST:
        return [str(i) for i in range(10)]
    from mnistx.config.targets import RefusedConfig, dataset_class

    try:
        names = dataset_class(dataset).classes
    except (RefusedConfig, AttributeError):
        return [str(i) for i in range(10)]
    return [str(n) for n in names]


def load_models(specs: Sequence[str]) -> tuple[list[ServedModel], list[str]]:
    """Every model to serve (in the order given), and the lines about left-out sweep jobs."""
    from mnistx.inspection.inference import load_network

    runs, skipped = find_runs(specs)
    models = []
    for run, label in zip(runs, _labels(runs), strict=True):
        if run.is_dir() and not (run / CONFIG).exists() and not (run / METRICS).exists():
            raise UserError(
                f"run={run} is not a run folder (it has no .hydra/config.yaml or metrics.json) "
                "and no sweep jobs. Pass a run's folder, e.g. run=outputs/2026-11-23/14-02-11, "
                "or a sweep's, e.g. run=outputs/multirun/2026-11-23/14-02-11."
            )
        folder, ckpt = locate(str(run), None)
        cfg = run_config(folder)
        data = cfg.data
        test_acc = _metrics(folder).get("test/acc")
        models.append(
            ServedModel(
                label=label,
                model=str(cfg.model.get("_target_", "?")).rpartition(".")[2],
                run=folder,
                net=load_network(ckpt),
                mean=float(data.mean),
                std=float(data.std),
                classes=class_names(str(data.get("dataset", MNIST))),
                test_acc=float(test_acc) if isinstance(test_acc, (int, float)) else None,
            )
        )
    return models, skipped


def ask(models: Sequence[ServedModel], pixels: np.ndarray) -> list[dict[str, Any]]:
    """Each model's answer for one 28x28 input in [0, 1]: the class and its top 3."""
    from mnistx.data.digit_image import normalised
    from mnistx.inspection.inference import predict_probs

    answers = []
    for model in models:
        probs = predict_probs(model.net, normalised(pixels, model.mean, model.std)[None])[0]
        top = probs.topk(3)
        answers.append(
            {
                "label": model.label,
                "run": str(model.run),
                "prediction": model.classes[int(top.indices[0])],
                "class": int(top.indices[0]),
                "top3": [
                    {
                        "class": int(c),
                        "name": model.classes[int(c)],
                        "probability": round(float(p), 5),
                    }
                    for p, c in zip(top.values, top.indices, strict=True)
                ],
                "probabilities": [round(float(p), 5) for p in probs],
            }
        )
    return answers
