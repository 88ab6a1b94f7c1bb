"""python -m mnistx.export: the network with the run's normalisation and softmax inside, as
ONNX (run by onnxruntime) and TorchScript. It gives mnistx.predict's probabilities on official
test digits, takes 0-255 images straight in, and is written beside the run's files (its
export/ folder or --out), never over them nor into another run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_OVERRIDES, run_cli, snapshot
from PIL import Image

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export")]
FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("export")
    run_cli(cwd, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "hydra.run.dir=r")
    return cwd / "r"


@pytest.fixture(scope="module")
def digits(mnist_dir, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The first 12 official test digits: as PNG files, and as the dataset stores them."""
    from torchvision.datasets import MNIST

    raw = MNIST(str(mnist_dir), train=False).data[:12].numpy()
    folder = tmp_path_factory.mktemp("digits")
    for i, image in enumerate(raw):
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    return folder, raw


def _model(path: Path, fmt: str):
    """The exported file as its README says to load it: images (0-255) -> probabilities."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        return lambda x: session.run(["probabilities"], {"images": x.astype(np.float32)})[0]
    model = torch.jit.load(str(path))
    return lambda x: model(torch.from_numpy(x.astype(np.float32))).detach().numpy()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # said in its README
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_exported_model_gives_predicts_probabilities(run, digits, fmt, tmp_path):
    from mnistx.data.digit_image import load_gray, to_mnist
    from mnistx.inspection.inference import load_network, predict_probs

    folder, raw = digits
    before = {k: v for k, v in snapshot(run).items() if not k.startswith("export/")}
    done = run_cli(tmp_path, f"run={run}", f"format={fmt}", module="mnistx.export")
    out = run / "export" / f"best-{fmt}"
    assert str(out / FILES[fmt]) in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted([FILES[fmt], "README.md"])
    assert "pixel values 0-255" in (out / "README.md").read_text()
    after = snapshot(run)
    assert {k: v for k, v in after.items() if not k.startswith("export/")} == before
    model = _model(out / FILES[fmt], fmt)

    # mnistx.predict's probabilities for the same images, prepared as predict prepares them.
    said = run_cli(tmp_path, f"run={run}", f"images={folder}", "--json", module="mnistx.predict")
    predictions = json.loads(said.stdout)["predictions"]
    assert len(predictions) == 12
    prepared = np.stack([255 * to_mnist(load_gray(Path(p["image"])))[None] for p in predictions])
    probs = model(prepared)
    assert probs.shape == (12, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    for p, row in zip(predictions, probs, strict=True):
        assert int(row.argmax()) == p["prediction"]
        for top in p["top3"]:
            assert abs(row[top["class"]] - top["probability"]) < 1e-4, (p, row)

    # A 0-255 image straight in: the run's normalisation is inside.
    network = load_network(run / "checkpoints" / "best.ckpt")
    x = torch.from_numpy(raw[:, None].astype(np.float32))
    expected = predict_probs(network, (x / 255 - 0.1307) / 0.3081).numpy()
    assert np.allclose(model(raw[:, None]), expected, atol=1e-5)


def test_export_writes_where_told_and_never_into_a_run(run, tiny_data, tmp_path):
    other = tmp_path / "other"
    run_cli(tmp_path, f"data.data_dir={tiny_data}", *TINY_OVERRIDES, f"hydra.run.dir={other}")
    kept = snapshot(other)
    refused = run_cli(
        tmp_path, f"run={run}", f"--out={other / 'x'}", module="mnistx.export", check=False
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: ") and "another run" in refused.stderr
    assert snapshot(other) == kept
    run_cli(tmp_path, f"run={run}", "--out=deploy", module="mnistx.export")
    assert (tmp_path / "deploy" / "model.onnx").stat().st_size > 0
    again = run_cli(tmp_path, f"run={run}", "--out=deploy", module="mnistx.export", check=False)
    assert again.returncode == 1 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["format=onnx"], "Say which run to export"),
        (["run=r", "format=tflite"], "format=tflite is not an export format"),
        (["run=r", "size=3"], "Cannot read 'size=3'"),
    ],
)
def test_export_mistakes_are_one_paragraph(tmp_path, args, says):
    done = run_cli(tmp_path, *args, module="mnistx.export", check=False)
    assert done.returncode == 1 and done.stderr.startswith(f"error: {says}"), done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
