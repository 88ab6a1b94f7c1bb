"""Minibatches sliced from tensors already in memory: no Dataset, no workers, no PIL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class TensorBatches:
    """Iterate (x, y) batches of in-memory tensors, reshuffled each epoch and sharded by rank.

    The order of epoch `e` depends only on (seed, e), read from `epoch()` at the start of each
    pass, so a resumed run sees exactly the batches an uninterrupted one would. With
    `world_size > 1` each rank gets a disjoint slice of the same permutation (padded by
    wrapping around, like torch's DistributedSampler), so together the ranks see every sample.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.rank, self.world_size = rank, world_size

    def _per_rank(self) -> int:
        return -(-len(self.x) // self.world_size)

    def __len__(self) -> int:
        return -(-self._per_rank() // self.batch_size)

    def indices(self) -> torch.Tensor | None:
        """This rank's sample order for the current epoch (None: all samples, in order)."""
        n = len(self.x)
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch()) % 2**63)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            total = self._per_rank() * self.world_size
            order = torch.cat([order, order[: total - n]])[self.rank :: self.world_size]
        return order.to(self.x.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, bs = self.indices(), self.batch_size
        if order is None:  # contiguous slices are views: no copy at all
            for i in range(0, len(self.x), bs):
                yield self.x[i : i + bs], self.y[i : i + bs]
            return
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)
