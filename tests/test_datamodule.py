"""The data module: seeded split of the official train set, untouched test set, clear errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from helpers import SHARED_MNIST, TINY_TEST, TINY_TRAIN, make_tiny_dataset, tiny_images

from mnistx.data.datamodule import MNISTDataModule
from mnistx.errors import UserError


def _dm(data_dir, **kw) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(data_dir), val_size=100, batch_size=32, **kw)
    dm.prepare_data()
    dm.setup()
    return dm


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_split_is_seeded_disjoint_and_from_train_set(tiny_data):
    a, b, c = _dm(tiny_data, seed=0), _dm(tiny_data, seed=0), _dm(tiny_data, seed=1)
    assert len(a.splits["train"]) == TINY_TRAIN - 100 and len(a.splits["val"]) == 100
    assert torch.equal(a.splits["val"].tensors()[0], b.splits["val"].tensors()[0])
    assert not torch.equal(a.splits["val"].tensors()[0], c.splits["val"].tensors()[0])
    assert not set(a.splits["val"].index.tolist()) & set(a.splits["train"].index.tolist())
    # train + val together are exactly the official training images
    images, _ = tiny_images(TINY_TRAIN, 0)
    expected = (torch.from_numpy(images).float() / 255 - a.mean) / a.std
    pooled = torch.cat([a.splits["train"].tensors()[0], a.splits["val"].tensors()[0]])[:, 0]
    key = lambda t: sorted(map(lambda r: r.sum().item(), t))  # noqa: E731
    assert key(pooled) == pytest.approx(key(expected), rel=1e-5)


def test_test_split_is_the_official_test_set_normalized_once(tiny_data):
    dm = _dm(tiny_data)
    images, labels = tiny_images(TINY_TEST, 1)
    x, y = dm.splits["test"].tensors()
    assert torch.equal(y, torch.from_numpy(labels).long())
    expected = (torch.from_numpy(images).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(x[:, 0], expected, atol=1e-6)
    assert x.dtype == torch.float32 and x.shape == (TINY_TEST, 1, 28, 28)


def test_loaders_serve_batches(tiny_data):
    dm = _dm(tiny_data)
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (32, 1, 28, 28) and yb.shape == (32,)
    assert sum(len(y) for _, y in dm.val_dataloader()) == 100
    assert sum(len(y) for _, y in dm.test_dataloader()) == TINY_TEST


@pytest.mark.parametrize("val_size", [0, TINY_TRAIN])
def test_val_size_out_of_range(tiny_data, val_size):
    with pytest.raises(UserError, match="data.val_size") as e:
        MNISTDataModule(data_dir=str(tiny_data), val_size=val_size).setup()
    if val_size == TINY_TRAIN:  # checked against the data: an example that fits it
        assert str(e.value).endswith(f"Example: data.val_size={TINY_TRAIN // 12}")


def test_missing_data_offline_names_folder_files_and_fix(tmp_path, monkeypatch):
    # No network here; the mirrors point at a closed local port so this holds anywhere.
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(UserError) as e:
        MNISTDataModule(data_dir=str(tmp_path / "nowhere")).prepare_data()
    msg = str(e.value)
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in msg
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        assert name in msg
    assert "data.data_dir" in msg and "MNISTX_DATA_DIR" in msg


def test_truncated_idx_file_is_named_and_left_alone(tmp_path):
    root = make_tiny_dataset(tmp_path)
    raw = root / "MNIST" / "raw"
    bad = raw / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:5000])
    before = _digest(raw)
    with pytest.raises(UserError, match="train-images-idx3-ubyte is truncated"):
        MNISTDataModule(data_dir=str(root)).prepare_data()
    assert _digest(raw) == before


def test_corrupt_gz_is_named_and_left_alone(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    before = _digest(raw)
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz is truncated or corrupt"):
        MNISTDataModule(data_dir=str(tmp_path)).prepare_data()
    assert _digest(raw) == before


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason="official MNIST files not available")
def test_official_gz_files_are_verified_and_extracted_offline(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in SHARED_MNIST.glob("*.gz"):
        shutil.copy(f, raw / f.name)
    dm = MNISTDataModule(data_dir=str(tmp_path), val_size=5000, seed=0)
    dm.prepare_data()
    assert (raw / "train-images-idx3-ubyte").stat().st_size == 47_040_016
    dm.setup()
    y_all = torch.cat([dm.splits["train"].tensors()[1], dm.splits["val"].tensors()[1]])
    assert torch.bincount(y_all).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert torch.bincount(dm.splits["test"].tensors()[1]).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    x_all = torch.cat([dm.splits["train"].tensors()[0], dm.splits["val"].tensors()[0]])
    assert x_all.mean().item() == pytest.approx(0.0, abs=1e-3)  # normalised with 0.1307
    assert x_all.std().item() == pytest.approx(1.0, abs=1e-3)  # and 0.3081
    assert dm.classes[0].startswith("0")
    assert np.isclose(len(dm.splits["val"].tensors()[0]), 5000)


def test_a_process_decodes_the_same_files_once(tmp_path):
    """The jobs of a multirun run in one process: they share one decoded copy of the data (a
    split is row numbers into it), and a changed file is decoded again."""
    root = make_tiny_dataset(tmp_path)
    a, same = _dm(root, seed=1), _dm(root, seed=1)
    assert all(a.splits[k].x is same.splits[k].x for k in ("train", "val", "test"))
    assert a.splits["train"].x is a.splits["val"].x  # one decoded training set, no copies
    b = _dm(root, seed=2)
    assert a.splits["test"].x is b.splits["test"].x and a.splits["train"].x is b.splits["train"].x
    assert not torch.equal(a.splits["val"].index, b.splits["val"].index)  # each seed its own
    assert torch.equal(_dm(root, seed=1).splits["val"].tensors()[0], a.splits["val"].tensors()[0])
    images = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[16 : 16 + 784] = bytes(784)  # the first test image all black
    images.write_bytes(bytes(data))
    c = _dm(root, seed=1)
    assert c.splits["test"].x is not a.splits["test"].x
    assert torch.all(c.splits["test"].x[0] == c.splits["test"].x[0].min())
