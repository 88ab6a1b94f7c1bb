"""In-memory batches: every sample once per epoch, seeded order, disjoint shards per rank."""

from __future__ import annotations

import torch

from mnistx.loader import TensorBatches


def _seen(batches: TensorBatches) -> list[int]:
    return [int(v) for _, y in batches for v in y]


def test_every_sample_once_per_epoch_and_order_changes():
    x, y = torch.arange(103).float().unsqueeze(1), torch.arange(103)
    epoch = [0]
    b = TensorBatches(x, y, 10, shuffle=True, seed=3, epoch=lambda: epoch[0])
    assert len(b) == 11
    first = _seen(b)
    assert sorted(first) == list(range(103)) and first != list(range(103))
    assert _seen(b) == first  # same epoch, same order
    epoch[0] = 1
    second = _seen(b)
    assert sorted(second) == list(range(103)) and second != first
    other_seed = TensorBatches(x, y, 10, shuffle=True, seed=4, epoch=lambda: 0)
    assert _seen(other_seed) != first


def test_x_and_y_stay_paired():
    x = torch.arange(50).float().unsqueeze(1) * 2
    b = TensorBatches(x, torch.arange(50), 7, shuffle=True, seed=0)
    for xb, yb in b:
        assert torch.equal(xb[:, 0], yb.float() * 2)


def test_unshuffled_is_in_order():
    x, y = torch.zeros(25, 1), torch.arange(25)
    assert _seen(TensorBatches(x, y, 10)) == list(range(25))


def test_ranks_get_disjoint_shards_covering_everything():
    x, y = torch.zeros(100, 1), torch.arange(100)
    shards = [
        _seen(TensorBatches(x, y, 8, shuffle=True, seed=1, rank=r, world_size=2)) for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == 50
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(100))
