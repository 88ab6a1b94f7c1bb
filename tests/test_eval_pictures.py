"""A run's pictures (files and TensorBoard images), its model summary, and `mnistx.eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_OVERRIDES, run_cli, snapshot
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = pytest.mark.xdist_group("eval_pictures")

WITH_PICTURES = [o for o in TINY_OVERRIDES if not o.startswith("callbacks.pictures")]


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("run")
    run_cli(cwd, f"data.data_dir={tiny_data}", *WITH_PICTURES)
    (run,) = (cwd / "outputs").glob("*/*")
    return run


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()
        assert img.format == "PNG"
        return img.size


def test_run_pictures_are_files_and_tensorboard_images(trained_run):
    for name in ("samples", "curves", "predictions", "misclassified", "confusion_matrix"):
        width, height = _png(trained_run / f"{name}.png")
        assert width >= 400 and height >= 250, name
    ea = EventAccumulator(str(trained_run), size_guidance={"images": 0})
    ea.Reload()
    tags = set(ea.Tags()["images"])
    assert {
        "samples",
        "curves",
        "test/predictions",
        "test/misclassified",
        "test/confusion_matrix",
    } <= tags
    # The misclassified validation images are logged after every epoch (2 here).
    assert "val/misclassified" in tags
    assert len(ea.Images("val/misclassified")) == 2
    assert ea.Images("test/confusion_matrix")[0].width >= 400


def test_test_pictures_reuse_the_test_steps_predictions(trained_run, tmp_path):
    """The test pictures are drawn from the test loop's own logits, not a second pass."""
    import lightning.pytorch as L
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from mnistx.inspection.inference import predict_probs
    from mnistx.training.module import ClassifierModule
    from mnistx.training.run_pictures import Pictures
    from mnistx.training.runtime import quiet_libraries

    quiet_libraries()  # the warnings a run does not show
    cfg = OmegaConf.load(trained_run / ".hydra" / "config.yaml")
    module = ClassifierModule.load_from_checkpoint(
        trained_run / "checkpoints" / "best.ckpt", map_location="cpu"
    )
    datamodule = instantiate(cfg.data)
    pictures = Pictures(str(tmp_path))
    L.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[pictures],
        enable_progress_bar=False,
        enable_model_summary=False,
    ).test(module, datamodule=datamodule, verbose=False)
    kept = torch.cat(pictures._test_probs)
    x, _ = datamodule.splits["test"].tensors()
    assert torch.allclose(kept, predict_probs(module, x), atol=1e-6)
    assert _png(tmp_path / "predictions.png") and _png(tmp_path / "confusion_matrix.png")


def test_model_summary_file_has_shapes_and_parameter_counts(trained_run):
    text = (trained_run / "model_summary.txt").read_text()
    assert "In sizes" in text and "Out sizes" in text
    assert "[2, 1, 28, 28]" in text and "[2, 10]" in text
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert f"{round(metrics['params'] / 1000)} K     Total params" in text
    assert "| Linear " in text and "| 100 K " in text  # 784*128 + 128


