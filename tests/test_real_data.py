"""Real-data checks on the official MNIST files and Debian's Fashion-MNIST (marked slow)."""

from __future__ import annotations

import pytest
import torch

from mnistx.data.datamodule import MNISTDataModule
from mnistx.runs.compose import compose_config
from mnistx.training.recipe import train

pytestmark = pytest.mark.slow


def _cfg(tmp_path, data_dir, *overrides):
    return compose_config(
        [
            f"data.data_dir={data_dir}",
            f"output_dir={tmp_path / 'run'}",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
    )


def test_default_mlp_one_epoch_reaches_95(mnist_dir, tmp_path):
    metrics = train(_cfg(tmp_path, mnist_dir, "trainer.max_epochs=1"))
    assert metrics["test/acc"] >= 0.95, metrics


def test_cnn_adam_one_epoch_reaches_98(mnist_dir, tmp_path):
    metrics = train(
        _cfg(tmp_path, mnist_dir, "model=cnn", "optimizer=adam", "trainer.max_epochs=1")
    )
    assert metrics["test/acc"] >= 0.98, metrics
    assert metrics["params"] == 121_930


def test_fashion_mnist_constants_and_training(fashion_dir, tmp_path):
    cfg = _cfg(tmp_path, fashion_dir, "data=fashion_mnist", "trainer.max_epochs=1")
    raw = MNISTDataModule(dataset=cfg.data.dataset, data_dir=str(fashion_dir), mean=0.0, std=1.0)
    raw.setup()
    pixels = torch.cat([raw.splits["train"].tensors()[0], raw.splits["val"].tensors()[0]])
    assert pixels.mean().item() == pytest.approx(cfg.data.mean, abs=5e-4)
    assert pixels.std().item() == pytest.approx(cfg.data.std, abs=5e-4)
    assert raw.classes[:2] == ["T-shirt/top", "Trouser"]
    assert len(raw.splits["test"].tensors()[0]) == 10_000
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.80, metrics
