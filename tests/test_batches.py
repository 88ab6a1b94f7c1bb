"""In-memory batches: every sample once per epoch, seeded order, disjoint shards per rank."""

from __future__ import annotations

import torch

from mnistx.data.batches import Split, TensorBatches


def _seen(batches: TensorBatches) -> list[int]:
    return [int(v) for _, y in batches for v in y]


def test_every_sample_once_per_epoch_and_order_changes():
    x, y = torch.arange(103).float().unsqueeze(1), torch.arange(103)
    epoch = [0]
    b = TensorBatches(Split(x, y), 10, shuffle=True, seed=3, epoch=lambda: epoch[0])
    assert len(b) == 11
    first = _seen(b)
    assert sorted(first) == list(range(103)) and first != list(range(103))
    assert _seen(b) == first  # same epoch, same order
    epoch[0] = 1
    second = _seen(b)
    assert sorted(second) == list(range(103)) and second != first
    other_seed = TensorBatches(Split(x, y), 10, shuffle=True, seed=4, epoch=lambda: 0)
    assert _seen(other_seed) != first


def test_x_and_y_stay_paired():
    x = torch.arange(50).float().unsqueeze(1) * 2
    b = TensorBatches(Split(x, torch.arange(50)), 7, shuffle=True, seed=0)
    for xb, yb in b:
        assert torch.equal(xb[:, 0], yb.float() * 2)


def test_unshuffled_is_in_order():
    x, y = torch.zeros(25, 1), torch.arange(25)
    assert _seen(TensorBatches(Split(x, y), 10)) == list(range(25))


def test_ranks_get_disjoint_shards_covering_everything():
    x, y = torch.zeros(100, 1), torch.arange(100)
    shards = [
        _seen(TensorBatches(Split(x, y), 8, shuffle=True, seed=1, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == 50
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(100))


def test_a_split_of_rows_serves_only_its_rows_in_the_same_order_as_a_copy():
    """A split holds row numbers into the decoded set: its batches are those of a copied
    split, for shuffled, ordered and sharded loaders alike."""
    x, y = torch.arange(60).float().unsqueeze(1), torch.arange(60)
    rows = torch.randperm(60, generator=torch.Generator().manual_seed(0))[:45]
    copy = Split(x[rows], y[rows])
    for kw in ({}, {"shuffle": True, "seed": 5}, {"shuffle": True, "rank": 1, "world_size": 2}):
        mine, theirs = TensorBatches(Split(x, y, rows), 8, **kw), TensorBatches(copy, 8, **kw)
        assert len(mine) == len(theirs)
        for (xa, ya), (xb, yb) in zip(mine, theirs, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert Split(x, y, rows).rows(slice(0, 3))[1].tolist() == rows[:3].tolist()