def test_eval_reproduces_the_runs_test_accuracy(trained_run, tmp_path):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    proc = run_cli(
        tmp_path, f"run={trained_run}", "--out", str(tmp_path / "ev"), module="mnistx.eval"
    )
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert report["test/acc"] == metrics["test/acc"]  # exactly: same checkpoint, same loop
    assert report["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    assert report["checkpoint"].endswith("best.ckpt") and report["test_images"] == 200
    per_class = report["per_class"]
    assert len(per_class) == 10 and sum(r["support"] for r in per_class) == 200
    recall = sum(r["recall"] * r["support"] for r in per_class) / 200
    assert recall == pytest.approx(report["test/acc"], abs=1e-6)
    for pair in report["most_confused"]:
        assert pair["true"] != pair["pred"] and pair["count"] > 0
    assert f"test accuracy {100 * metrics['test/acc']:.2f}%" in proc.stdout
    assert "Per class" in proc.stdout
    for name in ("confusion_matrix.png", "misclassified.png"):
        _png(tmp_path / "ev" / name)


def test_eval_of_another_checkpoint_by_path(trained_run, tmp_path):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    run_cli(tmp_path, f"ckpt={ckpt}", "--out", str(tmp_path), module="mnistx.eval")
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["checkpoint"] == str(ckpt) and report["run"] == str(trained_run)
    assert 0 <= report["test/acc"] <= 1


@pytest.mark.parametrize(
    "args,text",
    [
        ([], "Say which run to evaluate"),
        (["run=nowhere"], "Run folder nowhere does not exist"),
        (["ckpt=nothing.ckpt"], "Checkpoint nothing.ckpt does not exist"),
        (["model=cnn"], "Cannot read 'model=cnn'"),
    ],
)
def test_eval_user_errors(tmp_path, args, text):
    proc = run_cli(tmp_path, *args, module="mnistx.eval", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and text in proc.stderr


def test_eval_and_predict_reject_a_corrupt_checkpoint(trained_run, tmp_path):
    bad = tmp_path / "checkpoints" / "best.ckpt"
    bad.parent.mkdir()
    bad.write_bytes((trained_run / "checkpoints" / "best.ckpt").read_bytes()[:1000])
    for module, extra in (("mnistx.eval", []), ("mnistx.predict", ["images=x.png"])):
        (tmp_path / "x.png").write_bytes((trained_run / "samples.png").read_bytes())
        proc = run_cli(
            tmp_path, f"ckpt={bad}", f"run={trained_run}", *extra, module=module, check=False
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "Cannot read checkpoint" in proc.stderr


def test_image_grid_shows_each_image_under_its_caption() -> None:
    import numpy as np
    import torch

    from mnistx.inspection import drawing

    images = torch.rand(11, 1, 28, 28)
    titles = [f"{i} / {i + 1}" for i in range(11)]
    wrong = [i % 3 == 0 for i in range(11)]
    grid = drawing.image_grid(
        (images - 0.5) / 0.25, titles, wrong, mean=0.5, std=0.25, cols=4, title="Some images"
    )
    pixels = torch.from_numpy(np.array(grid)).permute(2, 0, 1).float()
    boxes = drawing.grid_boxes(11, 4, 28, 28)
    assert len({(b[0]) for b in boxes}) == 4 and len({b[1] for b in boxes}) == 3  # 4 x 3
    for i, (left, top, right, bottom) in enumerate(boxes):
        # Each image appears, un-normalised and enlarged, in its own box ...
        shown = pixels[:, top:bottom, left:right]
        expected = (images[i, 0] * 255).round().repeat_interleave(drawing.ZOOM, 0)
        expected = expected.repeat_interleave(drawing.ZOOM, 1)
        assert (shown - expected).abs().max() <= 1
        # ... under its caption: dark text, red exactly for the wrong predictions.
        band = pixels[:, top - drawing.CAPTION : top, left:right]
        inked = band.min(0).values < 128
        assert inked.any()
        reddish = (band[0] > 150) & (band[1] < 110) & (band[2] < 110)
        assert bool(reddish.any()) == wrong[i]
    # The title is drawn above the first row.
    assert (pixels[:, : drawing.TITLE].min(0).values < 128).any()
    # A tile with no image stays blank.
    assert pixels[:, boxes[-1][1] :, boxes[-1][2] + drawing.GAP :].min() == 255


def test_learning_curves_draw_each_split_in_its_panel() -> None:
    import numpy as np

    from mnistx.inspection import drawing

    blue, orange = np.array((31, 119, 180)), np.array((255, 127, 14))

    def has(pixels: np.ndarray, colour: np.ndarray) -> bool:
        return bool((np.abs(pixels.astype(int) - colour).sum(-1) < 30).any())

    history = {
        "train/acc": [0.8, 0.9, 0.95],
        "val/acc": [0.85, 0.9, 0.93],
        "train/loss": [0.6, 0.3, 0.2],
    }
    pixels = np.array(drawing.curves_figure(history))
    acc, loss = pixels[:, :500], pixels[:, 500:]
    assert has(acc, blue) and has(acc, orange)  # train and val accuracy
    assert has(loss, blue) and not has(loss, orange)  # train loss only: no val/loss logged
    assert not has(np.array(drawing.curves_figure({"val/acc": [0.9]}))[:, :500], blue)


def test_the_confusion_matrix_shows_counts_coloured_by_fraction() -> None:
    """Cells say how many images (10 times the images: other numbers, the same colours);
    their colour is the fraction of the true class (the same counts in a row of another
    size: other colours)."""
    import numpy as np
    import torch

    from mnistx.inspection import drawing

    def cells(confmat: list[list[int]]) -> np.ndarray:
        return np.array(drawing.confusion_figure(torch.tensor(confmat), ["0", "1"]))

    base = cells([[97, 3], [5, 95]])
    tenfold = cells([[970, 30], [50, 950]])
    assert base.shape == tenfold.shape and (base != tenfold).any()  # other numbers drawn

    def fills(pixels: np.ndarray) -> set[tuple[int, ...]]:
        """The colours of large areas (a cell's fill; not the text's anti-aliased edges)."""
        colours, n = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
        return {tuple(int(v) for v in c) for c, k in zip(colours, n, strict=True) if k > 1000}

    assert len(fills(base)) >= 3 and fills(base) == fills(tenfold)
    assert fills(cells([[97, 3], [5, 995]])) != fills(base)  # 95 of 100 vs 995 of 1000


def test_eval_writes_its_own_folder_never_over_the_runs_files(trained_run, tmp_path):
    before = {k: v for k, v in snapshot(trained_run).items() if not k.startswith("eval/")}
    for args, folder in (
        ([], "best"),
        ([f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}"], "last"),
    ):
        proc = run_cli(tmp_path, f"run={trained_run}", *args, module="mnistx.eval")
        out = trained_run / "eval" / folder
        report = json.loads((out / "eval.json").read_text())
        assert report["checkpoint"].endswith(f"{folder}.ckpt") and str(out) in proc.stdout
        for name in ("confusion_matrix.png", "misclassified.png"):
            _png(out / name)
    after = {k: v for k, v in snapshot(trained_run).items() if not k.startswith("eval/")}
    assert after == before


def test_eval_out_must_be_a_folder_that_holds_no_run(trained_run, tmp_path):
    a_file = tmp_path / "report.txt"
    a_file.write_text("mine")
    before = snapshot(trained_run)
    for out, text in (
        (a_file, "is a file; --out names a folder"),
        (trained_run, "never writes into another run's or sweep's files"),
    ):
        proc = run_cli(
            tmp_path, f"run={trained_run}", "--out", str(out), module="mnistx.eval", check=False
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error:") and text in proc.stderr
    assert a_file.read_text() == "mine" and snapshot(trained_run) == before


def test_eval_of_a_sweep_folder_lists_its_jobs(trained_run, tmp_path):
    import shutil

    sweep = tmp_path / "multirun" / "2026-12-02" / "10-00-00"
    for job in ("optimizer.lr=0.01", "optimizer.lr=0.1"):
        shutil.copytree(trained_run, sweep / job)
    proc = run_cli(tmp_path, f"run={sweep}", module="mnistx.eval", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "is a sweep folder with 2 jobs, not one run" in proc.stderr
    assert f"run={sweep / 'optimizer.lr=0.01'}" in proc.stderr


def test_predict_show_never_writes_over_a_runs_picture(trained_run, tmp_path):
    picture = trained_run / "samples.png"
    before = picture.read_bytes()
    (tmp_path / "x.png").write_bytes(before)
    proc = run_cli(
        tmp_path,
        f"run={trained_run}",
        "images=x.png",
        "--show",
        str(picture),
        module="mnistx.predict",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "never writes into another run's or sweep's files" in proc.stderr
        and picture.read_bytes() == before
    )


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_png_bytes_read_back_as_the_same_pixels(mode) -> None:
    """drawing.png writes RGB and grey images itself (unfiltered rows, deflated), the rest
    through PIL: every one decodes, with PIL's own reader, to the pixels it was given."""
    import io

    import numpy as np

    from mnistx.inspection import drawing

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    image = Image.fromarray(noise, "RGBA").convert(mode)
    picture = drawing.confusion_figure(torch.tensor([[5, 1], [2, 7]]), ["0", "1"]).convert(mode)
    for img in (image, picture):
        data = drawing.png(img)
        back = Image.open(io.BytesIO(data))
        back.load()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and back.format == "PNG"
        assert back.mode == img.mode and back.size == img.size
        assert back.tobytes() == img.tobytes()


@pytest.mark.parametrize("anchor", ["la", "mm", "md", "rm", "lm", "mt"])
def test_cached_text_draws_what_pils_text_draws(anchor) -> None:
    """drawing.write pastes a text's mask rendered once: on any background, in any colour and
    size, the same pixels ImageDraw.text draws at that point with that anchor."""
    import numpy as np
    from PIL import ImageDraw

    from mnistx.inspection import drawing

    background = np.random.default_rng(1).integers(0, 256, (60, 200, 3), dtype=np.uint8)
    for text, size, fill in (
        ("pred 3 / true 5", 12, drawing.RED),
        ("Confusion matrix", 15, drawing.BLACK),
        ("0.5", 11, drawing.WHITE),
        ("1", 9, (10, 200, 30)),
    ):
        pils = Image.fromarray(background, "RGB")
        ImageDraw.Draw(pils).text(
            (100, 30), text, fill=fill, font=drawing.font(size), anchor=anchor
        )
        for _ in range(2):  # rendered, then from the cache
            ours = Image.fromarray(background, "RGB")
            drawing.write(ours, (100, 30), text, size, fill, anchor)
            assert (np.array(ours) != background).any()
            assert np.array_equal(np.array(ours), np.array(pils)), (text, anchor)


def test_the_colour_scale_runs_blues_from_one_at_the_top() -> None:
    import numpy as np

    from mnistx.inspection import drawing

    span = 97
    scale = np.array(drawing._blues_scale(span, 15))
    assert scale.shape == (span, 15, 3) and (scale == scale[:, :1]).all()
    for y in range(span):
        assert tuple(int(c) for c in scale[y, 0]) == drawing._blues(1 - y / (span - 1))
