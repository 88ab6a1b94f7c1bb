"""MNIST-family data as a LightningDataModule: decoded once, normalised once, sliced per batch."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from mnistx.config.checks import check_val_interval
from mnistx.config.kinds import in_range
from mnistx.config.targets import dataset_class
from mnistx.data.batches import Split, TensorBatches
from mnistx.data.files import check_idx, ensure_raw_files
from mnistx.data.folds import check_folds, cv_split
from mnistx.errors import UserError

# What _load decoded last in this process (the files it came from, the tensors), and the
# train/val row numbers _split drew from them per (seed, val_size).
_decoded: dict[Any, Any] = {}


log = logging.getLogger("mnistx")
# Below this many validation images, val/acc (and so the best checkpoint) is mostly noise.
MIN_VAL_SIZE = 100


def _check_sizes(batch_size: Any, eval_batch_size: Any, val_size: Any) -> None:
    for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(
                f"data.{key}={value} must be a positive integer. Example: data.{key}=128"
            )
    if not isinstance(val_size, int) or isinstance(val_size, bool) or val_size < 1:
        raise UserError(
            f"data.val_size={val_size} must be a positive integer: the number of official "
            "training images held out for validation. Example: data.val_size=5000"
        )
    if val_size < MIN_VAL_SIZE:
        log.warning(
            "data.val_size=%d: with so few validation images val/acc moves in steps of "
            "%.1f%%, so val/acc_best and the best checkpoint are mostly noise. %d or more "
            "(e.g. the default 5000) give a usable validation score.",
            val_size,
            100 / val_size,
            MIN_VAL_SIZE,
        )


def _check_format(std: Any, image_size: Any, channels: Any, num_classes: Any) -> None:
    in_range(
        std, "data.std", 1e-300, None, "a positive number (pixels are divided by it)", "0.3081"
    )
    for key, value, low, example in (
        ("image_size", image_size, 1, "28"),
        ("channels", channels, 1, "1"),
        ("num_classes", num_classes, 2, "10"),
    ):
        what = f"an integer >= {low}, as the dataset's files have it"
        in_range(value, f"data.{key}", low, None, what, example, integer=True)


class MNISTDataModule(L.LightningDataModule):
    """Official train set split into train/val by a seeded permutation; official test set as is.

    The whole dataset is held as one normalised float tensor per official set (188 MB for
    MNIST's 60k training images; the train/val split is row numbers into it) and, when the
    trainer runs on a GPU, moved there once, so an epoch is just index-select and slicing: no
    per-sample transforms, no worker processes.
    """

    def __init__(
        self,
        dataset: str = "torchvision.datasets.MNIST",
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        mean: float = 0.1307,
        std: float = 0.3081,
        seed: int = 42,
        channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        folds: int | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(batch_size, eval_batch_size, val_size)
        check_folds(folds, fold)
        _check_format(std, image_size, channels, num_classes)
        self.dataset_cls: Any = dataset_class(dataset)
        self.data_dir = os.path.expanduser(str(data_dir))
        self.num_classes, self.channels, self.image_size = num_classes, channels, image_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size = val_size
        self.mean, self.std = mean, std
        self.seed = seed
        self.folds, self.fold = folds, fold
        self.classes: list[str] = []
        self.splits: dict[str, Split] = {}

    def prepare_data(self) -> None:
        """All four files present, whole and consistent (called before training starts), and
        the shape facts the models are built from (data.image_size, data.channels) true."""
        raw = ensure_raw_files(self.dataset_cls, self.data_dir, self.num_classes)
        images = next(
            raw / gz.removesuffix(".gz")
            for gz, _ in self.dataset_cls.resources
            if gz.startswith("train-images")
        )
        _, height, width = check_idx(images)
        if (self.image_size, self.image_size) != (height, width) or self.channels != 1:
            raise UserError(
                f"data.image_size={self.image_size} data.channels={self.channels}, but {images} "
                f"holds {height}x{width} single-channel images, which the models are built for. "
                f"Set data.image_size={height} data.channels=1 (or leave both at their defaults)."
            )

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The official train or test set, decoded and normalised: once per process for the
        same files and constants, so the jobs of a multirun (one process with Hydra's basic
        launcher) share one decode and one copy. Callers must not change it in place."""
        raw = Path(self.data_dir) / self.dataset_cls.__name__ / "raw"
        files = tuple(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(raw.glob("*-ubyte"))
        )
        key = (self.dataset_cls, os.path.realpath(self.data_dir), self.mean, self.std, files)
        if _decoded.get("key") != key:
            _decoded.clear()
            _decoded["key"] = key
        if train not in _decoded:
            ds = self.dataset_cls(self.data_dir, train=train, download=False)
            x = ds.data.unsqueeze(1).float().div_(255).sub_(self.mean).div_(self.std)
            _decoded[train] = (x, ds.targets.long(), list(ds.classes))
        x, y, self.classes = _decoded[train]
        return x, y

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        # Again here (a few header reads): setup() may be called without prepare_data(), e.g.
        # from a notebook, and a bad file must still give the clear message, not torchvision's.
        ensure_raw_files(self.dataset_cls, self.data_dir, self.num_classes)
        x, y = self._load(train=True)
        n = len(x)
        if self.folds is not None:
            val_idx, train_idx = cv_split(y, self.folds, self.fold or 0, self.seed)
        elif not 0 < self.val_size < n:
            raise UserError(
                f"data.val_size={self.val_size} is out of range: the validation split is carved "
                f"out of the {n} official training images, so it must be between 1 and {n - 1}. "
                f"Example: data.val_size={max(1, n // 12)}"
            )
        else:
            val_idx, train_idx = self._split(n)
        if self.batch_size > len(train_idx):
            raise UserError(
                f"data.batch_size={self.batch_size} is larger than the training split "
                f"({len(train_idx)} images). Use a smaller data.batch_size or data.val_size."
            )
        self.splits = {
            "train": Split(x, y, train_idx),
            "val": Split(x, y, val_idx),
            "test": Split(*self._load(train=False)),
        }
        if self.trainer is not None:
            check_val_interval(self.trainer.val_check_interval, self._train_batches())
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        if device is not None and device.type != "cpu":
            moved: dict[int, torch.Tensor] = {}
            self.splits = {k: s.to(device, moved) for k, s in self.splits.items()}

    def _split(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The seeded validation and training rows of the decoded training set."""
        key = ("split", self.seed, self.val_size)
        if key not in _decoded:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
            _decoded[key] = perm[: self.val_size], perm[self.val_size :]
        return _decoded[key]

    def _train_batches(self) -> int:
        """Training batches per epoch (on this rank), as Lightning counts them."""
        assert self.trainer is not None
        n, limit = len(self.train_dataloader()), self.trainer.limit_train_batches
        return int(n * limit) if isinstance(limit, float) else min(n, limit)

    def _batches(self, split: str, batch_size: int, shuffle: bool) -> TensorBatches:
        trainer = self.trainer
        return TensorBatches(
            self.splits[split],
            batch_size,
            shuffle=shuffle,
            seed=self.seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> TensorBatches:
        # trainer.overfit_batches (debug=overfit) trains on the same first batches every
        # epoch; Lightning turns off shuffling only for torch DataLoaders.
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0  # type: ignore[attr-defined]
        return self._batches("train", self.batch_size, shuffle=not overfit)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.eval_batch_size, shuffle=False)
