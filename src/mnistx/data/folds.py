"""k-fold cross-validation of the official training set (cv.folds, cv.fold).

The folds are stratified and seeded: each class's images are shuffled by the run's seed and
dealt out to the folds in turn, one class after another, so every fold holds each class in
the proportion the whole set does (within one image) and the folds differ in size by at most
one image. Fold `cv.fold` validates, the others train; the official test set is untouched.
Every job of a sweep with the same seed sees the same folds, so settings are compared on the
same splits.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from mnistx.config.kinds import check_settings_nodes, in_range
from mnistx.errors import UserError


def configured_folds(cfg: DictConfig) -> int | None:
    """The checked cv.folds of a composed config: the number of folds a sweep or an Optuna
    trial runs, or None without cross-validation."""
    check_settings_nodes(cfg)
    cv = cfg.get("cv")
    folds = None if cv is None else cv.get("folds")
    if folds is not None:
        check_folds(folds, 0)
    return folds


def check_folds(folds: Any, fold: Any) -> None:
    """cv.folds and cv.fold, with one line per mistake."""
    if folds is None:
        if fold is not None:
            raise UserError(
                f"cv.fold={fold} picks one fold of a cross-validation, but cv.folds is not set. "
                "Example: cv.folds=5 cv.fold=0 (or -m cv.folds=5 for every fold)."
            )
        return
    in_range(folds, "cv.folds", 2, None, "an integer >= 2 (the number of folds)", "5", True)
    if fold is None:
        raise UserError(
            f"cv.folds={folds} trains one job per fold: run it as a sweep, "
            f"python -m mnistx.train -m cv.folds={folds} (a folder per fold, and their mean "
            f"and 95% interval in the report), or train one fold with cv.fold=0."
        )
    what = f"a fold number from 0 to {folds - 1} (cv.folds={folds})"
    in_range(fold, "cv.fold", 0, folds, what, "0", integer=True)


def fold_numbers(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """Each image's fold: per class, shuffled by `seed`, dealt out in turn (a few ms for
    MNIST's 60k labels)."""
    generator = torch.Generator().manual_seed(seed)
    order = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().flatten()
        order.append(members[torch.randperm(len(members), generator=generator)])
    fold_of = torch.empty(len(labels), dtype=torch.long)
    fold_of[torch.cat(order)] = torch.arange(len(labels)) % folds
    return fold_of


def cv_split(
    labels: torch.Tensor, folds: int, fold: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation rows (fold `fold`) and the training rows (the other folds)."""
    fold_of = fold_numbers(labels, folds, seed)
    return (fold_of == fold).nonzero().flatten(), (fold_of != fold).nonzero().flatten()
