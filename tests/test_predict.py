"""`mnistx.predict` on users' images: MNIST-style preprocessing and per-file errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_OVERRIDES, png_bomb, run_cli
from PIL import Image, ImageDraw
from torchvision.datasets import MNIST

from mnistx.data.digit_image import MAX_PIXELS, WORK_SIZE, ImageTooLarge, load_gray, to_mnist
from mnistx.errors import UserError


def _blob(size=(90, 60), box=(50, 10, 80, 50), ink=0, paper=255) -> Image.Image:
    img = Image.new("L", size, paper)
    ImageDraw.Draw(img).ellipse(box, fill=ink)
    return img


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return (ys * a).sum() / a.sum(), (xs * a).sum() / a.sum()


def test_to_mnist_inverts_crops_scales_and_centres(tmp_path):
    _blob().save(tmp_path / "blob.png")  # dark ellipse on light paper, off-centre, 30x40
    out = to_mnist(load_gray(tmp_path / "blob.png"))
    assert out.shape == (28, 28) and out.max() == pytest.approx(1.0, abs=0.05)
    assert out[0].max() == 0 and out[:, 0].max() == 0  # black background: it was inverted
    rows, cols = np.nonzero(out > 0.2)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20
    assert rows.max() - rows.min() + 1 >= 18  # the longer side (height) fills the 20 px box
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1
    # Light-on-dark input gives the same picture without inversion.
    _blob(ink=255, paper=0).save(tmp_path / "blob2.png")
    assert np.abs(to_mnist(load_gray(tmp_path / "blob2.png")) - out).max() < 0.02


def test_bad_files_are_user_errors(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="notes.png: not an image"):
        load_gray(tmp_path / "notes.png")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(UserError, match="no digit found"):
        to_mnist(load_gray(tmp_path / "blank.png"), "blank.png")


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
        / 1024
    )


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    # 10 kB that decode to 81 megapixels: under PIL's own bomb limit (89 MP), over ours.
    bomb = png_bomb(9000, 9000)
    assert len(bomb) < 20_000 and MAX_PIXELS < 9000 * 9000
    before = _peak_rss_mb()
    with pytest.raises(ImageTooLarge, match="bomb.png: the image is 9000x9000 pixels"):
        load_gray(bomb, "bomb.png")
    # Decoding it (and making floats of it) would take 81 MB to 400 MB.
    assert _peak_rss_mb() - before < 40
    # Over PIL's limit too (PIL refuses it when opening): the same message, no traceback.
    (tmp_path / "huge.png").write_bytes(png_bomb(20000, 20000))
    with pytest.raises(ImageTooLarge, match="huge.png: the image is"):
        load_gray(tmp_path / "huge.png")


def test_large_images_are_read_at_a_working_size():
    """A 3000x3000 photo gives the same 28x28 input as the same digit at 300x300."""
    small = _blob((300, 300), (100, 60, 180, 240))
    big = small.resize((3000, 3000), Image.Resampling.NEAREST)
    buffers = []
    for img in (small, big):
        data = io.BytesIO()
        img.save(data, "PNG")
        buffers.append(data.getvalue())
    pixels = load_gray(buffers[1], "big.png")
    assert max(pixels.shape) == WORK_SIZE
    a, b = to_mnist(pixels), to_mnist(load_gray(buffers[0]))
    # The same picture, up to the one-pixel rounding of where its centre of mass lands.
    shifts = [np.roll(a, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert min(float(np.abs(s - b).mean()) for s in shifts) < 0.01


def _variants(digit: np.ndarray, i: int) -> dict[str, Image.Image]:
    """The same MNIST digit as people photograph and save them."""
    img = Image.fromarray(digit)
    canvas = Image.new("L", (120, 90), 0)
    canvas.paste(img, (80, 5))
    rgb = Image.fromarray(255 - digit).resize((56, 56), Image.Resampling.BICUBIC).convert("RGB")
    return {
        "inverted": Image.fromarray(255 - digit),
        "large": img.resize((84, 84), Image.Resampling.BILINEAR),
        "offcentre": canvas,
        "rgbjpeg": rgb,
    }


@pytest.mark.slow
def test_predictions_survive_what_photos_do_to_digits(mnist_dir, tmp_path):
    run_cli(
        tmp_path,
        f"data.data_dir={mnist_dir}",
        "trainer.max_epochs=1",
        *[o for o in TINY_OVERRIDES if o.startswith(("trainer.enable", "callbacks"))],
    )
    (run,) = (tmp_path / "outputs").glob("*/*")

    test = MNIST(str(mnist_dir), train=False)
    n = 60
    digits = test.data[:n].numpy()
    folder = tmp_path / "images"
    folder.mkdir()
    for i, digit in enumerate(digits):
        for kind, img in _variants(digit, i).items():
            suffix = "jpg" if kind == "rgbjpeg" else "png"
            img.save(folder / f"{i:03d}_{kind}.{suffix}", quality=90)
    (folder / "zz_notes.png").write_text("not an image")

    # What the model says about the untouched 28x28 digits.
    from mnistx.inspection.inference import predict_probs
    from mnistx.training.module import ClassifierModule

    module = ClassifierModule.load_from_checkpoint(run / "checkpoints" / "best.ckpt")
    x = (torch.from_numpy(digits).float().div(255) - 0.1307).div(0.3081).unsqueeze(1)
    reference = predict_probs(module, x).argmax(1).tolist()

    proc = run_cli(
        tmp_path,
        f"run={run}",
        f"images={folder}",
        "--json",
        "--show",
        str(tmp_path / "sheet.png"),
        module="mnistx.predict",
        check=False,
    )
    assert proc.returncode == 1  # one file failed ...
    out = json.loads(proc.stdout)
    assert len(out["errors"]) == 1 and "zz_notes.png: not an image" in out["errors"][0]
    assert "error: " in proc.stderr and "Traceback" not in proc.stderr
    assert len(out["predictions"]) == 4 * n  # ... and every other one was predicted
    agree: dict[str, list[bool]] = {}
    for r in out["predictions"]:
        i, kind = Path(r["image"]).stem.split("_")
        agree.setdefault(kind, []).append(r["prediction"] == reference[int(i)])
        probs = [t["probability"] for t in r["top3"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    for kind, hits in agree.items():
        assert sum(hits) / len(hits) >= 0.85, (kind, sum(hits))
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width >= 400


def test_the_network_is_loaded_as_lightning_loads_it(tiny_data, tmp_path):
    """mnistx.predict and the app build the network without Lightning: the same outputs as
    ClassifierModule.load_from_checkpoint, batch-norm buffers and EMA weights included."""
    from mnistx.inspection.inference import load_network, predict_probs
    from mnistx.training.module import ClassifierModule

    run_cli(
        tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=1",
        "model=cnn", "model.batch_norm=true", "callbacks=ema", "callbacks.pictures=null",
    )  # fmt: skip
    (run,) = (tmp_path / "outputs").glob("*/*")
    ckpt = run / "checkpoints" / "last.ckpt"
    x = torch.randn(16, 1, 28, 28)
    lightning = predict_probs(ClassifierModule.load_from_checkpoint(ckpt), x)
    assert torch.equal(predict_probs(load_network(ckpt), x), lightning)
    state = torch.load(ckpt, weights_only=True)
    del state["hyper_parameters"]["model"]
    torch.save(state, tmp_path / "no_model.ckpt")
    with pytest.raises(UserError, match="no model settings saved"):
        load_network(tmp_path / "no_model.ckpt")


def test_predict_user_errors(tmp_path):
    proc = run_cli(tmp_path, "run=nowhere", module="mnistx.predict", check=False)
    assert proc.returncode == 1 and "images=<file, folder or glob>" in proc.stderr
    proc = run_cli(
        tmp_path, "run=nowhere", "images=none/*.png", module="mnistx.predict", check=False
    )
    assert proc.returncode == 1 and "matches no image files" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_skips_pipes_and_reads_each_file_once_through_symlinks(tmp_path):
    import os

    from mnistx.errors import UserError
    from mnistx.predict import image_paths

    folder = tmp_path / "digits"
    folder.mkdir()
    (folder / "seven.png").write_bytes(b"x")
    os.mkfifo(folder / "pipe.png")
    (folder / "loop").symlink_to(folder)  # a folder that contains itself
    assert image_paths(str(folder)) == [folder / "seven.png"]
    found = image_paths(str(tmp_path / "digits" / "**" / "*.png"))
    assert [p.resolve() for p in found] == [(folder / "seven.png").resolve()]
    with pytest.raises(UserError, match="not a regular file"):
        image_paths(str(folder / "pipe.png"))


def test_a_photo_rotated_by_its_exif_tag_is_read_upright(tmp_path):
    import numpy as np
    from PIL import Image

    from mnistx.data.digit_image import load_gray

    upright = np.full((40, 30), 255, np.uint8)
    upright[2:30, 4:10] = 0  # a vertical bar, up and to the left
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # lying down
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    pixels = load_gray(tmp_path / "photo.jpg")
    assert pixels.shape == (40, 30)
    dark = pixels < 0.5
    assert dark[2:30, 4:10].mean() > 0.9 and dark[:, 12:].mean() < 0.02 and dark[32:].mean() < 0.02
