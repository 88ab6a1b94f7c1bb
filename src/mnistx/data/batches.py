"""Minibatches sliced from tensors already in memory: no Dataset, no workers, no PIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class Split:
    """Rows `index` of decoded tensors `x`, `y` (all of them when `index` is None).

    A train/val split is a seeded choice of rows of the one decoded training set, so it holds
    only the row numbers: no ~190 MB copy per split, which each seed of a sweep would make.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None):
        self.x, self.y, self.index = x, y, index

    def __len__(self) -> int:
        return len(self.x) if self.index is None else len(self.index)

    def rows(self, which: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Some of the split's rows (positions in the split), e.g. `slice(0, 32)`."""
        if self.index is None:
            return self.x[which], self.y[which]
        idx = self.index[which]
        return self.x[idx], self.y[idx]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as tensors: the decoded ones themselves, or a copy of its rows."""
        return self.rows(slice(None))

    def to(self, device: torch.device, moved: dict[int, torch.Tensor]) -> Split:
        """On `device`; `moved` maps tensors already moved, so splits of one decoded set share
        one copy there too."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if id(t) not in moved:
                moved[id(t)] = t.to(device)
            return moved[id(t)]

        index = None if self.index is None else move(self.index)
        return Split(move(self.x), move(self.y), index)


class TensorBatches:
    """Iterate (x, y) batches of in-memory tensors, reshuffled each epoch and sharded by rank.

    The order of epoch `e` depends only on (seed, e), read from `epoch()` at the start of each
    pass, so a resumed run sees exactly the batches an uninterrupted one would. With
    `world_size > 1` each rank gets a disjoint slice of the same permutation (padded by
    wrapping around, like torch's DistributedSampler), so together the ranks see every sample.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.x, self.y, self.index = split.x, split.y, split.index
        self.size = len(split)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.rank, self.world_size = rank, world_size

    def _per_rank(self) -> int:
        return -(-self.size // self.world_size)

    def __len__(self) -> int:
        return -(-self._per_rank() // self.batch_size)

    def indices(self) -> torch.Tensor | None:
        """This rank's rows of `x` for the current epoch, in order (None: all rows of `x`)."""
        n = self.size
        if not self.shuffle and self.world_size == 1:
            return self.index
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch()) % 2**63)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            total = self._per_rank() * self.world_size
            order = torch.cat([order, order[: total - n]])[self.rank :: self.world_size]
        order = order.to(self.x.device)
        return order if self.index is None else self.index[order]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, bs = self.indices(), self.batch_size
        if order is None:  # contiguous slices of all rows are views: no copy at all
            for i in range(0, len(self.x), bs):
                yield self.x[i : i + bs], self.y[i : i + bs]
            return
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)
