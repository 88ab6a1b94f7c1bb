"""Shared fixtures: a tiny MNIST-format dataset on disk and the real conf/ composed for it."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnistx.run_folder import register_resolvers
from mnistx.train import compose_config

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST" / "raw"
PROJECT_MNIST = REPO / "data" / "MNIST" / "raw"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TINY_TRAIN, TINY_TEST = 600, 200

register_resolvers()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (the MNIST on-disk format)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def tiny_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 'digits': class k is a bright bar at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 140, size=(n, 28, 28))
    for i, k in enumerate(labels):
        r, c = 2 + 2 * k + rng.integers(-1, 2), 4 + rng.integers(0, 10)
        images[i, r : r + 2, c : c + 12] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_tiny_dataset(root: Path, folder: str = "MNIST") -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", TINY_TRAIN, 0), ("t10k", TINY_TEST, 1)):
        images, labels = tiny_images(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data_dir holding MNIST/raw with 600 training and 200 test images."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def run_cli(
    cwd: Path,
    *args: str,
    check: bool = True,
    module: str = "mnistx.train",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m mnistx.train ARGS` (or another module) as a user runs it, in `cwd`."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli_here(monkeypatch, capfd):
    """`python -m mnistx.train ARGS` run in this process (the real cli(): preflight, Hydra,
    the recipe), in a given working folder: (exit code, stdout, stderr). No interpreter
    start-up per call, for the long tables of user mistakes."""
    from mnistx import run_folder
    from mnistx.train import cli

    def _run(cwd: Path, *args: str) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(run_folder, "_claimed", {})  # a new process would claim anew
        monkeypatch.setattr(sys, "argv", ["mnistx.train", *args])
        capfd.readouterr()
        try:
            cli()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out, err = capfd.readouterr()
        return code, out, err

    return _run


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


TINY_OVERRIDES = [
    "data.val_size=100",
    "data.batch_size=32",
    "data.eval_batch_size=100",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.pictures=null",  # drawn in the tests of pictures only
]

# What a continued run (resume, requeue) must report exactly as an uninterrupted one.
SAME_RESULTS = (
    "test/acc",
    "test/loss",
    "val/acc_best",
    "best_epoch",
    "train/loss",
    "val/loss",
    "train/acc",
    "val/acc",
    "epochs",
)


def two_node_ddp(data: Path, seen: Path) -> list[str]:
    """Overrides of one rank of a 2-node DDP run (one process per node, gloo) that records
    the rows each rank sees into `seen` (tests/index_recorder.py)."""
    return [
        f"data.data_dir={data}",
        *TINY_OVERRIDES,
        "trainer=ddp",
        "trainer.devices=1",
        "+trainer.num_nodes=2",
        "trainer.accelerator=cpu",
        "+callbacks.recorder._target_=index_recorder.IndexRecorder",
        f"+callbacks.recorder.out_dir={seen}",
    ]


@pytest.fixture
def make_cfg(tiny_data, tmp_path):
    """Compose the real conf/ for a tiny, fast run writing into tmp_path/run."""

    def _make(*overrides: str):
        return compose_config(
            [
                f"data.data_dir={tiny_data}",
                f"output_dir={tmp_path / 'run'}",
                *TINY_OVERRIDES,
                *overrides,
            ]
        )

    return _make


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST under the project's data/ (copied there from ../shared by .ci/run)."""
    if not (PROJECT_MNIST / "train-images-idx3-ubyte.gz").exists() and SHARED_MNIST.exists():
        PROJECT_MNIST.mkdir(parents=True, exist_ok=True)
        for f in SHARED_MNIST.glob("*.gz"):
            shutil.copy(f, PROJECT_MNIST / f.name)
    if not any(PROJECT_MNIST.glob("train-images-idx3-ubyte*")):
        pytest.skip(
            "real MNIST files not available: put the four official .gz files in "
            "data/MNIST/raw (README, Data)"
        )
    return PROJECT_MNIST.parents[1]


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    """Debian's real Fashion-MNIST, gunzipped (its re-compressed .gz fail torchvision's md5)."""
    if not DEBIAN_FASHION.exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    root = tmp_path_factory.mktemp("fashion")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in DEBIAN_FASHION.glob("*.gz"):
        with gzip.open(f) as src, open(raw / f.name.removesuffix(".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root
