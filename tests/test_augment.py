"""Batch augmentation: tensor ops on the batch's device, seeded, labels untouched."""

from __future__ import annotations

import json

import lightning.pytorch as L
import pytest
import torch
from hydra.utils import instantiate

from mnistx.data.augment import BatchAffine
from mnistx.errors import UserError
from mnistx.runs.compose import compose_config
from mnistx.training.module import ClassifierModule
from mnistx.training.recipe import train

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def digits(n: int = 16, device: str = "cpu") -> torch.Tensor:
    """Normalised-looking images: background -0.42, a bright off-centre blob."""
    x = torch.full((n, 1, 28, 28), -0.4242, device=device)
    x[:, :, 8:14, 10:20] = 2.8
    return x


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    w = (x - x.amin(dim=(2, 3), keepdim=True)).squeeze(1)
    rows = torch.arange(28, dtype=x.dtype, device=x.device)
    total = w.sum(dim=(1, 2))
    return torch.stack([(w.sum(2) * rows).sum(1) / total, (w.sum(1) * rows).sum(1) / total], dim=1)


@pytest.mark.parametrize("device", DEVICES)
def test_shape_dtype_device_kept_and_images_change(device):
    x = digits(device=device)
    for aug in (
        BatchAffine(degrees=15, translate=0.1, scale=(0.9, 1.1)),
        BatchAffine(degrees=15, translate=0.1, elastic_alpha=34).to(device),
    ):
        out = aug(x)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert not torch.equal(out, x)
        # Each image gets its own transform.
        assert not torch.equal(out[0], out[1])


def test_shifts_stay_within_translate_and_background_stays_background():
    x = digits(256)
    out = BatchAffine(translate=0.1)(x)
    moved = (centre_of_mass(out) - centre_of_mass(x)).abs()
    assert moved.max() <= 0.1 * 28 + 0.5
    assert moved.max() > 1.0  # really moved some
    # Border padding: the corners (background) stay background, not zeros.
    assert torch.allclose(out[:, :, 0, 0], torch.full_like(out[:, :, 0, 0], -0.4242))


def test_deterministic_under_a_seed():
    x = digits()
    aug = BatchAffine(degrees=10, translate=0.1, scale=(0.9, 1.1))
    a = aug(x, generator=torch.Generator().manual_seed(3))
    b = aug(x, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(5)
    c = aug(x)
    torch.manual_seed(5)
    d = aug(x)
    assert torch.equal(a, b) and torch.equal(c, d) and not torch.equal(a, c)


def test_identity_settings_return_the_input_unchanged():
    x = digits()
    aug = instantiate(compose_config([]).augment)  # the default, augment=none
    assert aug.identity and aug(x) is x


def test_elastic_distortion_bends_locally_without_moving_the_digit():
    x = digits(64)
    aug = BatchAffine(elastic_alpha=34, elastic_sigma=4)
    assert not aug.identity
    out = aug(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x) and not torch.equal(out[0], out[1])
    assert torch.equal(out, aug(x, generator=torch.Generator().manual_seed(0)))
    # A smooth field of ~1.3 px rms: strokes bend, the digit stays about where it was.
    moved = (centre_of_mass(out) - centre_of_mass(x)).abs()
    assert moved.mean() < 1.0 and moved.max() < 3.5
    # Displacements in pixels: the blur and alpha set their size, whatever the image size.
    field = aug._displacement(x, torch.Generator().manual_seed(0)) * 14
    assert 0.8 < field.pow(2).mean().sqrt() < 2.0
    weak = BatchAffine(elastic_alpha=8, elastic_sigma=4)._displacement(
        x, torch.Generator().manual_seed(0)
    )
    assert torch.allclose(weak * 34 / 8, field / 14)


def test_bad_settings_are_user_errors():
    for kwargs in (
        {"degrees": -1},
        {"translate": 1.5},
        {"scale": (1.2, 0.8)},
        {"elastic_alpha": -1},
        {"elastic_sigma": 0},
    ):
        with pytest.raises(UserError, match="augment"):
            BatchAffine(**kwargs)


def test_the_module_augments_training_batches_only_and_keeps_labels():
    module = ClassifierModule.from_config(
        compose_config(["model=cnn", "augment=affine", "model.channels_last=true"])
    )
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    module.trainer = trainer
    x, y = digits(), torch.arange(16) % 10
    trainer.training = True
    ax, ay = module.on_after_batch_transfer((x, y), 0)
    assert torch.equal(ay, y) and not torch.equal(ax, x)
    assert ax.is_contiguous(memory_format=torch.channels_last)
    trainer.validating = True
    vx, vy = module.on_after_batch_transfer((x, y), 0)
    assert torch.equal(vx, x) and torch.equal(vy, y)


@pytest.mark.parametrize("tested", ["best", "last"])
def test_a_run_with_augmentation_and_ema_trains_and_tests_the_averaged_weights(
    make_cfg, tmp_path, tested
):
    cfg = make_cfg(
        "model=cnn",
        "model.channels=[8,16]",
        "augment=affine",
        "callbacks.ema.decay=0.9",
        "loss.label_smoothing=0.1",
        "trainer.max_epochs=2",
        f"test_checkpoint={tested}",
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["test/acc"] is not None
    assert metrics["tested_weights"] == tested
    checkpoint = tmp_path / "run" / "checkpoints" / f"{tested}.ckpt"
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    # EMA checkpoints hold the averaged weights in state_dict, the raw ones beside them.
    assert "current_model_state" in ckpt
    averaged = ckpt["state_dict"]["net.classifier.1.weight"]
    raw = ckpt["current_model_state"]["net.classifier.1.weight"]
    assert not torch.equal(averaged, raw)
    # The test ran on the averaged weights: evaluating them again gives the same accuracy.
    module = ClassifierModule.load_from_checkpoint(checkpoint, map_location="cpu")
    assert torch.equal(module.net.classifier[1].weight, averaged)
    tester = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    dm = instantiate(cfg.data)
    again = tester.test(module, datamodule=dm, verbose=False)[0]
    assert again["test/acc"] == pytest.approx(metrics["test/acc"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test/acc"] == metrics["test/acc"]
